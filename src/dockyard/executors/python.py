"""The ``python`` executor: call ``package.module:function(payload)``.

Inline, an ``async def`` runs on the worker's event loop and a plain function on a thread; what
it prints goes to the job's log (``sys.stdout`` and ``sys.stderr`` are routed per job through a
context variable). Definitions that need a hard stop ask for ``isolation: subprocess``, which runs
the function in a child Python process killed like any process job.

Nothing can stop a thread. When an inline plain function outlives its timeout or its cancel, the
outcome is decided at once (timed out, cancelled), but the function runs on: the executor says
so through :meth:`ExecutionContext.linger`, with a future of the function's own outcome, and the
worker keeps the job's lease and slot until it is done, so that no other attempt of the job
starts beside it (docs/guarantees.md). An ``async def`` is cancelled at its next ``await``; one
that does not end within the cancel grace (it swallowed the cancel) lingers the same way.

**Which functions.** Only those the worker's owner allowed (:mod:`dockyard.executors.functions`):
anything else fails ``FunctionNotAllowed``, without a retry. The worker's project folders are
searched *after* the installed packages (appended to ``sys.path``, last on an isolated child's
``PYTHONPATH``, and the child runs with ``-P``), so that a file planted there under an installed
module's name (``json.py``, ``httpx.py``) never stands in for it.

**Another user.** An inline function runs inside the worker, as the worker's user: on a worker
whose policy names ``run_as``, every function runs isolated, in a child process of that user,
whatever its definition says (the log says so).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import JSON, PythonSpec
from dockyard.executors.functions import FunctionNotAllowed, FunctionRules
from dockyard.executors.payload import handover, payload_variables
from dockyard.executors.port import ExecutionContext
from dockyard.executors.process import RunAs, run_process
from dockyard.logs.port import LogSink

__all__ = ["PythonExecutor"]

_current_sink: contextvars.ContextVar[LogSink | None] = contextvars.ContextVar(
    "dockyard_job_log", default=None
)


class _JobStream:
    """Stands in for ``sys.stdout``/``sys.stderr``: writes of a job go to its log, others pass."""

    def __init__(self, original: TextIO) -> None:
        self._original = original

    def write(self, text: str) -> int:
        sink = _current_sink.get()
        if sink is None:
            return self._original.write(text)
        sink.write(text.encode("utf-8", "replace"))
        return len(text)

    def flush(self) -> None:
        if _current_sink.get() is None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def _route_std_streams() -> None:
    if not isinstance(sys.stdout, _JobStream):
        sys.stdout = _JobStream(sys.stdout)
    if not isinstance(sys.stderr, _JobStream):
        sys.stderr = _JobStream(sys.stderr)


def _failure(error: BaseException) -> Outcome:
    return Outcome.failed(
        reason=type(error).__name__, status_reason=f"{type(error).__name__}: {error}"
    )


def _not_allowed(message: str, context: ExecutionContext) -> Outcome:
    """The outcome of a function the worker's owner did not allow: final, no retry."""
    context.log.write(f"dockyard: {message}\n".encode())
    outcome = Outcome.failed(reason="FunctionNotAllowed", status_reason=message)
    return outcome.with_retry(False)


def _child_path(folders: Sequence[str]) -> str:
    """An isolated child's ``PYTHONPATH``: the worker's ``sys.path`` with the project folders
    last (and no ``''``, the current folder)."""
    others = [entry for entry in sys.path if entry and entry not in folders]
    return os.pathsep.join([*others, *folders])


def _call_outcome(call: asyncio.Future[Any], context: ExecutionContext) -> Outcome:
    """The outcome of a finished call: its result, or the exception it raised (logged)."""
    if call.cancelled():
        return Outcome.cancelled()
    error = call.exception()
    if error is not None:
        context.log.write("".join(traceback.format_exception(error)).encode())
        return _failure(error)
    return _result_outcome(call.result())


async def _settle(call: asyncio.Future[Any], context: ExecutionContext) -> Outcome:
    """The outcome a lingering call comes to, once it has ended."""
    await asyncio.wait({call})
    return _call_outcome(call, context)


def _result_outcome(result: object) -> Outcome:
    try:
        encoded = json.dumps(result)
    except (TypeError, ValueError) as error:
        return Outcome.failed(reason="TypeError", status_reason=f"Result is not JSON: {error}")
    decoded: JSON = json.loads(encoded)
    return Outcome.succeeded(exit_code=None, result=decoded)


class PythonExecutor:
    starts_at_once = True  # nothing to prepare: claimed RUNNING (executors/port.py)

    def __init__(
        self,
        base_environment: Mapping[str, str],
        search_path: Sequence[str] = (),
        *,
        modules: Sequence[str] = (),
        run_as: RunAs | None = None,
    ) -> None:
        self._base = dict(base_environment)
        self._run_as = run_as
        if run_as is not None:
            self._base.update(run_as.variables())
        self._folders = tuple(os.path.abspath(folder) for folder in search_path)
        self._rules = FunctionRules(modules=tuple(modules), folders=self._folders)
        # Functions are found in the worker's project folders after the installed packages,
        # never before them (a planted ``json.py`` must not shadow the real one).
        for folder in self._folders:
            if folder not in sys.path:
                sys.path.append(folder)

    async def run(self, context: ExecutionContext) -> Outcome:
        spec = context.spec.executor
        assert isinstance(spec, PythonSpec)
        if spec.isolation == "subprocess":
            return await self._run_isolated(spec, context)
        if self._run_as is not None:
            context.log.write(
                f"dockyard: this worker runs jobs as {self._run_as.name} (run_as): running"
                f" {spec.function} in a child process of that user, not inline\n".encode()
            )
            return await self._run_isolated(spec, context)
        return await self._run_inline(spec, context)

    async def _run_inline(self, spec: PythonSpec, context: ExecutionContext) -> Outcome:
        _route_std_streams()
        token = _current_sink.set(context.log)
        try:
            try:
                function = self._rules.load(spec.function)
            except FunctionNotAllowed as refused:
                return _not_allowed(str(refused), context)
            except (ImportError, AttributeError, TypeError) as error:
                context.log.write(f"dockyard: cannot load {spec.function}: {error}\n".encode())
                return _failure(error)
            if inspect.iscoroutinefunction(function):
                call = asyncio.ensure_future(function(context.job.payload))
            else:
                # Not asyncio.to_thread: cancelling its task would forget the thread, whose end
                # the worker must still see when the function outlives its timeout or cancel.
                run = contextvars.copy_context().run
                loop = asyncio.get_running_loop()
                call = loop.run_in_executor(None, run, function, context.job.payload)
                context.runs_on_thread(call)
            return await self._await_call(call, context)
        finally:
            _current_sink.reset(token)

    async def _await_call(self, call: asyncio.Future[Any], context: ExecutionContext) -> Outcome:
        cancelled = asyncio.ensure_future(context.cancelled.wait())
        timeout = context.spec.timeout_seconds
        try:
            done, _ = await asyncio.wait(
                {call, cancelled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            cancelled.cancel()
        if call in done:
            return _call_outcome(call, context)
        decided = Outcome.cancelled() if cancelled in done else Outcome.timed_out(timeout or 0.0)
        if isinstance(call, asyncio.Task):
            call.cancel()  # a coroutine stops at its next await...
            await asyncio.wait({call}, timeout=context.cancel_grace)
            if call.done():
                if not call.cancelled():
                    call.exception()  # retrieved: what it raised while stopping is moot
                return decided
        # ...a thread cannot be stopped (nor a coroutine that swallowed its cancel): the
        # outcome stands, and the worker waits for the body before it lets the lease go.
        context.linger(asyncio.ensure_future(_settle(call, context)))
        return decided

    async def _run_isolated(self, spec: PythonSpec, context: ExecutionContext) -> Outcome:
        """The function in a child process; the payload and the result pass through files in
        memory (:func:`dockyard.executors.payload.handover`). The function is checked here,
        before the child starts (running none of its module's code), and again in the child
        once loaded (where it was really defined)."""
        try:
            self._rules.check(spec.function)
        except FunctionNotAllowed as refused:
            return _not_allowed(str(refused), context)
        except ImportError as error:
            context.log.write(f"dockyard: cannot load {spec.function}: {error}\n".encode())
            return _failure(error)
        encoded = json.dumps(context.job.payload)
        with handover("payload", encoded.encode()) as payload, handover("result") as result:
            env = {
                **self._base,
                **context.environment(),
                **payload_variables(context, payload.path, encoded),
                "DOCKYARD_RESULT_FILE": result.path,
                "PYTHONPATH": _child_path(self._folders),
            }
            # -P: the child's current folder is not put first on its sys.path either.
            argv = (
                sys.executable,
                "-P",
                "-m",
                "dockyard.executors.python_child",
                spec.function,
                self._rules.argument(),
            )
            descriptors = payload.descriptors + result.descriptors
            outcome = await run_process(
                argv,
                env=env,
                cwd=None,
                context=context,
                pass_fds=descriptors,
                run_as=self._run_as,
            )
            if outcome.exit_code != 0:
                return outcome
            try:
                report = json.loads(result.read())
            except (OSError, ValueError):
                return Outcome.failed(
                    reason="NoResult", status_reason="The function left no result"
                )
        if "error" in report:
            failed = Outcome.failed(reason=report["error"], status_reason=report["message"])
            return failed.with_retry(report["error"] != "FunctionNotAllowed")
        return Outcome.succeeded(exit_code=None, result=report["result"])
