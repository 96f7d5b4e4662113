"""Fixtures of the fault tests: a record file followed as runs, workers to kill, jobs by key.

Every test here runs real ``python -m dockyard worker`` processes (``tests/conftest.py``'s
:class:`WorkerProcess`, each in its own process group) and faults as an operator meets them:
SIGKILL, SIGTERM, SIGSTOP, PostgreSQL stopped or its backends terminated. What ran is judged
from the outside (:mod:`tests.faults.runs`), never from Dockyard's own records alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

import dockyard
from dockyard import Client, JobState
from dockyard.settings import Settings
from tests.conftest import WorkerProcess, wait_until
from tests.faults.bodies import CONTAINER_SCRIPT
from tests.faults.runs import ContainerRuns, Part, Run, RunLog, overlaps, runs_of

#: Short leases keep each test to a few seconds: a dead worker's jobs wait this long.
LEASE = 2.0
#: Lost attempts are retried at once (the default backoff is a minute).
RETRY = {"attempts": 3, "backoff_base": 0}
TERMINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
#: What a worker logs when it becomes the maintenance leader (the one that rescues).
LEADING = "took the maintenance leadership"
OPEN_STATES = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"]


@dataclass
class Faults:
    """One test's jobs (by the key their bodies record), its runs, and the checks."""

    client: Client
    runs: RunLog
    record: Path
    #: key -> job id, for every job the test submitted.
    jobs: dict[str, str] = field(default_factory=dict)
    containers: ContainerRuns | None = None
    #: Times in messages are shown from here.
    origin: float = field(default_factory=time.time)

    def submit(self, definition: str, count: int, *, prefix: str = "", **payload: Any) -> list[str]:
        """Submit ``count`` jobs of ``definition`` at once; their ids, in order."""
        keys = [f"{prefix or definition}-{n}" for n in range(count)]
        requests = [
            dockyard.SubmitRequest(
                definition=definition, payload={"record": str(self.record), "key": key, **payload}
            )
            for key in keys
        ]
        ids: list[str] = [item.job.id for item in self.client.submit_requests(requests)]
        self.jobs.update(zip(keys, ids, strict=True))
        return ids

    def parts(self) -> list[Part]:
        found = self.runs.parts()
        if self.containers is not None:
            found += self.containers.parts()
        return found

    def all_runs(self, now: float | None = None) -> dict[str, list[Run]]:
        return runs_of(self.parts(), self.jobs, time.time() if now is None else now)

    def overlaps(self) -> list[str]:
        """Every two runs of one job that were alive at once, as of now."""
        return overlaps(self.all_runs(), self.origin)

    def wait_started(self, ids: list[str], *, parts: int = 1, timeout: float = 30) -> None:
        """Until each of ``ids`` has a run whose ``parts`` processes all wrote their start."""
        by_key = {key for key, job in self.jobs.items() if job in ids}

        def started(found: list[Part]) -> bool:
            counts: dict[str, int] = {}
            for part in found:
                if part.key in by_key:
                    counts[part.key] = counts.get(part.key, 0) + 1
            return len(counts) == len(by_key) and all(n >= parts for n in counts.values())

        self.runs.wait_for(started, timeout, what=f"{len(ids)} job(s) to start")

    def wait_ended(self, timeout: float = 60) -> None:
        """Until no job is open (the store's view, polled: nothing announces it across jobs)."""
        wait_until(
            lambda: not self.client.list(states=OPEN_STATES, limit=1),
            timeout=timeout,
            what="every job to end",
        )

    def states(self, expected: Mapping[str, JobState] | JobState) -> list[str]:
        """Jobs not in their expected final state (a job lost, or ended the wrong way)."""
        problems = []
        for job_id in self.jobs.values():
            want = expected if isinstance(expected, JobState) else expected[job_id]
            job = self.client.get(job_id)
            if job.state is not want:
                problems.append(f"job {job_id} is {job.state} ({job.status_reason}), not {want}")
        return problems

    def run_counts(self, expected: Mapping[str, int] | int) -> list[str]:
        """Jobs whose bodies ran another number of times than ``expected``."""
        runs = self.all_runs()
        problems = []
        for job_id in self.jobs.values():
            want = expected if isinstance(expected, int) else expected[job_id]
            got = runs.get(job_id, [])
            if len(got) != want:
                shown = "; ".join(run.describe(self.origin) for run in got)
                problems.append(f"job {job_id} ran {len(got)} time(s), not {want}: {shown}")
        return problems

    def problems(
        self, runs: Mapping[str, int] | int | None = None, *, outlived: list[str] | None = None
    ) -> list[str]:
        """What breaks the promise, as of now: ``outlived`` (the bodies found to outlive their
        lease, checked by the test when it knew the leases), two runs of a job at once, a job
        that did not succeed, and (given ``runs``) a job that ran another number of times."""
        found = [*(outlived or []), *self.overlaps(), *self.states(JobState.SUCCEEDED)]
        return found if runs is None else found + self.run_counts(runs)

    def probe(self) -> None:
        """Run one short job and wait for its end: the worker that takes it has finished
        starting up (it claims only after its start-up sweep). Not one of the test's jobs."""
        record = {"record": str(self.record), "key": f"probe-{uuid.uuid4().hex[:8]}"}
        probe = self.client.submit("inline", payload={**record, "seconds": 0})
        done = self.client.wait(probe.id, timeout=30)
        assert done.state is JobState.SUCCEEDED, done

    def leases(self, ids: list[str]) -> dict[str, float]:
        """When each job's current lease runs out (read right after a fault, before a rescue)."""
        found = {}
        for job_id in ids:
            lease = self.client.get(job_id).lease_expires_at
            assert lease is not None, f"job {job_id} holds no lease"
            found[job_id] = lease.timestamp()
        return found

    def outlived(self, leases: Mapping[str, float], *, now: float | None = None) -> list[str]:
        """Runs (of the jobs in ``leases``) that started before their lease ran out and were
        still alive after it: a body of a dead or frozen worker that outlived its lease."""
        problems = []
        for job_id, runs in self.all_runs(now).items():
            lease = leases.get(job_id)
            if lease is None:
                continue
            for run in runs:
                if run.start < lease < run.stop:
                    problems.append(
                        f"job {job_id}: {run.describe(self.origin)} outlived its lease"
                        f" (ran out at {lease - self.origin:+.3f}s) by {run.stop - lease:.3f}s"
                    )
        return problems


@pytest.fixture
def faults(client: Client, tmp_path: Path) -> Iterator[Faults]:
    record = tmp_path / "runs.jsonl"
    runs = RunLog(record)
    state = Faults(client=client, runs=runs, record=record)
    try:
        yield state
    finally:
        runs.close()
        if state.containers is not None:
            state.containers.close(state.jobs.values())


@pytest.fixture
def with_containers(faults: Faults, docker_client: Any, busybox_image: str) -> Faults:
    """``faults`` that also follows the runs of Dockyard's containers on the engine."""
    faults.containers = ContainerRuns(docker_client)
    return faults


@pytest.fixture
def spawn(settings: Settings, client: Client, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``spawn("--lease", "2", …)`` → a started :class:`WorkerProcess` (registered, claiming).

    ``name=`` sets the PostgreSQL ``application_name`` of its connections, so that a test can
    find its backends. At teardown, what still runs is SIGKILLed (a failed test must not wait
    for long jobs); the ``faults`` fixture then kills what the bodies left.
    """
    spawned: list[WorkerProcess] = []

    def start(*args: str, name: str | None = None) -> WorkerProcess:
        worker_settings = settings
        if name is not None and settings.url.startswith("postgresql"):
            worker_settings = replace(settings, url=f"{settings.url}&application_name={name}")
        log = tmp_path / f"worker-{len(spawned)}.log"
        process = WorkerProcess(worker_settings, *args, log=log)
        spawned.append(process)
        wait_until(
            lambda: _registered(client, process),
            timeout=30,
            what=f"worker {process.pid} to register",
        )
        return process

    yield start
    for process in spawned:
        if process.proc.poll() is None:
            with_signal(process, signal.SIGCONT)
            process.kill()
        process.close()


def _registered(client: Client, process: WorkerProcess) -> bool:
    if process.proc.poll() is not None:
        raise AssertionError(f"worker exited: {process.output()}")
    return any(w.pid == process.pid and w.stopped_at is None for w in client.workers())


def with_signal(process: WorkerProcess, sig: signal.Signals) -> None:
    """Send ``sig`` to the worker alone (not its process group)."""
    if process.proc.poll() is None:
        os.kill(process.pid, sig)


@dataclass
class Freeze:
    #: ``time.monotonic()`` as the worker was sent SIGCONT (set as the block ends).
    woke: float = 0.0


@contextlib.contextmanager
def frozen(process: WorkerProcess) -> Iterator[Freeze]:
    """The worker stopped (SIGSTOP) for the block, and continued (SIGCONT) after it, even when
    the block fails: a frozen worker must not outlive its test."""
    freeze = Freeze()
    with_signal(process, signal.SIGSTOP)
    try:
        yield freeze
    finally:
        freeze.woke = time.monotonic()
        with_signal(process, signal.SIGCONT)


def unique_name() -> str:
    return f"dyfaults_{uuid.uuid4().hex[:10]}"


def register_bodies(client: Client, image: str | None = None) -> None:
    """The bodies of :mod:`tests.faults.bodies` as definitions, one per executor; a lost attempt
    (a rescue) is retried at once.

    ``program`` (a process), ``isolated`` (a function in a child process), ``inline`` (a function
    on a worker's thread), ``inline-timeout`` (the same with a 1 s timeout), ``coroutine`` (an
    async function on the worker's loop) and, given the busybox ``image``, ``container``.
    """
    function = "tests.faults.bodies:sync_body"
    documents: dict[str, dict[str, Any]] = {
        "program": {
            "executor": "process",
            "command": [sys.executable, "-m", "tests.faults.bodies", "process"],
        },
        "isolated": {"executor": "python", "function": function, "isolation": "subprocess"},
        "inline": {"executor": "python", "function": function},
        "inline-timeout": {"executor": "python", "function": function, "timeout": 1},
        "coroutine": {"executor": "python", "function": "tests.faults.bodies:async_body"},
    }
    if image is not None:
        documents["container"] = {
            "executor": "docker",
            "image": image,
            "command": ["sh", "-c", CONTAINER_SCRIPT],
            "environment": {"FIRST_SECONDS": "30"},
        }
    for name, document in documents.items():
        client.register({**document, "retry": RETRY}, name=name)
