"""What ran, read from the outside: runs from the record file and the Docker engine, and the check.

The promise under test is Dockyard's: a job may run again after a fault, but **never two runs of
one job at the same time**, and no job is lost. A run is known from what its body wrote
(:mod:`tests.faults.bodies`) and from what the test saw of its processes:

- :class:`RunLog` follows the record file on a thread and opens a pidfd for every process that
  wrote a start, so that a run killed before it could write its end is known to have stopped
  when its process died (within the thread's 20 ms round), not when the test looks;
- :class:`ContainerRuns` follows the engine's ``start`` and ``die`` events of Dockyard's
  containers (labelled with their job and attempt), which are their runs;
- :func:`overlaps` finds, for every job, two runs whose ``[start, end]`` intersect. A run that
  never wrote its end counts as running until its process was seen dead or, while it lives,
  until the moment of the check. A run is the union of its parts (a program and its grandchild).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["ContainerRuns", "Part", "Run", "RunLog", "overlaps", "runs_of"]

#: How often the follower reads the file when no process died meanwhile.
ROUND_SECONDS = 0.02


@dataclass(slots=True, kw_only=True)
class Part:
    """One process (or container, or thread) of a run, as far as the test knows it."""

    key: str
    run: str
    part: str
    kind: str
    pid: int | None
    job: str | None
    attempt: int | None
    start: float
    end: float | None = None
    how: str | None = None
    #: When the test saw its process gone (a pidfd became readable), if it ended unannounced.
    died: float | None = None

    def stopped(self, now: float) -> float:
        """When this part stopped running: its end, its death, or (still alive) ``now``."""
        if self.end is not None:
            return self.end
        if self.died is not None:
            return self.died
        return now


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    job: str
    run: str
    kind: str
    attempt: int | None
    start: float
    stop: float
    ended: bool
    parts: tuple[Part, ...] = field(default=())

    def describe(self, origin: float) -> str:
        how = "ended" if self.ended else "no end"
        pids = ",".join(f"{p.part}:{p.pid}" for p in self.parts)
        return (
            f"{self.kind} run {self.run[:8]} (attempt {self.attempt}, {pids}) from"
            f" {self.start - origin:+.3f}s to {self.stop - origin:+.3f}s ({how})"
        )


def runs_of(parts: Iterable[Part], jobs: Mapping[str, str], now: float) -> dict[str, list[Run]]:
    """Runs by job id, in start order. ``jobs`` maps the bodies' keys to job ids."""
    by_run: dict[str, list[Part]] = {}
    for part in parts:
        by_run.setdefault(part.run, []).append(part)
    runs: dict[str, list[Run]] = {}
    for run_id, members in by_run.items():
        main = next((p for p in members if p.part == "main"), members[0])
        job = main.job or jobs.get(main.key)
        if job is None:
            continue  # another test's or an unknown body: not ours to judge
        run = Run(
            job=job,
            run=run_id,
            kind=main.kind,
            attempt=main.attempt,
            start=min(p.start for p in members),
            stop=max(p.stopped(now) for p in members),
            ended=all(p.end is not None for p in members),
            parts=tuple(members),
        )
        runs.setdefault(job, []).append(run)
    for job_runs in runs.values():
        job_runs.sort(key=lambda run: run.start)
    return runs


def overlaps(runs: Mapping[str, list[Run]], origin: float) -> list[str]:
    """Every pair of runs of one job that were alive at the same time, described."""
    found: list[str] = []
    for job, job_runs in runs.items():
        for index, earlier in enumerate(job_runs):
            for later in job_runs[index + 1 :]:
                if later.start < earlier.stop:
                    found.append(
                        f"job {job}: {earlier.describe(origin)} overlaps {later.describe(origin)}"
                        f" by {earlier.stop - later.start:.3f}s"
                    )
    return found


def _pid_command(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class RunLog:
    """The record file of one test, followed on a thread, with the pids of its runs watched."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()
        self._changed = threading.Condition()
        self._parts: dict[tuple[str, str], Part] = {}
        self._watched: dict[int, int] = {}  # pidfd -> pid
        self._offset = 0
        self._rest = b""
        self._poller = select.poll()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="run-log", daemon=True)
        self._thread.start()

    # -- reading -----------------------------------------------------------------------------

    def parts(self) -> list[Part]:
        with self._changed:
            return [replace(p) for p in self._parts.values()]

    def runs(self, jobs: Mapping[str, str], now: float | None = None) -> dict[str, list[Run]]:
        return runs_of(self.parts(), jobs, time.time() if now is None else now)

    def wait_for(
        self, predicate: Callable[[list[Part]], bool], timeout: float = 30, what: str = "runs"
    ) -> list[Part]:
        """Block until ``predicate(parts)`` holds (checked on every new line and every death)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                parts = list(self._parts.values())
                if predicate(parts):
                    return parts
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
                self._changed.wait(left)

    def wait_change(self, timeout: float) -> None:
        """Return on the next line or death, or after ``timeout``."""
        with self._changed:
            self._changed.wait(timeout)

    # -- following ---------------------------------------------------------------------------

    def _follow(self) -> None:
        while not self._stopping.is_set():
            self._read()
            for descriptor, _ in self._poller.poll(ROUND_SECONDS * 1000):
                self._dead(descriptor)

    def _read(self) -> None:
        with self.path.open("rb") as file:
            file.seek(self._offset)
            data = file.read()
        if not data:
            return
        self._offset += len(data)
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        with self._changed:
            for line in lines:
                if line.strip():
                    self._take(json.loads(line))
            self._changed.notify_all()

    def _take(self, record: dict[str, Any]) -> None:
        ident = (record["run"], record["part"])
        if record["event"] == "start":
            part = Part(
                key=record["key"],
                run=record["run"],
                part=record["part"],
                kind=record["kind"],
                pid=record["pid"],
                job=record.get("job"),
                attempt=record.get("attempt"),
                start=record["t"],
            )
            self._parts[ident] = part
            self._watch(part)
        elif ident in self._parts:
            part = self._parts[ident]
            part.end, part.how = record["t"], record.get("how")

    def _watch(self, part: Part) -> None:
        pid = part.pid
        if pid is None or pid in self._watched.values():
            return
        try:
            descriptor = os.pidfd_open(pid)
        except ProcessLookupError:  # gone before this round: it died at the latest now
            part.died = time.time()
            return
        self._watched[descriptor] = pid
        self._poller.register(descriptor, select.POLLIN)

    def _dead(self, descriptor: int) -> None:
        now = time.time()
        pid = self._watched.pop(descriptor)
        self._poller.unregister(descriptor)
        os.close(descriptor)
        with self._changed:
            for part in self._parts.values():
                if part.pid == pid and part.end is None and part.died is None:
                    part.died = now
            self._changed.notify_all()

    def alive(self, pid: int) -> bool:
        with self._changed:
            return pid in self._watched.values()

    def close(self) -> None:
        """Stop following, then SIGKILL what the runs left alive (a failed test's orphans).

        Only processes that wrote to this file and still run one of the bodies are killed, a
        program with its process group (the executor makes each one a group leader).
        """
        self._stopping.set()
        self._thread.join(5)
        for descriptor, pid in list(self._watched.items()):
            os.close(descriptor)
            if pid == os.getpid() or b"tests.faults.bodies" not in _pid_command(pid):
                continue
            parts = [p for p in self._parts.values() if p.pid == pid]
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if any(p.part == "main" and p.kind in ("process", "subprocess") for p in parts):
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
        self._watched.clear()


class ContainerRuns:
    """The runs of Dockyard's containers, from the engine's ``start`` and ``die`` events."""

    def __init__(self, docker_client: Any) -> None:
        self._docker = docker_client
        self._changed = threading.Condition()
        self._parts: dict[str, Part] = {}
        self._events = docker_client.events(
            decode=True,
            filters={"type": "container", "event": ["start", "die"], "label": "dockyard.job-id"},
        )
        self._thread = threading.Thread(target=self._follow, name="containers", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        with contextlib.suppress(Exception):  # the stream closed
            for event in self._events:
                self._take(event)

    def _take(self, event: dict[str, Any]) -> None:
        labels = event.get("Actor", {}).get("Attributes", {})
        container, at = event["id"], event["timeNano"] / 1e9
        with self._changed:
            if event["Action"] == "start":
                self._parts[container] = Part(
                    key="",
                    run=container,
                    part="main",
                    kind="docker",
                    pid=None,
                    job=labels.get("dockyard.job-id"),
                    attempt=int(labels.get("dockyard.attempt", "0")) or None,
                    start=at,
                )
            elif container in self._parts:
                part = self._parts[container]
                part.end, part.how = at, f"exit {labels.get('exitCode')}"
            self._changed.notify_all()

    def parts(self) -> list[Part]:
        with self._changed:
            return [replace(p) for p in self._parts.values()]

    def wait_for(
        self, predicate: Callable[[list[Part]], bool], timeout: float = 60, what: str = "containers"
    ) -> list[Part]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self._parts.values())):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
                self._changed.wait(left)
            return list(self._parts.values())

    def close(self, jobs: Iterable[str]) -> None:
        """Stop following; remove what a failed test left running of these jobs."""
        self._events.close()
        self._thread.join(5)
        for job in jobs:
            for container in self._docker.containers.list(
                all=True, filters={"label": f"dockyard.job-id={job}"}
            ):
                with contextlib.suppress(Exception):
                    container.remove(force=True)
