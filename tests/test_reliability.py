"""Reliability: crashes, many workers on one store, group order, retries, shutdown, burst, routing.

Every test runs real ``python -m dockyard worker`` processes on a real SQLite file and real shell
jobs; nothing is mocked. Where nothing can be awaited (a job reaching RUNNING, a file appearing),
tests poll with :func:`wait_until`, never with a bare sleep.
"""

from __future__ import annotations

import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

import dockyard
from dockyard import Client, Job, JobState
from dockyard.executors.reaper import TOKEN_VARIABLE, Reaper
from dockyard.settings import Settings
from tests.conftest import (
    REPO,
    WorkerProcess,
    dockyard_environ,
    register_process,
    suite_settings,
    wait_until,
)

OPEN_STATES = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"]


def is_running(client: Client, job_id: str) -> bool:
    return client.get(job_id).state is JobState.RUNNING


def no_open_jobs(client: Client) -> bool:
    return not client.list(states=OPEN_STATES, limit=1)


def db_path(settings: Settings) -> Path:
    prefix = "sqlite:///"
    assert settings.url.startswith(prefix), settings.url
    return Path(settings.url.removeprefix(prefix))


@pytest.fixture
def db(settings: Settings, client: Client) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the store the client opened (and migrated)."""
    uri = f"file:{db_path(settings)}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as connection:
        connection.row_factory = sqlite3.Row
        yield connection


@pytest.fixture
def spawn(spawn_worker) -> Iterator[Callable[..., WorkerProcess]]:
    """``spawn_worker`` that also closes each worker's log at teardown.

    ``WorkerProcess.kill`` and the ``spawn_worker`` teardown leave the log file open, which
    pytest reports as an unraisable ResourceWarning (an error here); ``terminate`` closes it.
    """
    spawned: list[WorkerProcess] = []

    def start(*args: str) -> WorkerProcess:
        process: WorkerProcess = spawn_worker(*args)
        spawned.append(process)
        return process

    yield start
    for process in spawned:
        if process.proc.poll() is None:
            process.kill()
        process.terminate()  # already exited: only waits and closes the log


def kill_group(pid_file: Path) -> None:
    """SIGKILL the process group whose leader wrote ``pid_file`` (a job orphaned by a crash)."""
    with suppress(FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        os.killpg(int(pid_file.read_text().strip()), signal.SIGKILL)


# -- 1. a crashed worker's job is rescued after its lease and re-run elsewhere --------------------


def test_sigkilled_worker_job_is_rerun_by_another_worker_and_first_attempt_is_lost(
    client, spawn, tmp_path
):
    marker = tmp_path / "attempt-1-started"
    pid_file = tmp_path / "attempt-1.pid"
    script = (
        'if [ "$DOCKYARD_JOB_ATTEMPT" = 1 ]; then '
        f"echo $$ > {shlex.quote(str(pid_file))}; touch {shlex.quote(str(marker))}; exec sleep 60; "
        "fi; exit 0"
    )
    register_process(client, "crashy", script, shell=True, retry={"attempts": 2, "backoff_base": 0})
    job = client.submit("crashy")

    first = spawn("--lease", "2", "--concurrency", "1")
    try:
        wait_until(
            lambda: marker.exists() and is_running(client, job.id),
            timeout=20,
            what="attempt 1 to run",
        )
        first_worker = client.get(job.id).worker_id
        assert first_worker is not None
        first.kill()
    finally:
        kill_group(pid_file)  # the crash leaves the job's own process group behind

    spawn("--lease", "2")
    done = client.wait(job.id, timeout=30)

    assert done.state is JobState.SUCCEEDED
    assert len(done.attempts) == 2
    lost, rerun = done.attempts
    assert lost.reason == "Lost"
    assert lost.stopped_at is not None
    assert lost.exit_code is None
    assert lost.counted
    assert lost.worker_id == first_worker
    assert rerun.exit_code == 0
    assert rerun.started_at is not None and rerun.started_at >= lost.stopped_at
    assert rerun.worker_id != lost.worker_id
    assert done.exit_code == 0


# -- 2. many workers, many jobs: each job runs exactly once ---------------------------------------


@pytest.mark.slow
@pytest.mark.sqlite_only  # reads the SQLite file; tests/test_postgres.py does it on PostgreSQL
def test_four_workers_run_two_thousand_jobs_exactly_once(client, spawn, db, tmp_path):
    count = 2000
    ids_file = tmp_path / "ids.txt"
    register_process(
        client, "once", f'echo "$DOCKYARD_JOB_ID" >> {shlex.quote(str(ids_file))}', shell=True
    )
    workers = [spawn("--concurrency", "4") for _ in range(4)]
    wait_until(lambda: len(client.workers()) == 4, timeout=30, what="4 workers to register")

    submitted = client.submit_requests([dockyard.SubmitRequest(definition="once")] * count)
    ids = {item.job.id for item in submitted}
    assert len(ids) == count and all(item.created for item in submitted)

    wait_until(lambda: no_open_jobs(client), timeout=240, what="all jobs to end")

    # What a user sees through the SDK.
    jobs = client.list(limit=10_000)
    assert {job.id for job in jobs} == ids
    assert {job.state for job in jobs} == {JobState.SUCCEEDED}
    for job_id in ids:
        job = client.get(job_id)
        assert len(job.attempts) == 1, job
        (attempt,) = job.attempts
        assert attempt.exit_code == 0 and attempt.counted and attempt.stopped_at is not None

    # The store itself: one closed attempt per job, and no job's attempts ever overlap in time.
    rows = db.execute(
        "SELECT job_id, number, worker_id, started_at, stopped_at, exit_code FROM attempts"
        " ORDER BY job_id, started_at"
    ).fetchall()
    assert len(rows) == count
    by_job: dict[str, list[sqlite3.Row]] = {}
    for row in rows:
        assert row["started_at"] is not None and row["stopped_at"] is not None, dict(row)
        assert row["started_at"] <= row["stopped_at"], dict(row)
        by_job.setdefault(row["job_id"], []).append(row)
    assert set(by_job) == ids
    for attempts in by_job.values():
        for earlier, later in pairwise(attempts):
            assert later["started_at"] >= earlier["stopped_at"], [dict(a) for a in attempts]
    # Every worker took part, so the claims really raced.
    assert len({row["worker_id"] for row in rows}) == 4

    # The jobs' own side effect: each id appended exactly once.
    lines = ids_file.read_text().splitlines()
    assert len(lines) == count
    assert set(lines) == ids

    for worker in workers:
        assert worker.terminate(timeout=30) == 0, worker.output()


# -- 3. groups run one job at a time, in submission order, across workers -------------------------


def test_group_order_is_kept_with_four_workers(client, spawn, tmp_path):
    groups, per_group = 3, 20
    trace = tmp_path / "trace.txt"
    out = shlex.quote(str(trace))
    register_process(
        client,
        "step",
        f'echo "$DOCKYARD_JOB_NAME start" >> {out}; sleep 0.05; echo "$DOCKYARD_JOB_NAME end" >> {out}',
        shell=True,
    )
    requests = [
        dockyard.SubmitRequest(definition="step", group=f"g{g}", name=f"g{g}-{seq:02d}")
        for seq in range(per_group)
        for g in range(groups)
    ]
    submitted = [item.job for item in client.submit_requests(requests)]
    for _ in range(4):
        spawn("--concurrency", "4")

    for job in submitted:
        assert client.wait(job.id, timeout=60).state is JobState.SUCCEEDED

    # The trace, in the order the jobs wrote it: per group start/end pairs in submission order.
    events = [line.split() for line in trace.read_text().splitlines()]
    assert len(events) == 2 * groups * per_group
    for g in range(groups):
        mine = [(name, what) for name, what in events if name.startswith(f"g{g}-")]
        expected = [
            (f"g{g}-{seq:02d}", what) for seq in range(per_group) for what in ("start", "end")
        ]
        assert mine == expected

    # The store agrees: each job of a group started after the previous one stopped.
    for g in range(groups):
        jobs = [client.get(job.id) for job in submitted if job.group_key == f"g{g}"]
        for previous, following in pairwise(jobs):
            assert previous.stopped_at is not None and following.started_at is not None
            assert following.started_at >= previous.stopped_at, (previous, following)

    # Different groups did run side by side.
    running: set[str] = set()
    most = 0
    for name, what in events:
        group = name.split("-")[0]
        if what == "start":
            running.add(group)
        else:
            running.discard(group)
        most = max(most, len(running))
    assert most >= 2


# -- 4. a job waiting for its retry still holds its group -----------------------------------------


def test_job_waiting_for_retry_blocks_its_group(client, spawn):
    register_process(
        client,
        "flaky",
        '[ "$DOCKYARD_JOB_ATTEMPT" -ge 2 ]',
        shell=True,
        retry={"attempts": 2, "backoff_base": 2},
    )
    register_process(client, "next", "true")
    first = client.submit("flaky", group="g")
    second = client.submit("next", group="g")
    spawn("--concurrency", "4")

    first_done = client.wait(first.id, timeout=30)
    second_done = client.wait(second.id, timeout=30)

    assert first_done.state is JobState.SUCCEEDED
    failed, retried = first_done.attempts
    assert failed.exit_code == 1 and retried.exit_code == 0
    assert failed.stopped_at is not None and retried.started_at is not None
    assert (retried.started_at - failed.stopped_at).total_seconds() >= 2.0  # the backoff
    assert second_done.state is JobState.SUCCEEDED
    assert len(second_done.attempts) == 1
    assert second_done.started_at is not None and retried.stopped_at is not None
    assert second_done.started_at >= retried.stopped_at


# -- 5. graceful shutdown -------------------------------------------------------------------------


def test_sigterm_lets_the_running_job_finish(client, spawn, tmp_path):
    # The job holds until the worker is shutting down, so it surely runs past the SIGTERM.
    go = tmp_path / "go"
    register_process(
        client,
        "short",
        f"until [ -e {shlex.quote(str(go))} ]; do sleep 0.02; done; sleep 1",
        shell=True,
    )
    job = client.submit("short")
    worker = spawn("--shutdown-grace", "5")
    wait_until(lambda: is_running(client, job.id), timeout=20, what="the job to run")

    worker.proc.send_signal(signal.SIGTERM)
    wait_until(
        lambda: "waiting up to 5s for 1 running job" in worker.output(),
        timeout=20,
        what="the worker to start shutting down",
    )
    go.touch()
    assert worker.terminate(timeout=20) == 0, worker.output()

    done = client.get(job.id)
    assert done.state is JobState.SUCCEEDED
    (attempt,) = done.attempts
    assert attempt.exit_code == 0 and attempt.counted


def test_sigterm_hands_back_a_job_that_outlives_the_grace(client, spawn):
    register_process(
        client, "long", 'if [ "$DOCKYARD_JOB_ATTEMPT" = 1 ]; then exec sleep 60; fi', shell=True
    )
    job = client.submit("long")
    worker = spawn("--shutdown-grace", "0.5")
    wait_until(lambda: is_running(client, job.id), timeout=20, what="the job to run")

    sent = time.monotonic()
    assert worker.terminate(timeout=20) == 0, worker.output()
    assert time.monotonic() - sent < 10  # the grace and a cancel, not the job's 60 s

    back = client.get(job.id)
    assert back.state is JobState.RUNNABLE
    assert back.attempts_used == 0
    (released,) = back.attempts
    assert released.reason == "Released"
    assert released.counted is False
    assert released.stopped_at is not None

    spawn()
    done = client.wait(job.id, timeout=30)
    assert done.state is JobState.SUCCEEDED
    assert [a.counted for a in done.attempts] == [False, True]
    assert done.attempts[1].exit_code == 0


# -- 6. burst mode --------------------------------------------------------------------------------


def test_burst_worker_runs_everything_then_exits(client, settings):
    register_process(client, "quick", "true")
    jobs = [client.submit("quick") for _ in range(10)]
    env = dockyard_environ(settings)
    env.pop("DOCKYARD_LOG_DIR", None)

    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "--home", str(settings.home), "worker", "--burst"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert [client.get(job.id).state for job in jobs] == [JobState.SUCCEEDED] * 10


# -- 7. priority ----------------------------------------------------------------------------------


def test_higher_priority_jobs_start_first(client, spawn):
    register_process(client, "task", "true")
    low = [client.submit("task", priority=-5, name=f"low-{i}") for i in range(3)]
    high = [client.submit("task", priority=10, name=f"high-{i}") for i in range(3)]
    spawn("--concurrency", "1")

    done: list[Job] = [client.wait(job.id, timeout=30) for job in low + high]
    assert {job.state for job in done} == {JobState.SUCCEEDED}
    started = {job.name: job.started_at for job in done}
    assert all(started.values()), started
    order = sorted(started, key=lambda name: started[name] or datetime.now(UTC))
    assert order == ["high-0", "high-1", "high-2", "low-0", "low-1", "low-2"]


# -- 8. queues ------------------------------------------------------------------------------------


def test_worker_takes_only_its_queues(client, spawn):
    register_process(client, "task", "true")
    other = client.submit("task", queue="b")
    mine = client.submit("task", queue="a")
    spawn("--queues", "a")

    assert client.wait(mine.id, timeout=30).state is JobState.SUCCEEDED
    untouched = client.get(other.id)
    assert untouched.state is JobState.RUNNABLE
    assert untouched.attempt_count == 0 and untouched.attempts == ()

    spawn("--queues", "b")
    assert client.wait(other.id, timeout=30).state is JobState.SUCCEEDED


# -- 9. an idle worker sleeps ---------------------------------------------------------------------

needs_proc = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads a process's CPU time from /proc"
)
#: Share of one CPU an idle worker may use. Idle, a worker polls the store every 20 ms and uses a
#: few % of a CPU; a worker that wakes at once, again and again, uses all the CPU it can get (one
#: CPU on a quiet machine). CPU time is work done, so a slow or busy machine cannot push a worker
#: that sleeps over this bound.
IDLE_CPU_SHARE = 0.2


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (its children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuShare:
    """The share of one CPU that process ``pid`` has used since this was made."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu = cpu_seconds(pid)
        self.start = time.monotonic()

    def __call__(self) -> float:
        return (cpu_seconds(self.pid) - self.cpu) / (time.monotonic() - self.start)


@needs_proc
def test_idle_worker_does_not_busy_loop(client, spawn):
    register_process(client, "later", "true")
    worker = spawn()
    wait_until(client.workers, timeout=30, what="the worker to register")
    due = datetime.now(UTC) + timedelta(seconds=2)
    (submitted,) = client.submit_requests(
        [dockyard.SubmitRequest(definition="later", not_before=due)]
    )

    share = CpuShare(worker.pid)
    done = client.wait(submitted.job.id, timeout=30)  # the worker idles until the job is due
    used = share()

    assert done.state is JobState.SUCCEEDED
    assert done.started_at is not None and done.started_at >= due
    assert used < IDLE_CPU_SHARE, f"an idle worker used {used:.0%} of a CPU"


@needs_proc
def test_worker_waiting_behind_a_running_group_does_not_busy_loop(client, spawn):
    register_process(client, "head", "sleep", "2")
    register_process(client, "tail", "true")
    head = client.submit("head", group="g")
    tail = client.submit("tail", group="g")  # runnable, but blocked until head ends
    worker = spawn("--concurrency", "2")
    wait_until(lambda: is_running(client, head.id), timeout=20, what="the head job to run")

    share = CpuShare(worker.pid)
    head_done = client.wait(head.id, timeout=30)
    used = share()

    assert head_done.state is JobState.SUCCEEDED
    assert client.wait(tail.id, timeout=30).state is JobState.SUCCEEDED
    assert used < IDLE_CPU_SHARE, f"a worker with a free slot used {used:.0%} of a CPU"


# -- 10. a body never outlives its worker (issue 25) ----------------------------------------------


def pid_dead(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return state.split()[1] in ("Z", "X")


def reapers_of(worker_pid: int) -> list[int]:
    """The reaper processes a worker started (its children running reaper.py)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == worker_pid and b"reaper.py" in command and not pid_dead(int(entry.name)):
            found.append(int(entry.name))
    return found


def read_pids(path: Path, count: int) -> list[int] | None:
    """The ``count`` pids a job wrote to ``path``, one a line, once it wrote them all."""
    try:
        lines = path.read_text().split()
    except FileNotFoundError:
        return None
    return [int(line) for line in lines] if len(lines) >= count else None


#: A program, its child, and a grandchild that left the group (setsid): all write their pids.
FAMILY = (
    "echo $$ >> {pids}; sleep 300 & echo $! >> {pids}; "
    "setsid sh -c 'echo $$ >> {pids}; exec sleep 300' & wait"
)


def test_a_sigkilled_workers_programs_die_with_it_grandchildren_included(client, spawn, tmp_path):
    pids = tmp_path / "pids"
    register_process(client, "family", FAMILY.format(pids=shlex.quote(str(pids))), shell=True)
    job = client.submit("family")
    worker = spawn("--lease", "60", "--concurrency", "1")
    family = wait_until(lambda: read_pids(pids, 3), timeout=20, what="the family to start") or []
    # The start is written while the program starts: it may be RUNNING a moment after the pids.
    wait_until(lambda: is_running(client, job.id), timeout=20, what="the job to run")
    assert not any(pid_dead(pid) for pid in family)

    worker.kill()

    # Long before the 60 s lease: the reaper ends them, no rescue needed.
    wait_until(lambda: all(pid_dead(pid) for pid in family), timeout=10, what="the family to die")
    # The reaper says so once it has also scanned for the processes that left the group.
    wait_until(
        lambda: "killed 1 process group(s)" in worker.output(), timeout=10, what="its report"
    )


def write_pid_and_sleep(payload: dict[str, str]) -> None:
    """An isolated function: write its pid, then outlive any test."""
    Path(payload["pid"]).write_text(str(os.getpid()))
    time.sleep(300)


def test_a_sigkilled_workers_isolated_function_dies_with_it(client, spawn, tmp_path):
    pid_file = tmp_path / "pid"
    client.register(
        {
            "executor": "python",
            "function": "tests.test_reliability:write_pid_and_sleep",
            "isolation": "subprocess",
        },
        name="isolated",
    )
    client.submit("isolated", payload={"pid": str(pid_file)})
    worker = spawn("--lease", "60")
    (pid,) = wait_until(lambda: read_pids(pid_file, 1), timeout=30, what="the function") or [0]

    worker.kill()

    wait_until(lambda: pid_dead(pid), timeout=10, what="the function's process to die")


def test_a_worker_whose_reaper_died_starts_another_that_still_reaps(client, spawn, tmp_path):
    pids = tmp_path / "pids"
    register_process(client, "family", FAMILY.format(pids=shlex.quote(str(pids))), shell=True)
    client.submit("family")
    worker = spawn("--lease", "60", "--concurrency", "1")
    family = wait_until(lambda: read_pids(pids, 3), timeout=20, what="the family to start") or []
    (first,) = wait_until(lambda: reapers_of(worker.pid), timeout=10, what="the reaper")

    os.kill(first, signal.SIGKILL)
    (second,) = wait_until(
        lambda: [pid for pid in reapers_of(worker.pid) if pid != first],
        timeout=10,
        what="another reaper",
    )
    worker.kill()

    wait_until(lambda: all(pid_dead(pid) for pid in family), timeout=10, what="the family to die")
    assert second != first
    assert "the reaper (pid" in worker.output()


def test_sigterm_waits_for_an_inline_function_it_cannot_stop_and_records_its_end(
    client, spawn, tmp_path
):
    # Issue 25, fault 2: the grace is shorter than the function. The worker must not hand the
    # job back (another worker would run it beside the thread); it waits for the function.
    trace, release = tmp_path / "trace", tmp_path / "release"
    client.register(
        {"executor": "python", "function": "tests.test_worker_leases:hold"}, name="hold"
    )
    job = client.submit("hold", payload={"trace": str(trace), "release": str(release)})
    worker = spawn("--shutdown-grace", "0.5")
    wait_until(lambda: trace.exists(), timeout=30, what="the function to start")

    worker.proc.send_signal(signal.SIGTERM)
    wait_until(
        lambda: "cannot be stopped" in worker.output(), timeout=20, what="the worker to warn"
    )
    held = client.get(job.id)
    assert held.state is JobState.RUNNING and held.attempts[0].stopped_at is None
    release.touch()
    assert worker.terminate(timeout=30) == 0, worker.output()

    done = client.get(job.id)
    assert done.state is JobState.SUCCEEDED and done.result == "held"
    (attempt,) = done.attempts
    assert attempt.counted and attempt.reason is None
    assert [line.split()[0] for line in trace.read_text().splitlines()] == ["start", "end"]


def test_the_reaper_kills_a_group_whose_lease_runs_out_unrenewed_and_only_then(tmp_path):
    # The watchdog, for a worker that is frozen: a lease renewed keeps the program past its
    # first deadline; left to run out, the program dies with its group and a descendant that
    # left the group (it carries the program's mark), with no worker dying.
    pids = tmp_path / "pids"
    reaper = Reaper()
    mark = reaper.mark()
    program = subprocess.Popen(
        ["sh", "-c", FAMILY.format(pids=shlex.quote(str(pids)))],
        start_new_session=True,
        env={**os.environ, TOKEN_VARIABLE: mark},
    )
    try:
        reaper.lease("job/1", 1.0)
        reaper.track_group(program.pid, mark, "job/1")
        family = wait_until(lambda: read_pids(pids, 3), timeout=20, what="the family") or []
        for _ in range(15):  # 1.5 s of renewals, as a worker makes them every lease / 3
            reaper.lease("job/1", 1.0)
            time.sleep(0.1)
        assert not any(pid_dead(pid) for pid in family)

        wait_until(lambda: all(pid_dead(pid) for pid in family), timeout=10, what="its end")
        assert program.wait(10) == -signal.SIGKILL
    finally:
        _close(reaper)
        with suppress(ProcessLookupError):
            os.killpg(program.pid, signal.SIGKILL)


def test_a_program_that_execs_just_after_its_worker_died_is_killed_by_the_reaper():
    # A program between its fork and its exec when its worker dies: its group was never told
    # to the reaper, and it carries the worker's token only from its exec on. The reaper
    # scans for the token again over the second after the end of its pipe.
    reaper = Reaper()
    reaper.ensure()
    process = reaper._proc
    reaper._abandon()  # the worker is gone: the reaper's pipe is at its end
    program = subprocess.Popen(
        ["sleep", "300"], start_new_session=True, env={**os.environ, TOKEN_VARIABLE: reaper.mark()}
    )
    try:
        assert program.wait(10) == -signal.SIGKILL
    finally:
        with suppress(ProcessLookupError):
            program.kill()
        if process is not None:
            process.wait(15)


def _close(reaper: Reaper) -> None:
    """Close the reaper's pipe as a worker's death does (it then exits), and wait for it."""
    process = reaper._proc
    reaper._abandon()
    if process is not None:
        process.wait(15)


# -- 11. a graceful stop never hands back a job whose body ran (issue 17) ------------------------


def test_a_job_claimed_by_a_claim_in_flight_at_sigterm_is_handed_back_unstarted(
    postgres_url, tmp_path
):
    # The end of job A and the claim of job B share one transaction (apply_and_claim). Hold A's
    # row so that this write is in flight when SIGTERM comes: B is claimed after the stop. It
    # must not start (it would be handed back after its body ran, and run again elsewhere).
    import psycopg

    settings = suite_settings(tmp_path / "home", postgres_url)
    trace, release = tmp_path / "trace", tmp_path / "release"
    b_trace = tmp_path / "b-trace"
    with dockyard.DirectClient(settings) as client:
        client.register(
            {"executor": "python", "function": "tests.test_worker_leases:hold"}, name="hold"
        )
        a = client.submit("hold", payload={"trace": str(trace), "release": str(release)})
        worker = WorkerProcess(
            settings, "--concurrency", "1", "--shutdown-grace", "10", log=tmp_path / "worker.log"
        )
        try:
            wait_until(lambda: trace.exists(), timeout=30, what="job A to start")
            b = client.submit("hold", payload={"trace": str(b_trace), "release": str(release)})
            # Two sessions: the statistics views hold still inside a transaction.
            with (
                psycopg.connect(postgres_url, autocommit=True) as lock,
                psycopg.connect(postgres_url, autocommit=True) as watch,
            ):
                with lock.transaction():
                    lock.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", (a.id,))
                    release.touch()  # A returns; its end waits on the row lock
                    wait_until(
                        lambda: watch.execute(
                            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND query LIKE 'UPDATE jobs SET state%'"
                        ).fetchone(),
                        timeout=30,
                        what="A's end to wait on the row lock",
                    )
                    worker.proc.send_signal(signal.SIGTERM)
                    wait_until(
                        lambda: "waiting up to 10s" in worker.output(),
                        timeout=30,
                        what="the worker to stop",
                    )
                    # Leaving the block commits: A's end and B's claim go through.
            assert worker.proc.wait(60) == 0, worker.output()
        finally:
            worker.close()

        assert client.get(a.id).state is JobState.SUCCEEDED
        back = client.get(b.id)
        assert not b_trace.exists(), "B's body ran, then B was handed back to run again"
        assert back.state is JobState.RUNNABLE and back.attempts_used == 0
        (released,) = back.attempts
        assert (released.reason, released.counted, released.started_at) == ("Released", False, None)
