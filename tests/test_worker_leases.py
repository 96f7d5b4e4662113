"""A body never outlives its lease: how a worker renews, fences and starts on leases (issue 25).

A production :class:`~dockyard.runtime.Worker` runs on its own event loop in a thread, over the
real store of the test's backend, wrapped so that a test can make the store slow or unreachable
the way an outage does: a claim that returns late, renewals that fail with a connection error.
Its ``exit_process`` is the test's, so that a worker that must end its process says so instead
of ending the test run. Job bodies are inline Python functions of this module that record their
start and end in a trace file.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dockyard import Client, ConflictError, Job, JobState
from dockyard.app import Dockyard, WorkerConfig
from dockyard.errors import StorageError
from dockyard.runtime import Maintenance, MaintenanceConfig, Worker
from dockyard.runtime.leases import EXIT_UNSTOPPABLE
from dockyard.settings import Settings
from tests.conftest import FakeClock, WorkerThread, wait_until

pytestmark = pytest.mark.timeout(120)

WAIT = 30.0


# -- job bodies ---------------------------------------------------------------------------------


def hold(payload: dict[str, str]) -> str:
    """Record a start, wait until ``payload["release"]`` exists (60 s at most), record the end."""
    trace, release = Path(payload["trace"]), Path(payload["release"])
    with trace.open("a") as file:
        file.write(f"start {time.time()}\n")
    deadline = time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    with trace.open("a") as file:
        file.write(f"end {time.time()}\n")
    return "held"


def runs(trace: Path) -> list[str]:
    """The lines a body wrote (start, end), or none when it never ran."""
    return [line.split()[0] for line in trace.read_text().splitlines()] if trace.exists() else []


# -- a worker over a store the test can break ---------------------------------------------------


class Jobs:
    """The jobs port of the real store, with the verbs a test overrides."""

    def __init__(self, real: Any, **overrides: Callable[..., Any]) -> None:
        self._real = real
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides.get(name) or getattr(self._real, name)


class Store:
    """The real store, its jobs port replaced."""

    def __init__(self, real: Any, jobs: Jobs) -> None:
        self._real = real
        self.jobs = jobs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class BrokenStoreWorker(WorkerThread):
    """A production worker in a thread; ``breaks(real_jobs)`` returns the verbs to replace."""

    def __init__(
        self,
        settings: Settings,
        config: WorkerConfig,
        breaks: Callable[[Any], dict[str, Callable[..., Any]]],
        clock: Any = None,
    ) -> None:
        super().__init__(settings, config, clock)
        self.breaks = breaks
        self.exits: list[int] = []

    def _make_worker(self, app: Dockyard) -> Worker:
        core = app._core
        store = Store(core.storage, Jobs(core.storage.jobs, **self.breaks(core.storage.jobs)))
        return Worker(
            storage=store,
            executors=core.executors(),
            logs=core.logs,
            clock=core.clock,
            config=self.config,
            exit_process=self.exits.append,
        )


@pytest.fixture
def broken_worker(settings: Settings) -> Iterator[Callable[..., BrokenStoreWorker]]:
    started: list[BrokenStoreWorker] = []

    def start(breaks: Callable[[Any], dict[str, Any]], *, clock: Any = None, **config: Any):
        config.setdefault("poll_seconds", 0.05)
        config.setdefault("check_seconds", 0.1)
        worker = BrokenStoreWorker(settings, WorkerConfig(**config), breaks, clock).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def submit_hold(
    client: Client, folder: Path, *, released: bool = False, **fields: Any
) -> tuple[Job, Path, Path]:
    """Register :func:`hold` (with ``fields``) and submit one job of it: the job, and its trace
    and release files in ``folder`` (the release already there when ``released``)."""
    client.register(
        {"executor": "python", "function": "tests.test_worker_leases:hold", **fields}, name="hold"
    )
    trace, release = folder / "trace", folder / "release"
    if released:
        release.touch()
    job = client.submit("hold", payload={"trace": str(trace), "release": str(release)})
    return job, trace, release


# -- 1. a lease starts when the claim is applied ------------------------------------------------


def test_a_claim_that_returns_with_its_lease_nearly_spent_renews_it_before_the_start(
    client: Client, broken_worker: Callable[..., BrokenStoreWorker], tmp_path: Path
) -> None:
    # The claim returns as its lease is about to run out (it waited through an outage): the
    # worker renews the lease before the job starts, instead of fencing it at once.
    clock = FakeClock(datetime.now(UTC) + timedelta(seconds=1))  # after the submit below
    events: list[tuple[str, str]] = []

    def breaks(real: Any) -> dict[str, Any]:
        async def claim(request: Any) -> Any:
            claimed = await real.claim(request)
            if claimed:
                clock.advance(29.9)  # of a 30 s lease
            return claimed

        async def heartbeat(beat: Any) -> Any:
            if beat.lease_until is not None:
                # Whether the body had begun when its lease was renewed (the claim wrote the
                # job RUNNING: a python job's claim starts its attempt, issue 22).
                events.extend((f"renew after {runs(trace)}", job_id) for job_id in beat.job_ids)
            return await real.heartbeat(beat)

        return {"claim": claim, "heartbeat": heartbeat}

    job, trace, _ = submit_hold(client, tmp_path, released=True)
    broken_worker(breaks, clock=clock, concurrency=1, lease_seconds=30)

    done = client.wait(job.id, timeout=WAIT)

    assert done.state is JobState.SUCCEEDED
    (attempt,) = done.attempts
    assert attempt.counted and attempt.reason is None
    assert runs(trace) == ["start", "end"]
    assert events[0] == ("renew after []", job.id)  # renewed before the body began


def test_a_claimed_job_whose_lease_cannot_be_renewed_is_handed_back_unstarted(
    client: Client, broken_worker: Callable[..., BrokenStoreWorker], tmp_path: Path
) -> None:
    clock = FakeClock(datetime.now(UTC) + timedelta(seconds=1))  # after the submit below
    claims = 0

    def breaks(real: Any) -> dict[str, Any]:
        async def claim(request: Any) -> Any:
            nonlocal claims
            claims += 1
            if claims > 1:
                return []  # one claim only: what is handed back stays RUNNABLE
            claimed = await real.claim(request)
            clock.advance(20)  # of a 30 s lease: less than half is left
            return claimed

        async def heartbeat(beat: Any) -> Any:
            if beat.lease_until is not None:
                clock.advance(2)  # time passes while the store does not answer
                raise StorageError("PostgreSQL: connection refused")
            return await real.heartbeat(beat)

        async def apply_and_claim(transitions: Any, request: Any) -> Any:
            return await real.apply(transitions), []

        return {"claim": claim, "heartbeat": heartbeat, "apply_and_claim": apply_and_claim}

    job, trace, _ = submit_hold(client, tmp_path, released=True)
    broken_worker(breaks, clock=clock, concurrency=1, lease_seconds=30)

    def handed_back() -> Job | None:
        found = client.get(job.id)
        return found if found.attempts and found.attempts[0].stopped_at else None

    back = wait_until(handed_back, timeout=WAIT, what="the attempt to be handed back")
    assert back is not None

    assert back.state is JobState.RUNNABLE
    assert back.attempts_used == 0
    (released,) = back.attempts
    assert (released.reason, released.counted, released.started_at) == ("Released", False, None)
    assert runs(trace) == []


# -- 2. renewals and self-fencing ---------------------------------------------------------------


def test_a_renewal_that_fails_for_a_connection_error_is_retried_not_taken_as_lost(
    client: Client,
    broken_worker: Callable[..., BrokenStoreWorker],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Four renewals fail in a row. Tried again only at the next lease/3, they would take the
    # whole 2 s lease and the job would be fenced; tried at every check, the fifth renews it.
    failures, renewed = 4, 0

    def breaks(real: Any) -> dict[str, Any]:
        async def heartbeat(beat: Any) -> Any:
            nonlocal failures, renewed
            if beat.lease_until is not None and beat.job_ids:
                if failures:
                    failures -= 1
                    raise StorageError("PostgreSQL: server closed the connection unexpectedly")
                renewed += 1
            return await real.heartbeat(beat)

        return {"heartbeat": heartbeat}

    job, trace, release = submit_hold(client, tmp_path)
    broken_worker(breaks, concurrency=1, lease_seconds=2)
    wait_until(lambda: runs(trace), timeout=WAIT, what="the function to start")
    wait_until(lambda: renewed >= 3, timeout=WAIT, what="three renewals after the failures")
    release.touch()

    done = client.wait(job.id, timeout=WAIT)

    assert done.state is JobState.SUCCEEDED
    (attempt,) = done.attempts
    assert attempt.counted and attempt.reason is None
    assert "could not renew the lease of job" not in caplog.text
    assert runs(trace) == ["start", "end"]


def test_an_inline_function_whose_lease_cannot_be_renewed_ends_the_worker_process(
    client: Client,
    broken_worker: Callable[..., BrokenStoreWorker],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def breaks(real: Any) -> dict[str, Any]:
        async def heartbeat(beat: Any) -> Any:
            if beat.lease_until is not None and beat.job_ids:
                raise StorageError("PostgreSQL: connection refused")
            return await real.heartbeat(beat)

        return {"heartbeat": heartbeat}

    job, trace, release = submit_hold(client, tmp_path)
    caplog.set_level(logging.CRITICAL, logger="dockyard.worker")
    worker = broken_worker(breaks, concurrency=1, lease_seconds=1.5)
    wait_until(lambda: runs(trace), timeout=WAIT, what="the function to start")

    wait_until(lambda: worker.exits, timeout=WAIT, what="the worker to end its process")

    assert worker.exits == [EXIT_UNSTOPPABLE]
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1 and job.id in critical[0].getMessage()
    # It was not handed back while its function still ran (the process would have ended).
    assert client.get(job.id).state is JobState.RUNNING
    assert runs(trace) == ["start"]
    release.touch()


def test_an_inline_function_past_its_timeout_keeps_its_lease_until_it_returns(
    client: Client, broken_worker: Callable[..., BrokenStoreWorker], tmp_path: Path
) -> None:
    # The job fails at its timeout while its thread runs on: the worker keeps renewing the
    # lease (the job is no longer active, the lease is still its own) and does not end itself,
    # and a retry is refused until the function has returned.
    job, trace, release = submit_hold(client, tmp_path, timeout=1)
    worker = broken_worker(lambda real: {}, concurrency=1, lease_seconds=1.5)

    failed = client.wait(job.id, timeout=WAIT)
    assert failed.state is JobState.FAILED and failed.attempts[0].reason == "Timeout"
    assert failed.lease_expires_at is not None
    first = failed.lease_expires_at

    def renewed_past_two_leases() -> bool:
        lease = client.get(job.id).lease_expires_at
        return lease is not None and lease > first + timedelta(seconds=3)

    wait_until(renewed_past_two_leases, timeout=WAIT, what="renewals after the timeout")
    assert worker.exits == []
    with pytest.raises(ConflictError):
        client.retry(job.id)
    assert runs(trace) == ["start"]

    release.touch()
    wait_until(
        lambda: client.get(job.id).lease_expires_at is None,
        timeout=WAIT,
        what="the lease to be let go once the function returned",
    )
    assert runs(trace) == ["start", "end"]
    assert client.retry(job.id).state is JobState.RUNNABLE


def rescue(settings: Settings) -> int:
    """One rescue of expired leases, as the maintenance leader makes it."""

    async def run() -> int:
        app = await Dockyard.open(settings)
        try:
            config = MaintenanceConfig()
            keeper = Maintenance(
                storage=app.storage, logs=app.log_store, clock=app.clock, config=config
            )
            return await keeper.rescue_expired()
        finally:
            await app.close()

    return asyncio.run(run())


def test_an_attempt_claimed_beside_an_older_one_on_the_same_worker_waits_for_it(
    client: Client,
    broken_worker: Callable[..., BrokenStoreWorker],
    settings: Settings,
    tmp_path: Path,
) -> None:
    # A worker that cannot renew would end its process here (this one records it and goes on):
    # the lease of its thread lapses, the rescue takes the job, and the same worker claims the
    # job again while the thread still runs. The new attempt must start only once the old one
    # has returned, and the old one must write nothing over it.
    renewing = threading.Event()

    def breaks(real: Any) -> dict[str, Any]:
        async def heartbeat(beat: Any) -> Any:
            if beat.lease_until is not None and beat.job_ids and not renewing.is_set():
                raise StorageError("PostgreSQL: connection refused")
            return await real.heartbeat(beat)

        return {"heartbeat": heartbeat}

    job, trace, release = submit_hold(client, tmp_path, retry={"attempts": 3, "backoff_base": 0})
    worker = broken_worker(breaks, concurrency=2, lease_seconds=1.5)
    wait_until(lambda: runs(trace), timeout=WAIT, what="the function to start")
    wait_until(lambda: worker.exits, timeout=WAIT, what="the worker to want to end itself")

    def expired() -> bool:
        lease = client.get(job.id).lease_expires_at
        return lease is not None and lease < datetime.now(UTC)

    wait_until(expired, timeout=WAIT, what="the lease to run out")
    renewing.set()
    wait_until(lambda: rescue(settings), timeout=WAIT, what="the rescue")
    assert worker.worker is not None
    running = worker.worker
    wait_until(lambda: running.running == 2, timeout=WAIT, what="the job to be claimed again")

    again = client.get(job.id)
    # Claimed RUNNING (a python job's claim starts its attempt, issue 22), its body waits.
    assert again.state is JobState.RUNNING and len(again.attempts) == 2
    assert runs(trace) == ["start"]
    release.touch()

    done = client.wait(job.id, timeout=WAIT)
    assert done.state is JobState.SUCCEEDED, done
    assert [a.reason for a in done.attempts] == ["Lost", None]
    assert runs(trace) == ["start", "end", "start", "end"]
