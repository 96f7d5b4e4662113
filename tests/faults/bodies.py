"""Job bodies of the fault tests: every run appends its start and its end to a record file.

The fault tests judge Dockyard from the outside: what ran, when, and in which process. So each
body, whatever executor runs it, appends one JSON line when it starts and one when it ends (each
line one ``O_APPEND`` write, so concurrent runs never interleave) to the file named by the
payload's ``record`` (or by ``DOCKYARD_FAULTS_RECORD``). A line says which job (the payload's
``key``, and the job id and attempt where the body can see them), which run (a fresh id per
run), which part (``main``, or a ``grandchild`` process the body started), its pid and the
time. A body killed outright writes no end: the tests watch its pid for that
(:mod:`tests.faults.runs`).

A body runs ``seconds`` the first time its job runs and ``later_seconds`` afterwards (it counts
the job's earlier starts in the record file), so that a rescued run is short and a test stays
short while the first run surely outlives the lease.

- ``tests.faults.bodies:sync_body`` — a plain function: inline (on a thread of the worker) or
  with ``isolation: subprocess`` (then, with ``grandchild: true``, it starts a grandchild).
- ``tests.faults.bodies:async_body`` — a coroutine function on the worker's loop.
- ``python -m tests.faults.bodies process`` — the program of a ``process`` job (a grandchild too).
- :data:`CONTAINER_SCRIPT` — the command of a ``docker`` job; a container cannot reach the
  record file (the docker executor mounts no volume), so its runs are read from the engine's
  own ``start`` and ``die`` events instead, and it only prints its start and end to its log.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["CONTAINER_SCRIPT", "RECORD_ENV", "async_body", "sync_body"]

RECORD_ENV = "DOCKYARD_FAULTS_RECORD"

#: A container's body: long on the first attempt, short after (``sh`` as PID 1 ignores SIGTERM,
#: so a stop takes the grace and a SIGKILL, as for a real program that does not handle it).
CONTAINER_SCRIPT = (
    'echo "start $DOCKYARD_JOB_ID $DOCKYARD_JOB_ATTEMPT"; '
    'if [ "$DOCKYARD_JOB_ATTEMPT" = 1 ]; then sleep "$FIRST_SECONDS"; else sleep 0.3; fi; '
    'echo "end $DOCKYARD_JOB_ID $DOCKYARD_JOB_ATTEMPT"'
)


def _record_path(payload: dict[str, Any]) -> str:
    return str(payload.get("record") or os.environ[RECORD_ENV])


def append(path: str, record: dict[str, Any]) -> None:
    """One line, one ``O_APPEND`` write: lines of concurrent runs never interleave."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)


def _earlier_starts(path: str, key: str) -> int:
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return 0
    count = 0
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:  # a line being written
            continue
        if record.get("key") == key and record["event"] == "start" and record["part"] == "main":
            count += 1
    return count


class _Run:
    """One run of a body (or of its grandchild): writes its start now and its end once."""

    def __init__(self, payload: dict[str, Any], *, kind: str, part: str = "main", run: str = ""):
        self.path = _record_path(payload)
        self.key = str(payload["key"])
        # Only bodies that run shorter later count their job's earlier runs (a read of the file).
        first = (
            part != "main"
            or "later_seconds" not in payload
            or _earlier_starts(self.path, self.key) == 0
        )
        self.seconds = float(payload["seconds"] if first else payload["later_seconds"])
        attempt = os.environ.get("DOCKYARD_JOB_ATTEMPT")
        self._base = {
            "key": self.key,
            "run": run or uuid.uuid4().hex,
            "part": part,
            "kind": kind,
            "pid": os.getpid(),
            # Seen only by a body in a process of its own (Dockyard sets them per attempt).
            "job": os.environ.get("DOCKYARD_JOB_ID"),
            "attempt": int(attempt) if attempt else None,
        }
        self._ended = False
        self._write("start")

    @property
    def id(self) -> str:
        return str(self._base["run"])

    def _write(self, event: str, **extra: Any) -> None:
        append(self.path, {**self._base, "event": event, "t": time.time(), **extra})

    def end(self, how: str) -> None:
        if not self._ended:
            self._ended = True
            self._write("end", how=how)


def sync_body(payload: dict[str, Any]) -> dict[str, Any]:
    """Sleep on the calling thread; in a process of its own, end on SIGTERM and start a
    grandchild when asked."""
    isolated = "DOCKYARD_JOB_ID" in os.environ
    if isolated:
        return _program(payload, kind="subprocess")
    run = _Run(payload, kind="inline-sync")
    time.sleep(run.seconds)
    run.end("done")
    return {"key": run.key, "run": run.id}


async def async_body(payload: dict[str, Any]) -> dict[str, Any]:
    """Sleep on the worker's loop; a cancel ends the run (recorded) and propagates."""
    run = _Run(payload, kind="inline-async")
    try:
        await asyncio.sleep(run.seconds)
    except asyncio.CancelledError:
        run.end("cancelled")
        raise
    run.end("done")
    return {"key": run.key, "run": run.id}


def _program(payload: dict[str, Any], *, kind: str) -> dict[str, Any]:
    """The body of a process of its own: a SIGTERM ends it (after ``stop_seconds``, recorded);
    with ``grandchild``, a second process in its group runs as long and is waited for."""
    run = _Run(payload, kind=kind)
    _end_on_sigterm(run, float(payload.get("stop_seconds", 0.0)))
    child = None
    if payload.get("grandchild"):
        argv = [sys.executable, "-m", "tests.faults.bodies", "grandchild", run.id, kind]
        child = subprocess.Popen(argv, stdin=subprocess.PIPE)
        assert child.stdin is not None
        child.stdin.write(json.dumps({**payload, "seconds": run.seconds}).encode())
        child.stdin.close()
    time.sleep(run.seconds)
    if child is not None:
        child.wait()
    run.end("done")
    return {"key": run.key, "run": run.id}


def _end_on_sigterm(run: _Run, stop_seconds: float) -> None:
    def stop(signum: int, frame: FrameType | None) -> None:
        time.sleep(stop_seconds)  # a program that takes a moment to clean up
        run.end("terminated")
        os._exit(143)

    signal.signal(signal.SIGTERM, stop)


def _grandchild(run_id: str, kind: str) -> None:
    payload = json.loads(sys.stdin.read())
    run = _Run(payload, kind=kind, part="grandchild", run=run_id)
    _end_on_sigterm(run, float(payload.get("stop_seconds", 0.0)))
    time.sleep(run.seconds)
    run.end("done")


def main(argv: list[str]) -> int:
    if argv[:1] == ["process"]:
        payload = json.loads(Path(os.environ["DOCKYARD_PAYLOAD_FILE"]).read_text())
        _program(payload, kind="process")
        return 0
    if argv[:1] == ["grandchild"]:
        _grandchild(argv[1], argv[2])
        return 0
    print("usage: python -m tests.faults.bodies process|grandchild RUN KIND", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
