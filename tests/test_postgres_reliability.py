"""Reliability on PostgreSQL: workers on several hosts, a PostgreSQL restart under load, no double run.

Everything is real: the PostgreSQL server of the test machine (each test in a schema of its own,
from the ``postgres_url`` fixture), ``python -m dockyard worker`` and ``server`` processes, and
network namespaces joined to the machine by veth pairs, one per "host". Where nothing can be
awaited (a job reaching RUNNING, a count in a table), tests poll with :func:`wait_until`.

These tests run on PostgreSQL only, so they build their :class:`Settings` from ``postgres_url``
rather than through the ``settings`` fixture (which runs every test on both backends).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

import dockyard
from dockyard import Client, JobState
from dockyard.settings import Settings
from dockyard.storage.postgres.database import DEAD_PEER_SECONDS
from tests.conftest import (
    POSTGRES_URL,
    REPO,
    SUITE_ENVIRON,
    ServerProcess,
    WorkerProcess,
    register_process,
    suite_settings,
    wait_until,
)

#: This module, as python-executor jobs name its functions (``tests.test_postgres_reliability``).
FUNCTIONS = __name__
#: The subnet of the test hosts; PostgreSQL trusts it while a test needs it.
TEST_SUBNET = "10.231.0.0/16"
HBA_LINE = f"host all all {TEST_SUBNET} trust"


# -- functions the jobs call ----------------------------------------------------------------------


async def noop(payload: Any) -> None:
    """Do nothing (the cheapest job there is: a coroutine on the worker's own loop)."""


async def record(payload: dict[str, Any]) -> None:
    """Append ``payload["n"]`` to ``payload["file"]``: one ``O_APPEND`` write per run."""
    fd = os.open(payload["file"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{payload['n']}\n".encode())
    finally:
        os.close(fd)


async def hold(payload: dict[str, Any]) -> None:
    """Run until ``payload["until"]`` exists (a job that is surely running at some moment)."""
    while not os.path.exists(payload["until"]):
        await asyncio.sleep(0.02)


# -- the store, read directly ---------------------------------------------------------------------


def query(url: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run ``sql`` on a connection of its own (so a PostgreSQL restart never leaves it broken)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        return conn.execute(sql, args).fetchall()


def execute(url: str, sql: str) -> None:
    """Run a statement that returns no rows (``ALTER SYSTEM`` cannot run in a transaction)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def state_counts(url: str) -> dict[str, int]:
    return {
        state: count
        for state, count in query(url, "SELECT state, count(*) FROM jobs GROUP BY state")
    }


def count_in(url: str, state: str) -> int:
    ((count,),) = query(url, "SELECT count(*) FROM jobs WHERE state = %s", (state,))
    return int(count)


def postgres_answers() -> bool:
    try:
        query(POSTGRES_URL, "SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def postmaster_started() -> Any:
    ((started,),) = query(POSTGRES_URL, "SELECT pg_postmaster_start_time()")
    return started


def restart_postgres() -> None:
    """Restart the test PostgreSQL (fast shutdown: every session is cut) and wait until it answers."""
    ((cluster,), (version,)) = query(
        POSTGRES_URL,
        "SELECT setting FROM pg_settings WHERE name IN ('cluster_name', 'server_version_num')"
        " ORDER BY name",
    )
    version_dir, _, name = str(cluster).partition("/")
    if not name:  # no cluster_name set: Debian's default cluster of this major version
        version_dir, name = str(int(version) // 10000), "main"
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version_dir, name, "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    wait_until(postgres_answers, timeout=60, what="PostgreSQL to accept connections again")


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def pg_settings(tmp_path: Path, postgres_url: str) -> Settings:
    return suite_settings(tmp_path / "home", postgres_url)


@pytest.fixture
def settings(pg_settings: Settings) -> Settings:
    """This module's tests run on PostgreSQL only: conftest's ``client``, ``spawn_worker`` and
    ``server`` fixtures use this instead of the settings of each backend."""
    return pg_settings


@pytest.fixture
def pg_client(client: Client) -> Client:
    return client


@pytest.fixture
def spawn(spawn_worker: Callable[..., WorkerProcess]) -> Callable[..., WorkerProcess]:
    """``spawn("--concurrency", "4", …)`` → a ``python -m dockyard worker`` on the test's schema."""
    return spawn_worker


@pytest.fixture
def api_server(pg_client: Client, server: ServerProcess) -> ServerProcess:
    """``python -m dockyard server`` on the test's schema (the client migrated it first)."""
    return server


# -- several hosts on one machine ----------------------------------------------------------------


@pytest.fixture
def postgres_on_veth(postgres_server: str) -> Iterator[None]:
    """PostgreSQL listening beyond localhost and trusting the test subnet; put back afterwards.

    When it already listens on ``*`` and trusts the subnet, nothing is changed (or restarted).
    """
    ((listen, source),) = query(
        postgres_server,
        "SELECT setting, coalesce(sourcefile, '') FROM pg_settings WHERE name = 'listen_addresses'",
    )
    ((hba_file,),) = query(postgres_server, "SHOW hba_file")
    hba = Path(hba_file)
    original_hba = hba.read_text()
    has_line = any(
        line.split("#", 1)[0].split() == HBA_LINE.split() for line in original_hba.splitlines()
    )
    patched_hba = original_hba.rstrip("\n") + f"\n{HBA_LINE}\n"
    set_listen = listen != "*"
    add_line = not has_line
    try:
        if set_listen:
            execute(postgres_server, "ALTER SYSTEM SET listen_addresses = '*'")
        if add_line:
            hba.write_text(patched_hba)
        if set_listen:
            restart_postgres()
        elif add_line:
            query(postgres_server, "SELECT pg_reload_conf()")
        yield
    finally:
        if add_line:
            current = hba.read_text()
            if current == patched_hba:
                hba.write_text(original_hba)
            else:  # changed meanwhile by someone else: take out our line only
                kept = [line for line in current.splitlines() if line != HBA_LINE]
                hba.write_text("\n".join(kept) + "\n")
        if set_listen:
            if source.endswith("postgresql.auto.conf"):  # an earlier ALTER SYSTEM: restore it
                execute(postgres_server, f"ALTER SYSTEM SET listen_addresses = '{listen}'")
            else:
                execute(postgres_server, "ALTER SYSTEM RESET listen_addresses")
            restart_postgres()
        elif add_line:
            query(postgres_server, "SELECT pg_reload_conf()")


@dataclass(frozen=True)
class Host:
    """A network namespace joined to the machine by a veth pair: a host of its own."""

    netns: str
    #: The host's own address (inside the namespace).
    address: str
    #: The machine's end of the link: where the host reaches PostgreSQL.
    gateway: str


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def netns_pids(netns: str) -> list[int]:
    result = subprocess.run(
        ["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=30, check=False
    )
    return [int(pid) for pid in result.stdout.split()]


def kill_netns(netns: str) -> None:
    """SIGKILL every process in ``netns``: the host loses power."""
    for pid in netns_pids(netns):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def free_blocks(count: int) -> list[int]:
    """``count`` /30 blocks of the test subnet that no interface on this machine uses."""
    used = set(
        re.findall(
            r"inet 10\.231\.(\d+)\.(\d+)/", subprocess.check_output(["ip", "addr"], text=True)
        )
    )
    taken = {(int(c) * 256 + int(d)) // 4 for c, d in used}
    candidates = [block for block in range(1, 16384) if block not in taken]
    return random.sample(candidates, count)


def make_hosts(count: int, made: list[str]) -> list[Host]:
    """``count`` hosts with unique names and addresses; each namespace made goes into ``made``."""
    tag = os.urandom(3).hex()
    hosts: list[Host] = []
    for index, block in enumerate(free_blocks(count)):
        netns, outside, inside = f"dyt{tag}{index}", f"dyt{tag}{index}a", f"dyt{tag}{index}b"
        base = block * 4
        prefix = f"10.231.{base // 256}"
        gateway, address = f"{prefix}.{base % 256 + 1}", f"{prefix}.{base % 256 + 2}"
        ip("netns", "add", netns)
        made.append(netns)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", netns)
        ip("addr", "add", f"{gateway}/30", "dev", outside)
        ip("link", "set", outside, "up")
        ip("-n", netns, "addr", "add", f"{address}/30", "dev", inside)
        ip("-n", netns, "link", "set", inside, "up")
        ip("-n", netns, "link", "set", "lo", "up")
        hosts.append(Host(netns=netns, address=address, gateway=gateway))
    return hosts


def reaches_postgres(host: Host) -> bool:
    """A session from ``host`` gets in (as the workers there will: over the veth link)."""
    url = url_via(POSTGRES_URL, host)
    command = ["ip", "netns", "exec", host.netns, "psql", url, "-Atc", "SELECT 1"]
    return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode == 0


@pytest.fixture
def hosts(postgres_on_veth: None) -> Iterator[list[Host]]:
    """Two hosts that reach PostgreSQL over their veth link; torn down with all they ran."""
    made: list[str] = []
    try:
        created = make_hosts(2, made)
        for host in created:
            # A trust line is read by each new session: wait until one from the host gets in.
            wait_until(
                partial(reaches_postgres, host),
                timeout=30,
                what=f"PostgreSQL to answer {host.netns} at {host.gateway}",
            )
        yield created
    finally:
        for netns in made:
            kill_netns(netns)
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
            # Deleting the namespace deletes its end of the pair, and so the pair.
            subprocess.run(["ip", "link", "del", f"{netns}a"], capture_output=True, check=False)


def url_via(url: str, host: Host) -> str:
    """``url`` with PostgreSQL reached at ``host.gateway``, named by the host in pg_stat_activity."""
    parts = urlsplit(url)
    user, _, hostport = parts.netloc.rpartition("@")
    port = hostport.rpartition(":")[2] if ":" in hostport else "5432"
    netloc = f"{user}@{host.gateway}:{port}" if user else f"{host.gateway}:{port}"
    query_string = f"{parts.query}&application_name={host.netns}".lstrip("&")
    return urlunsplit((parts.scheme, netloc, parts.path, query_string, parts.fragment))


def leaders(hosts: list[Host]) -> list[str]:
    """The hosts whose sessions hold an advisory lock (the maintenance leadership)."""
    rows = query(
        POSTGRES_URL,
        "SELECT DISTINCT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = ANY(%s)",
        ([host.netns for host in hosts],),
    )
    return sorted(name for (name,) in rows)


class HostWorker(WorkerProcess):
    """``ip netns exec HOST python -m dockyard worker``: a worker on another host."""

    def __init__(self, host: Host, home: Path, url: str, *args: str, log: Path) -> None:
        self.host = host
        self.log_path = log
        self._log = log.open("ab")
        env = {**os.environ, "DOCKYARD_HOME": str(home), "DOCKYARD_URL": url_via(url, host)}
        env.update(SUITE_ENVIRON)
        env.pop("DOCKYARD_LOG_DIR", None)
        # ip netns exec execs the command, so the pid is the worker's own.
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, sys.executable, "-m", "dockyard", "worker", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )


@pytest.fixture
def spawn_on(
    hosts: list[Host], postgres_url: str, tmp_path: Path
) -> Iterator[Callable[..., HostWorker]]:
    """``spawn_on(host, "--lease", "2")`` → a worker on ``host`` with a home of its own."""
    spawned: list[HostWorker] = []

    def start(host: Host, *args: str) -> HostWorker:
        home = tmp_path / f"home-{host.netns}"
        log = tmp_path / f"worker-{host.netns}-{len(spawned)}.log"
        process = HostWorker(host, home, postgres_url, *args, log=log)
        spawned.append(process)
        return process

    yield start
    for process in spawned:
        process.close()


@pytest.mark.slow
def test_a_host_dies_mid_job_and_another_host_reruns_its_jobs(
    postgres_url, pg_client, hosts, spawn_on, tmp_path
):
    run = tmp_path / "run"
    run.mkdir()
    out = shlex.quote(str(run))
    # Attempt 1 of every job holds its slot until the test releases it; any later attempt does not.
    script = (
        'if [ "$DOCKYARD_JOB_ATTEMPT" = 1 ]; then'
        f' touch {out}/started-"$DOCKYARD_JOB_ID";'
        f" until [ -e {out}/release ]; do sleep 0.05; done;"
        f' fi; echo "$DOCKYARD_JOB_ID" >> {out}/done'
    )
    register_process(pg_client, "hop", script, shell=True, retry={"attempts": 2, "backoff_base": 0})
    doomed_host, surviving_host = hosts
    # The doomed host leads maintenance (the rescues), so the survivor must take over to rescue.
    doomed = spawn_on(doomed_host, "--lease", "2", "--concurrency", "2")
    wait_until(
        lambda: leaders(hosts) == [doomed_host.netns], timeout=30, what="the first host to lead"
    )
    survivor = spawn_on(surviving_host, "--lease", "2", "--concurrency", "2")

    held = [pg_client.submit("hop", name=f"held-{i}").id for i in range(4)]

    def both_hosts_hold_two() -> dict[str, list[str]]:
        """The held jobs by worker, once all run, two on each host; else nothing."""
        jobs = [pg_client.get(job_id) for job_id in held]
        if any(job.state is not JobState.RUNNING for job in jobs):
            return {}
        if not all((run / f"started-{job_id}").exists() for job_id in held):
            return {}
        by_worker: dict[str, list[str]] = {}
        for job in jobs:
            assert job.worker_id is not None
            by_worker.setdefault(job.worker_id, []).append(job.id)
        return by_worker if sorted(map(len, by_worker.values())) == [2, 2] else {}

    by_worker = wait_until(both_hosts_hold_two, timeout=60, what="each host to run two jobs")
    pids = {worker.id: worker.pid for worker in pg_client.workers()}
    worker_of = {pid: worker_id for worker_id, pid in pids.items()}
    doomed_id, survivor_id = worker_of[doomed.pid], worker_of[survivor.pid]
    assert set(by_worker) == {doomed_id, survivor_id}

    # Each host reached PostgreSQL over its own veth link, from its own address.
    sessions = set(
        query(
            POSTGRES_URL,
            "SELECT DISTINCT application_name, host(client_addr) FROM pg_stat_activity"
            " WHERE application_name = ANY(%s)",
            ([host.netns for host in hosts],),
        )
    )
    assert sessions == {(host.netns, host.address) for host in hosts}

    # The doomed host dies mid-job: its worker first (SIGKILL), then the jobs it ran.
    doomed.kill()
    kill_netns(doomed_host.netns)
    lost_ids = by_worker[doomed_id]

    more = [pg_client.submit("hop", name=f"more-{i}").id for i in range(6)]
    (run / "release").touch()

    done = {job_id: pg_client.wait(job_id, timeout=60) for job_id in held + more}
    assert {job.state for job in done.values()} == {JobState.SUCCEEDED}
    for job_id in lost_ids:
        lost, rerun = done[job_id].attempts
        assert lost.reason == "Lost", lost
        assert lost.worker_id == doomed_id
        assert lost.exit_code is None and lost.counted and lost.stopped_at is not None
        assert rerun.worker_id == survivor_id
        assert rerun.exit_code == 0
        assert rerun.started_at is not None and rerun.started_at >= lost.stopped_at
    for job_id in set(done) - set(lost_ids):
        (attempt,) = done[job_id].attempts
        assert attempt.worker_id == survivor_id and attempt.exit_code == 0, done[job_id]
    assert leaders(hosts) == [surviving_host.netns]

    # Each job's side effect happened once: the killed attempts never got to theirs.
    lines = (run / "done").read_text().splitlines()
    assert sorted(lines) == sorted(done)

    assert survivor.terminate(timeout=30) == 0, survivor.output()


# -- a PostgreSQL restart under load --------------------------------------------------------------


@pytest.mark.slow
def test_workers_and_api_ride_out_a_postgres_restart_under_load(
    postgres_url, pg_client, api_server, spawn, tmp_path
):
    total, held_back = 5000, 1000
    pg_client.register({"executor": "python", "function": f"{FUNCTIONS}:noop"}, name="noop")
    pg_client.register({"executor": "python", "function": f"{FUNCTIONS}:hold"}, name="hold")
    restarted = tmp_path / "restarted"
    # A job that runs across the restart: its end is written to a PostgreSQL that restarted.
    across = pg_client.submit("hold", payload={"until": str(restarted)})
    # Jobs of a paused queue wait out the restart, so some jobs surely remain to run after it.
    pg_client.pause_queue("after")
    workers = [spawn() for _ in range(2)]
    wait_until(lambda: len(pg_client.workers()) == 2, timeout=30, what="2 workers to register")

    requests = [
        dockyard.SubmitRequest(definition="noop", queue="after" if n < held_back else None)
        for n in range(total)
    ]
    ids = {item.job.id for item in pg_client.submit_requests(requests)}
    assert len(ids) == total
    ids.add(across.id)
    total += 1

    wait_until(
        lambda: count_in(postgres_url, "SUCCEEDED") >= 1000,
        timeout=60,
        what="1,000 jobs to succeed",
    )
    assert pg_client.get(across.id).state is JobState.RUNNING
    before = postmaster_started()
    done_before = count_in(postgres_url, "SUCCEEDED")
    restart_postgres()
    after = postmaster_started()
    assert after > before
    assert 0 < done_before < total
    restarted.touch()

    # The API answers at once, and lists jobs through a store whose connections all broke.
    assert httpx.get(f"{api_server.url}/healthz", timeout=10).status_code == 200
    auth = {"Authorization": f"Bearer {api_server.admin_token}"}
    listed = httpx.get(f"{api_server.url}/v1/jobs", params={"limit": 10}, headers=auth, timeout=90)
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["jobs"]) == 10
    resumed = httpx.post(f"{api_server.url}/v1/queues/after/resume", headers=auth, timeout=90)
    assert resumed.status_code == 200, resumed.text

    wait_until(
        lambda: count_in(postgres_url, "SUCCEEDED") == total,
        timeout=120,
        what=f"all {total} jobs to succeed",
    )
    assert state_counts(postgres_url) == {"SUCCEEDED": total}
    ((attempts, jobs_with_attempts, extra),) = query(
        postgres_url,
        "SELECT count(*), count(DISTINCT job_id), count(*) FILTER (WHERE reason IS NOT NULL)"
        " FROM attempts",
    )
    assert (attempts, jobs_with_attempts) == (total, total), extra
    # The client, too, got over the restart; the job that ran across it ended once.
    bridged = pg_client.get(across.id)
    assert bridged.state is JobState.SUCCEEDED
    (attempt,) = bridged.attempts
    assert attempt.stopped_at is not None and attempt.stopped_at > after
    for worker in workers:
        assert worker.proc.poll() is None, worker.output()
        assert worker.terminate(timeout=30) == 0, worker.output()


# -- no double run --------------------------------------------------------------------------------


@pytest.mark.slow
def test_four_workers_run_twenty_thousand_jobs_exactly_once(
    postgres_url, pg_client, spawn, tmp_path
):
    total, batch = 20_000, 10_000
    ran = tmp_path / "ran.txt"
    pg_client.register({"executor": "python", "function": f"{FUNCTIONS}:record"}, name="record")
    workers = [spawn("--concurrency", "8") for _ in range(4)]
    wait_until(lambda: len(pg_client.workers()) == 4, timeout=30, what="4 workers to register")

    ids_by_n: dict[int, str] = {}
    for start in range(0, total, batch):
        requests = [
            dockyard.SubmitRequest(definition="record", payload={"n": n, "file": str(ran)})
            for n in range(start, start + batch)
        ]
        for n, item in enumerate(pg_client.submit_requests(requests), start):
            assert item.created
            ids_by_n[n] = item.job.id
    assert len(set(ids_by_n.values())) == total

    wait_until(
        lambda: count_in(postgres_url, "SUCCEEDED") == total,
        timeout=240,
        what=f"all {total} jobs to succeed",
    )
    assert state_counts(postgres_url) == {"SUCCEEDED": total}

    # The attempts table: one closed, counted attempt per job...
    rows = query(
        postgres_url,
        "SELECT job_id, number, worker_id, started_at, stopped_at, reason, counted FROM attempts"
        " ORDER BY job_id, started_at",
    )
    assert len(rows) == total
    by_job: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        job_id, number, _worker, started_at, stopped_at, reason, counted = row
        assert started_at is not None and stopped_at is not None, row
        assert started_at <= stopped_at, row
        assert (number, reason, counted) == (1, None, True), row
        by_job.setdefault(job_id, []).append(row)
    assert set(by_job) == set(ids_by_n.values())
    assert all(len(attempts) == 1 for attempts in by_job.values())
    # ...and no job has two attempts running at once (checked in general, not only per count).
    for attempts in by_job.values():
        for earlier, later in pairwise(attempts):
            assert later[3] >= earlier[4], attempts
    ((overlapping,),) = query(
        postgres_url,
        "SELECT count(*) FROM attempts a JOIN attempts b ON a.job_id = b.job_id"
        " AND a.number < b.number WHERE b.started_at < coalesce(a.stopped_at, 'infinity')",
    )
    assert overlapping == 0
    # Every worker took part, so the claims really raced.
    assert len({row[2] for row in rows}) == 4

    # The jobs' own side effect: each ran exactly once.
    lines = ran.read_text().splitlines()
    assert len(lines) == total
    assert {int(line) for line in lines} == set(ids_by_n)

    for worker in workers:
        assert worker.terminate(timeout=30) == 0, worker.output()


# -- a host cut off the network -------------------------------------------------------------------


def inner_link(host: Host) -> str:
    """The host's own end of its veth pair (inside its namespace), as :func:`make_hosts` names it."""
    return f"{host.netns}b"


@pytest.fixture
def cut_off(
    hosts: list[Host], spawn_on: Callable[..., HostWorker]
) -> Iterator[Callable[[Host], None]]:
    """``cut_off(host)`` takes the host off the network, killing nothing; relinked afterwards.

    The link goes down at the host's end: the machine's end stays up (without carrier), so its
    route to the host stays on the veth and PostgreSQL's packets to the host are dropped there
    rather than sent out through the default route. It requests ``spawn_on`` so that the link is
    back before the workers are stopped.
    """
    cut: list[Host] = []

    def cut_link(host: Host) -> None:
        cut.append(host)
        ip("-n", host.netns, "link", "set", inner_link(host), "down")

    yield cut_link
    for host in cut:
        command = ["ip", "-n", host.netns, "link", "set", inner_link(host), "up"]
        subprocess.run(command, capture_output=True, timeout=30, check=False)


def group_alive(pgid: int) -> bool:
    """Some process of process group ``pgid`` still runs (a zombie has ended; it does not count)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path("/proc", pid, "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        # pid (comm) state ppid pgrp …: comm may hold spaces and parentheses, so split after it.
        state, _ppid, pgrp = stat.rpartition(")")[2].split()[:3]
        if int(pgrp) == pgid and state not in "ZX":
            return True
    return False


#: The states of a job that has ended.
ENDED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


def trace_events(path: Path) -> dict[tuple[str, int], float]:
    """The ``start``/``end`` lines of the jobs' trace, as ``(event, attempt) → time``."""
    events: dict[tuple[str, int], float] = {}
    for line in path.read_text().splitlines():
        event, attempt, at = line.split()
        assert (event, int(attempt)) not in events, line
        events[event, int(attempt)] = float(at)
    return events


@pytest.mark.slow
def test_a_host_cut_off_the_network_stops_its_job_and_loses_its_leadership(
    postgres_url, pg_client, hosts, spawn_on, cut_off, tmp_path
):
    host_a, host_b = hosts
    run = tmp_path / "run"
    run.mkdir()
    out = shlex.quote(str(run))
    # Attempt 1 would run far longer than the takeover may take (it must still be running when
    # attempt 2 starts, unless it was stopped); later attempts end at once.
    long_run = 4 * DEAD_PEER_SECONDS
    script = (
        f'echo $$ > {out}/pid-"$DOCKYARD_JOB_ATTEMPT";'
        f' echo "start $DOCKYARD_JOB_ATTEMPT $(date +%s.%N)" >> {out}/trace;'
        f' if [ "$DOCKYARD_JOB_ATTEMPT" = 1 ]; then sleep {long_run}; else sleep 0.5; fi;'
        f' echo "end $DOCKYARD_JOB_ATTEMPT $(date +%s.%N)" >> {out}/trace'
    )
    register_process(
        pg_client, "long", script, shell=True, retry={"attempts": 2, "backoff_base": 0}
    )

    # A leads maintenance and runs the job; B, started after, has a free slot.
    worker_a = spawn_on(host_a, "--lease", "2", "--concurrency", "1")
    wait_until(lambda: leaders(hosts) == [host_a.netns], timeout=30, what="A to lead")
    job = pg_client.submit("long")
    wait_until(
        lambda: pg_client.get(job.id).state is JobState.RUNNING and (run / "trace").exists(),
        timeout=30,
        what="the job to run on A",
    )
    worker_b = spawn_on(host_b, "--lease", "2", "--concurrency", "1")
    wait_until(lambda: len(pg_client.workers()) == 2, timeout=30, what="B to register")
    ids = {worker.pid: worker.id for worker in pg_client.workers()}
    id_a, id_b = ids[worker_a.pid], ids[worker_b.pid]
    assert pg_client.get(job.id).worker_id == id_a
    # The shell of attempt 1 leads its own process group (the executor starts a session).
    first = int((run / "pid-1").read_text())
    assert group_alive(first)

    cut_off(host_a)
    cut_at = time.time()
    # From this side of the link, note when each of these is first seen: the time is taken
    # after the look, so it is at or after the moment the thing happened.
    seen: dict[str, float] = {}

    def note(what: str, happened: Callable[[], bool]) -> None:
        if what not in seen and happened():
            seen[what] = time.time()

    def rescued_and_ended() -> bool:
        note("attempt 1 stopped", lambda: not group_alive(first))
        note("B leads", lambda: leaders(hosts) == [host_b.netns])
        note("job ended", lambda: pg_client.get(job.id).state in ENDED)
        return "B leads" in seen and "job ended" in seen

    wait_until(rescued_and_ended, timeout=60, what="B to lead and the job to end")

    # B took over the leadership once the server gave up on A's session.
    assert seen["B leads"] - cut_at < 2 * DEAD_PEER_SECONDS, seen["B leads"] - cut_at
    # The job was rescued from A and run again on B.
    done = pg_client.get(job.id)
    assert done.state is JobState.SUCCEEDED, done
    lost, rerun = done.attempts
    assert (lost.number, lost.reason, lost.worker_id) == (1, "Lost", id_a), lost
    assert lost.exit_code is None and lost.counted and lost.stopped_at is not None
    assert (rerun.number, rerun.worker_id, rerun.exit_code) == (2, id_b, 0), rerun
    # The fence: A, cut off, stopped attempt 1 before B started attempt 2 (it never ended).
    events = trace_events(run / "trace")
    assert set(events) == {("start", 1), ("start", 2), ("end", 2)}, events
    assert "attempt 1 stopped" in seen, "attempt 1 still ran on A when the job ended on B"
    assert seen["attempt 1 stopped"] < events["start", 2], (seen, events, worker_a.output())
    # A was cut off, not killed.
    assert worker_a.proc.poll() is None, worker_a.output()


@pytest.mark.slow
def test_a_worker_cut_off_the_network_stops_its_job_before_another_host_reruns_it(
    postgres_url, pg_client, hosts, spawn_on, cut_off, tmp_path
):
    """The double run the fence prevents: B leads and rescues at once, so A, cut off, must stop
    its attempt on its own before its lease runs out."""
    host_a, host_b = hosts
    run = tmp_path / "run"
    run.mkdir()
    out = shlex.quote(str(run))
    gate = run / "gate"
    script = (
        f'echo $$ > {out}/pid-"$DOCKYARD_JOB_ATTEMPT";'
        f' echo "start $DOCKYARD_JOB_ATTEMPT $(date +%s.%N)" >> {out}/trace;'
        f' if [ "$DOCKYARD_JOB_ATTEMPT" = 1 ]; then sleep {4 * DEAD_PEER_SECONDS}; else sleep 0.5; fi;'
        f' echo "end $DOCKYARD_JOB_ATTEMPT $(date +%s.%N)" >> {out}/trace'
    )
    register_process(
        pg_client, "long", script, shell=True, retry={"attempts": 2, "backoff_base": 0}
    )
    register_process(
        pg_client,
        "blocker",
        f"until [ -e {shlex.quote(str(gate))} ]; do sleep 0.05; done",
        shell=True,
    )
    # B leads and is kept busy, so the long job goes to A.
    spawn_on(host_b, "--lease", "2", "--concurrency", "1")
    wait_until(lambda: leaders(hosts) == [host_b.netns], timeout=30, what="B to lead")
    blocker = pg_client.submit("blocker")
    wait_until(lambda: pg_client.get(blocker.id).state is JobState.RUNNING, what="B to be busy")
    worker_a = spawn_on(host_a, "--lease", "2", "--concurrency", "1")
    job = pg_client.submit("long")
    wait_until(
        lambda: pg_client.get(job.id).state is JobState.RUNNING and (run / "trace").exists(),
        what="the job to run on A",
    )
    first = int((run / "pid-1").read_text())

    cut_off(host_a)
    gate.touch()  # B is free to rerun the job as soon as it has rescued it
    seen: dict[str, float] = {}

    def stopped_and_ended() -> bool:
        if "stopped" not in seen and not group_alive(first):
            seen["stopped"] = time.time()
        if "ended" not in seen and pg_client.get(job.id).state in ENDED:
            seen["ended"] = time.time()
        return "stopped" in seen and "ended" in seen

    wait_until(stopped_and_ended, timeout=60, what="attempt 1 to stop and the job to end")

    done = pg_client.get(job.id)
    assert done.state is JobState.SUCCEEDED, done
    assert [attempt.reason for attempt in done.attempts] == ["Lost", None]
    events = trace_events(run / "trace")
    assert set(events) == {("start", 1), ("start", 2), ("end", 2)}, events
    assert seen["stopped"] < events["start", 2], (seen, events, worker_a.output())
    assert worker_a.proc.poll() is None, worker_a.output()
