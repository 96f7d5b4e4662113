"""PostgreSQL faults: the database down longer than the lease, a worker's backends terminated.

Issue 25, fault 3: after an outage longer than the lease, a job claimed as the database came
back was fenced at once (its claim had computed the lease before the outage, so it arrived
expired) and run twice, once beside itself. A claim's lease starts when the claim applies, and
a renewal that failed because the database was unreachable is no lost lease while the lease
itself runs. These faults exist on PostgreSQL only (SQLite is a file: it has no outage).

The outage stops the machine's PostgreSQL for a few seconds (``pg_ctlcluster``; other tests
on the machine see it too) and always starts it again, whatever the test does.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dockyard import Client
from dockyard.settings import Settings
from tests.conftest import POSTGRES_URL, suite_settings, wait_until
from tests.faults.conftest import LEASE, Faults, register_bodies, unique_name
from tests.faults.runs import Part


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str) -> Settings:
    """This module runs on PostgreSQL only (the ``backend`` parameter does not apply)."""
    return suite_settings(tmp_path / "home", postgres_url)


def _query(sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
        return conn.execute(sql, args).fetchall()


def _answers() -> bool:
    try:
        _query("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture
def cluster() -> Iterator[tuple[str, str]]:
    """The test PostgreSQL's ``(version, name)`` for ``pg_ctlcluster``; started again after
    the test if it stopped it (always, even when the test failed: others use it)."""
    ((name,), (version,)) = _query(
        "SELECT setting FROM pg_settings WHERE name IN ('cluster_name', 'server_version_num')"
        " ORDER BY name"
    )
    version_dir, _, cluster_name = str(name).partition("/")
    if not cluster_name:  # no cluster_name set: Debian's default cluster of this major version
        version_dir, cluster_name = str(int(version) // 10000), "main"
    try:
        yield version_dir, cluster_name
    finally:
        if not _answers():
            _pg_ctl(version_dir, cluster_name, "start")
            wait_until(_answers, timeout=60, what="PostgreSQL to accept connections again")


def _pg_ctl(version: str, name: str, action: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.slow
def test_no_job_claimed_as_postgres_comes_back_is_fenced_and_run_twice(
    client: Client, faults: Faults, spawn: Any, cluster: tuple[str, str]
) -> None:
    register_bodies(client)
    workers = [spawn("--lease", str(LEASE), "--concurrency", "4") for _ in range(2)]
    total = 600
    faults.submit("inline", total, seconds=0.05)

    def under_way(parts: list[Part]) -> bool:
        return sum(part.end is not None for part in parts) >= 60

    faults.runs.wait_for(under_way, what="60 jobs to run")
    version, name = cluster
    try:
        _pg_ctl(version, name, "stop")
        time.sleep(2 * LEASE + 1)  # the fault's length: every lease held runs out meanwhile
    finally:
        restarting = time.time()
        _pg_ctl(version, name, "start")
    wait_until(_answers, timeout=60, what="PostgreSQL to accept connections again")
    faults.wait_ended(timeout=120)

    problems = faults.problems()
    # A job running when the database went down may be rescued and run again once it is back
    # (its end could not be written within its lease), but no job starts twice after that:
    # a claim made as the database comes back holds a lease that runs from the claim.
    for job_id, runs in faults.all_runs().items():
        after = [run for run in runs if run.start > restarting]
        if len(after) > 1:
            shown = "; ".join(run.describe(faults.origin) for run in runs)
            problems.append(
                f"job {job_id} started {len(after)} times once PostgreSQL was back"
                f" (started at {restarting - faults.origin:+.3f}s): {shown}"
            )
    problems += [
        f"worker {w.pid} died: {w.output()[-2000:]}" for w in workers if w.proc.poll() is not None
    ]
    assert not problems, "\n".join(problems)


def test_a_worker_whose_backends_are_terminated_keeps_its_jobs(
    client: Client, faults: Faults, spawn: Any
) -> None:
    register_bodies(client)
    application = unique_name()
    # A longer lease than the other faults: the pool reconnects with a backoff, and on a loaded
    # machine two reconnections took more than the 2 s lease (the bodies outlast both rounds).
    lease = 2 * LEASE
    worker = spawn("--lease", str(lease), "--concurrency", "4", name=application)
    threads = faults.submit("inline", 2, seconds=4 * LEASE)
    programs = faults.submit("program", 2, seconds=4 * LEASE, grandchild=True)
    faults.wait_started(threads)
    faults.wait_started(programs, parts=2)
    ids = threads + programs

    terminated = []
    for _ in range(2):  # mid-run, and again once the worker has renewed every lease since
        before = faults.leases(ids)
        ((count,),) = _query(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (application,),
        )
        terminated.append(int(count))

        def renewed(before: dict[str, float] = before) -> bool:
            leases = {job: client.get(job).lease_expires_at for job in ids}
            return all(
                (lease := leases[job]) is not None and lease.timestamp() > held
                for job, held in before.items()
            )

        # Before the leases run out: a lost connection is no lost lease.
        wait_until(renewed, timeout=lease, what="the worker to renew its leases again")
    assert all(terminated), terminated
    faults.wait_ended()

    # A connection lost and found again within the lease loses no lease: every body ran once.
    problems = faults.problems(1)
    if worker.proc.poll() is not None:
        problems.append(f"the worker died: {worker.output()[-2000:]}")
    assert not problems, "\n".join(problems)


def test_a_worker_killed_between_its_claim_and_its_start_loses_no_job(
    client: Client, faults: Faults, spawn: Any, settings: Settings
) -> None:
    register_bodies(client)
    application = unique_name()
    client.pause_queue("default")
    worker = spawn("--lease", str(LEASE), name=application)
    (job_id,) = faults.submit("program", 1, seconds=0.3, grandchild=True)
    # The worker reads a job's definition after its claim commits and before the attempt
    # starts: with the table locked, it is caught in between, the claim written, no start.
    with psycopg.connect(settings.url) as held:
        held.execute("LOCK TABLE definitions IN ACCESS EXCLUSIVE MODE")
        client.resume_queue("default")

        def caught() -> bool:
            ((waiting,),) = held.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = %s AND wait_event_type = 'Lock'",
                (application,),
            ).fetchall()
            return bool(waiting)

        wait_until(caught, timeout=30, what="the worker to wait for the definition")
        ((state,),) = held.execute("SELECT state FROM jobs WHERE id = %s", (job_id,)).fetchall()
        assert state == "STARTING", state
        worker.kill()
        held.rollback()
    spawn("--lease", str(LEASE))
    faults.wait_ended()

    problems = faults.problems(1)
    job = client.get(job_id)
    if [a.reason for a in job.attempts] != ["Lost", None] or job.attempts[0].started_at:
        problems.append(f"job {job_id}: {job.attempts}")
    assert not problems, "\n".join(problems)


def test_a_worker_cut_off_longer_than_its_lease_leaves_no_body_running_beside_a_rescue(
    client: Client, faults: Faults, spawn: Any
) -> None:
    register_bodies(client)
    application = unique_name()
    # Whether this worker lives on or ends itself is its choice: what it ran is judged.
    spawn("--lease", str(LEASE), "--concurrency", "4", name=application)
    threads = faults.submit("inline", 2, seconds=4, later_seconds=0.2)
    programs = faults.submit("program", 2, seconds=30, later_seconds=0.3, grandchild=True)
    faults.wait_started(threads)
    faults.wait_started(programs, parts=2)
    spawn("--lease", str(LEASE), "--concurrency", "4")  # takes over what the first gives up

    # Every connection the worker makes is terminated at once, for longer than its lease: it
    # cannot renew, so it must stop its bodies (or itself) before its leases run out.
    cut_until = time.monotonic() + LEASE + 1
    while time.monotonic() < cut_until:
        _query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application,),
        )
        time.sleep(0.02)  # the fault's pace: each new connection lives at most this long
    faults.wait_ended()

    problems = faults.problems()
    assert not problems, "\n".join(problems)
