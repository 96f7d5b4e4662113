"""The ``process`` executor: a local program, in its own process group.

The program's stdout and stderr share one pipe, so the log keeps them in the order they were
printed. A timeout or a cancel sends SIGTERM to the whole group and SIGKILL after a grace period,
so children that ignore SIGTERM die too; when the program ends by itself, whatever it left running
in its group is killed, as when a container stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence

from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import ProcessSpec
from dockyard.executors.port import ExecutionContext
from dockyard.logs.port import LogSink

__all__ = ["ProcessExecutor", "run_process"]

READ_CHUNK = 64 * 1024
#: How long to drain output after the group was killed before giving up on the pipe.
DRAIN_SECONDS = 5.0


class ProcessExecutor:
    def __init__(self, base_environment: Mapping[str, str]) -> None:
        self._base = dict(base_environment)

    async def run(self, context: ExecutionContext) -> Outcome:
        spec = context.spec.executor
        assert isinstance(spec, ProcessSpec)
        argv: Sequence[str] = ("/bin/sh", "-c", spec.command[0]) if spec.shell else spec.command
        env = {**self._base, **context.environment()}
        return await run_process(argv, env=env, cwd=spec.working_dir, context=context)


async def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    context: ExecutionContext,
    stdin: bytes | None = None,
) -> Outcome:
    """Run ``argv`` to its end, its timeout or its cancel, logging its output; return the outcome."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as error:
        context.log.write(f"dockyard: cannot start {argv[0]}: {error}\n".encode())
        return Outcome.failed(
            reason="CannotStart", status_reason=f"Cannot start {argv[0]}: {error.strerror}"
        )
    assert proc.stdout is not None
    pump = asyncio.create_task(_pump(proc.stdout, context.log))
    if stdin is not None and proc.stdin is not None:
        with contextlib.suppress(ConnectionError):
            proc.stdin.write(stdin)
            await proc.stdin.drain()
        proc.stdin.close()
    exited = asyncio.create_task(_exited(proc))
    cancelled = asyncio.create_task(context.cancelled.wait())
    timeout = context.spec.timeout_seconds
    try:
        done, _ = await asyncio.wait(
            {exited, cancelled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    except asyncio.CancelledError:
        await _terminate(proc, 0.0)
        raise
    finally:
        cancelled.cancel()
    if exited in done:
        outcome = Outcome.exited(exited.result())
        _kill_group(proc.pid, signal.SIGKILL)
    elif cancelled in done:
        code = await _terminate(proc, context.cancel_grace)
        outcome = Outcome.cancelled(exit_code=_code(code))
    else:
        code = await _terminate(proc, context.spec.kill_grace_seconds)
        outcome = Outcome.timed_out(timeout or 0.0, exit_code=_code(code))
    try:
        await asyncio.wait_for(pump, DRAIN_SECONDS)
    except TimeoutError:
        context.log.write(
            b"\n[dockyard: output still open after the process ended; stopped reading]\n"
        )
    return outcome


def _code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


async def _exited(proc: asyncio.subprocess.Process) -> int:
    """The program's return code as soon as it ends, even while its children hold its pipes.

    ``Process.wait()`` cannot tell: it also waits until every pipe is closed (CPython gh-119710),
    so a background child left holding stdout would keep the job RUNNING for as long as it lives.
    A pidfd becomes readable the moment the process exits; the child watcher then reaps it and
    sets ``returncode`` within moments.
    """
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # already reaped, or no pidfd (not Linux ≥ 5.3)
        pidfd = None
    if pidfd is not None:
        ended: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not ended.done():
                ended.set_result(None)

        loop.add_reader(pidfd, readable)
        try:
            await ended
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
    delay = 0.001
    while proc.returncode is None:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return proc.returncode


async def _pump(stream: asyncio.StreamReader, sink: LogSink) -> None:
    while chunk := await stream.read(READ_CHUNK):
        sink.write(chunk)


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _terminate(proc: asyncio.subprocess.Process, grace: float) -> int:
    """SIGTERM to the group, SIGKILL after ``grace``; return the main process's return code."""
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        # The whole group gets the grace: wait() returns once the program ended and every
        # child holding its output is gone.
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        pass
    # Children that ignored SIGTERM (or outlived the main process) go now.
    _kill_group(proc.pid, signal.SIGKILL)
    return await _exited(proc)
