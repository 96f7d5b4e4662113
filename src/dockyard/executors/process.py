"""The ``process`` executor: a local program, in its own process group.

The program's stdout and stderr share one pipe, so the log keeps them in the order they were
printed. A timeout or a cancel sends SIGTERM to the whole group and SIGKILL after a grace period,
so children that ignore SIGTERM die too; when the program ends by itself, whatever it left running
in its group is killed, as when a container stops.

A program never outlives its worker, nor its lease (docs/guarantees.md): its group is
registered with the worker's reaper (:mod:`dockyard.executors.reaper`), under the attempt's
lease, from its start until its group was killed and its leader reaped, in that order (a pid
cannot be reused while its zombie is unreaped, so the reaper never kills a stranger's group);
the program carries a mark of its own in ``DOCKYARD_REAPER``, so that the reaper also finds
the descendants that left the group. No reaper, no program: an attempt that cannot start one
fails ``CannotStart``. Nothing runs in the child between its fork and its ``exec``
(no ``preexec_fn``), so that ``subprocess`` can use vfork: a start costs ~0.8 ms, not ~5.

**Another user** (:class:`RunAs`, the policy's ``run_as``): a worker started as root runs its
programs as that user, its primary group and no other group, with ``HOME`` its home, so that
a job cannot read the worker's home (its token, its store) nor signal the worker. Changing
user between fork and ``exec`` rules vfork out: a start then costs ~4 ms instead of ~0.7
(measured here, a worker of ~80 MB).

The payload is handed over in memory (:func:`dockyard.executors.payload.handover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import ProcessSpec
from dockyard.errors import ValidationError
from dockyard.executors.payload import handover, payload_variables
from dockyard.executors.port import ExecutionContext
from dockyard.executors.reaper import TOKEN_VARIABLE, ReaperUnavailable, shared_reaper
from dockyard.logs.port import LogSink

__all__ = ["ProcessExecutor", "RunAs", "resolve_run_as", "run_process"]

READ_CHUNK = 64 * 1024
#: How long to drain output after the group was killed before giving up on the pipe.
DRAIN_SECONDS = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunAs:
    """The OS user a worker's programs run as."""

    name: str
    uid: int
    gid: int
    home: str

    def popen_arguments(self) -> dict[str, Any]:
        """What ``subprocess.Popen`` needs to start a program as this user (nothing when the
        worker is that user already)."""
        if os.geteuid() == self.uid:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def variables(self) -> dict[str, str]:
        """What a program of this user finds in its environment about itself."""
        return {"HOME": self.home}


def resolve_run_as(name: str | None) -> RunAs | None:
    """The user named by the policy's ``run_as``; ValidationError when there is no such user,
    or when this process cannot become it (only root can, or that user itself)."""
    if name is None:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ValidationError("run_as", f"there is no user {name!r} on this host") from None
    euid = os.geteuid()
    if euid not in (0, entry.pw_uid):
        raise ValidationError(
            "run_as",
            f"running jobs as {name} needs a worker started as root (this one runs as uid"
            f" {euid}); start it as root or unset DOCKYARD_RUN_AS",
        )
    return RunAs(name=name, uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir)


class ProcessExecutor:
    def __init__(self, base_environment: Mapping[str, str], run_as: RunAs | None = None) -> None:
        self._base = dict(base_environment)
        self._run_as = run_as
        if run_as is not None:
            self._base.update(run_as.variables())

    async def run(self, context: ExecutionContext) -> Outcome:
        spec = context.spec.executor
        assert isinstance(spec, ProcessSpec)
        argv: Sequence[str] = ("/bin/sh", "-c", spec.command[0]) if spec.shell else spec.command
        encoded = json.dumps(context.job.payload)
        with handover("payload", encoded.encode()) as payload:
            env = {
                **self._base,
                **context.environment(),
                **payload_variables(context, payload.path, encoded),
            }
            return await run_process(
                argv,
                env=env,
                cwd=_cwd(spec, context),
                context=context,
                pass_fds=payload.descriptors,
                run_as=self._run_as,
            )


def _cwd(spec: ProcessSpec, context: ExecutionContext) -> str | None:
    """``working_dir``; in a work directory (inputs, outputs), a folder inside it (made when
    missing: register time has checked it stays inside)."""
    if context.workdir is None:
        return spec.working_dir
    cwd = context.workdir / (spec.working_dir or ".")
    cwd.mkdir(parents=True, exist_ok=True)
    return str(cwd)


async def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    context: ExecutionContext,
    pass_fds: Sequence[int] = (),
    run_as: RunAs | None = None,
) -> Outcome:
    """Run ``argv`` to its end, its timeout or its cancel, logging its output; return the
    outcome. ``pass_fds``: descriptors the program inherits (its payload); ``run_as``: the user
    it runs as (None: the worker's)."""
    try:
        child = _Child(argv, env=env, cwd=cwd, context=context, pass_fds=pass_fds, run_as=run_as)
    except ReaperUnavailable as error:
        context.log.write(f"dockyard: {error}; not starting {argv[0]}\n".encode())
        return Outcome.failed(reason="CannotStart", status_reason=f"No reaper: {error}")
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
        child.end_group()  # whatever it left running in its group
        outcome = Outcome.exited(child.returncode())
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
        context: ExecutionContext,
        pass_fds: Sequence[int],
        run_as: RunAs | None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._log: LogSink = context.log
        self._reaper = shared_reaper()
        self._reaper.ensure()  # before the start: no program runs unguarded
        mark = self._reaper.mark()
        read_end, write_end = os.pipe()
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                env={**env, TOKEN_VARIABLE: mark},
                cwd=cwd,
                start_new_session=True,
                pass_fds=pass_fds,
                **(run_as.popen_arguments() if run_as is not None else {}),
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self.pid = self._proc.pid
        self._tracked = True
        try:
            self._reaper.track_group(self.pid, mark, context.lease)
        except ReaperUnavailable:
            _kill_group(self.pid, signal.SIGKILL)
            self._proc.wait()
            os.close(read_end)
            raise
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
        self.end_group()
        await asyncio.shield(self.exited)
        return self.returncode()

    def end_group(self) -> None:
        """SIGKILL the whole group and tell the reaper it is gone: before the leader is reaped,
        so that its pid (the group's id) cannot have been reused by then."""
        _kill_group(self.pid, signal.SIGKILL)
        if self._tracked:
            self._tracked = False
            with contextlib.suppress(ReaperUnavailable):
                self._reaper.forget_group(self.pid)

    def close(self) -> None:
        """Stop watching; kill what is left of the group; reap the program if it ended. Safe to
        call more than once."""
        self.end_group()  # a supervision that failed must not leave the program running
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


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
