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
import subprocess
from collections.abc import Mapping, Sequence
from typing import IO, Any

from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import ProcessSpec
from dockyard.executors.payload import payload_file, payload_variables
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
        with payload_file(context) as payload:
            env = {
                **self._base,
                **context.environment(),
                **payload_variables(context, str(payload)),
            }
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
        child = _Child(argv, env=env, cwd=cwd, log=context.log, stdin=stdin)
    except OSError as error:
        context.log.write(f"dockyard: cannot start {argv[0]}: {error}\n".encode())
        return Outcome.failed(
            reason="CannotStart", status_reason=f"Cannot start {argv[0]}: {error.strerror}"
        )
    try:
        return await _supervise(child, context)
    finally:
        child.close()


async def _supervise(child: _Child, context: ExecutionContext) -> Outcome:
    cancelled: asyncio.Future[Any] = asyncio.ensure_future(context.cancelled.wait())
    timeout = context.spec.timeout_seconds
    waits: set[asyncio.Future[Any]] = {child.exited, cancelled}
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        await child.terminate(0.0)
        raise
    finally:
        cancelled.cancel()
    if child.exited in done:
        outcome = Outcome.exited(child.returncode())
        _kill_group(child.pid, signal.SIGKILL)  # whatever it left running in its group
    elif cancelled in done:
        outcome = Outcome.cancelled(exit_code=_code(await child.terminate(context.cancel_grace)))
    else:
        code = await child.terminate(context.spec.kill_grace_seconds)
        outcome = Outcome.timed_out(timeout or 0.0, exit_code=_code(code))
    try:
        await asyncio.wait_for(asyncio.shield(child.drained), DRAIN_SECONDS)
    except TimeoutError:
        context.log.write(
            b"\n[dockyard: output still open after the process ended; stopped reading]\n"
        )
    return outcome


def _code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class _Child:
    """A program in its own session, its output read by the event loop, its exit seen by pidfd.

    Written on ``subprocess.Popen`` and the loop's readers rather than asyncio's subprocess
    transport: that one starts a thread per child on Python 3.11, costs a dozen callbacks per
    job, and its ``wait()`` also waits for every pipe to close (CPython gh-119710), so a
    background child left holding stdout would keep the job RUNNING for as long as it lives.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | None,
        log: LogSink,
        stdin: bytes | None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._log = log
        read_end, write_end = os.pipe()
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self.pid = self._proc.pid
        self._output = read_end
        os.set_blocking(read_end, False)
        self.exited: asyncio.Future[None] = self._loop.create_future()
        self.drained: asyncio.Future[None] = self._loop.create_future()
        self._loop.add_reader(read_end, self._read)
        self._pidfd: int | None = None
        self._poller: asyncio.Task[None] | None = None
        try:
            self._pidfd = os.pidfd_open(self.pid)
            self._loop.add_reader(self._pidfd, self._ended)
        except (AttributeError, OSError):  # no pidfd (not Linux ≥ 5.3): poll instead
            self._poller = asyncio.ensure_future(self._poll())
        if stdin is not None:
            assert self._proc.stdin is not None
            # The payload may exceed the pipe's buffer: feed it off the loop.
            self._loop.run_in_executor(None, _feed, self._proc.stdin, stdin)

    def _read(self) -> None:
        try:
            data = os.read(self._output, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._log.write(data)
            return
        self._loop.remove_reader(self._output)
        if not self.drained.done():
            self.drained.set_result(None)

    def _ended(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    async def _poll(self) -> None:
        delay = 0.001
        while self._proc.poll() is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        self._ended()

    def returncode(self) -> int:
        """The exit status, once ``exited`` is done (reaping the process)."""
        return self._proc.wait()

    async def terminate(self, grace: float) -> int:
        """SIGTERM to the group, SIGKILL after ``grace``; return the program's return code."""
        _kill_group(self.pid, signal.SIGTERM)
        try:
            # The whole group gets the grace: the program must end and every child holding
            # its output must be gone.
            await asyncio.wait_for(
                asyncio.gather(asyncio.shield(self.exited), asyncio.shield(self.drained)), grace
            )
        except TimeoutError:
            pass
        # Children that ignored SIGTERM (or outlived the main process) go now.
        _kill_group(self.pid, signal.SIGKILL)
        await asyncio.shield(self.exited)
        return self.returncode()

    def close(self) -> None:
        """Stop watching; reap the program if it ended. Safe to call more than once."""
        if self._output >= 0:
            self._loop.remove_reader(self._output)
            os.close(self._output)
            self._output = -1
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self._poller is not None:
            self._poller.cancel()
        if self.exited.done():
            self._proc.wait()


def _feed(pipe: IO[bytes], data: bytes) -> None:
    """Write ``data`` to the child's stdin and close it (EOF), whatever the child does."""
    with contextlib.suppress(OSError):
        pipe.write(data)
    with contextlib.suppress(OSError):
        pipe.close()


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
