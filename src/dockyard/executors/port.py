"""The executor port: what an attempt gets (:class:`ExecutionContext`), what it returns
(:class:`~dockyard.domain.outcomes.Outcome`), and what some executors can do besides.

An executor returns once the attempt's outcome is decided. Usually its body (a process, a
container, a coroutine) has ended by then; the exception is a body nothing can stop, an inline
function on a thread past its timeout or its cancel. Such an executor hands the worker a future
of the body's own outcome through :meth:`ExecutionContext.linger` before it returns, and the
worker keeps the job's lease and slot until that future is done (docs/guarantees.md).

A body on a thread of the worker is said so as it starts (:meth:`ExecutionContext.runs_on_thread`):
if its lease lapses, only the end of the worker process can stop it. Whatever else an attempt
starts (a process group, a container) is told to the worker's reaper under the attempt's lease
(:attr:`ExecutionContext.lease`), so that it dies when the lease runs out unrenewed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import DefinitionSpec, Job
from dockyard.logs.port import LogSink

__all__ = [
    "Closes",
    "ExecutionContext",
    "Executor",
    "LeavesThingsBehind",
    "Leftover",
    "begins_itself",
    "lease_key",
    "starts_at_once",
]


def lease_key(job_id: str, attempt: int) -> str:
    """The name of one attempt's lease, as the worker tells it to the reaper."""
    return f"{job_id}/{attempt}"


def _nobody_waits(body: asyncio.Future[Outcome]) -> None:
    """The default :attr:`ExecutionContext.lingering`: the caller waits for no body."""


def _nobody_asks(call: asyncio.Future[Any]) -> None:
    """The default :attr:`ExecutionContext.threads`: the caller does not ask."""


def _begun() -> None:
    """The default :attr:`ExecutionContext.begin`: the caller wrote the start itself."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionContext:
    """Everything one attempt needs. ``cancelled`` is set when the attempt must stop now."""

    job: Job
    attempt: int
    spec: DefinitionSpec
    log: LogSink
    cancelled: asyncio.Event
    #: Grace between SIGTERM and SIGKILL when an attempt is cancelled (timeouts use the spec's).
    cancel_grace: float = 1.0
    #: The worker running the attempt (containers are labelled with it).
    worker_id: str = ""
    #: Told of a body that outlives the outcome (see :meth:`linger`); the worker's callback.
    lingering: Callable[[asyncio.Future[Outcome]], None] = _nobody_waits
    #: Told of a body that runs on a thread (see :meth:`runs_on_thread`); the worker's callback.
    threads: Callable[[asyncio.Future[Any]], None] = _nobody_asks
    #: Called by an executor that :func:`begins_itself` once it has prepared the attempt
    #: (fetched its inputs) and its body starts: the worker then writes the job RUNNING.
    begin: Callable[[], None] = _begun
    #: The attempt's work directory (its inputs fetched in), or None: the process's cwd, a
    #: container's bind-mounted working directory (:mod:`dockyard.executors.workdirs`).
    workdir: Path | None = None

    @property
    def lease(self) -> str:
        """The attempt's lease, under which its bodies are told to the reaper."""
        return lease_key(self.job.id, self.attempt)

    def runs_on_thread(self, call: asyncio.Future[Any]) -> None:
        """Say that the body runs on a thread of the worker until ``call`` is done: nothing
        but the end of the worker process can stop it (the worker ends itself rather than let
        it outlive its lease)."""
        self.threads(call)

    def linger(self, body: asyncio.Future[Outcome]) -> None:
        """Say that the outcome about to be returned is decided, but the attempt's body still
        runs until ``body`` is done, with the outcome the body itself came to. Called at most
        once per attempt, before :meth:`Executor.run` returns."""
        self.lingering(body)

    def environment(self) -> Mapping[str, str]:
        """The job's environment plus the variables Dockyard sets for every attempt (the
        payload's come from :mod:`dockyard.executors.payload`)."""
        return {
            **self.spec.environment,
            "DOCKYARD_JOB_ID": self.job.id,
            "DOCKYARD_JOB_ATTEMPT": str(self.attempt),
            "DOCKYARD_JOB_NAME": self.job.name,
            "DOCKYARD_QUEUE": self.job.queue,
        }


class Executor(Protocol):
    async def run(self, context: ExecutionContext) -> Outcome: ...


def starts_at_once(executor: Executor) -> bool:
    """Whether ``executor`` begins an attempt as soon as it is handed one, with nothing to
    prepare (an inline function, an HTTP call): it says so with a class attribute
    ``starts_at_once = True``. The worker's claim then moves its jobs straight to RUNNING with
    their attempts started, and writes no separate start. An executor that prepares (pulls an
    image, fetches inputs), or says nothing, has its jobs claimed STARTING and written RUNNING
    as their attempts begin."""
    return getattr(executor, "starts_at_once", False) is True


def begins_itself(executor: Executor | None) -> bool:
    """Whether ``executor`` prepares an attempt before its body starts (fetches inputs while the
    job is STARTING) and calls :attr:`ExecutionContext.begin` when the body starts: it says so
    with a class attribute ``begins_itself = True``. The worker then writes the start only
    when told, and an attempt that ends before (a failed fetch) ends from STARTING."""
    return getattr(executor, "begins_itself", False) is True


@runtime_checkable
class Closes(Protocol):
    """An executor holding connections (an HTTP pool) that the worker closes when it stops."""

    async def aclose(self) -> None: ...


@runtime_checkable
class LeavesThingsBehind(Protocol):
    """An executor whose attempts outlive a killed worker (containers), and can list and remove
    what is left. Both calls block: the worker runs them on a thread."""

    def leftovers(self) -> Sequence[Leftover]: ...

    def remove(self, ids: list[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class Leftover:
    """Something an attempt started: its id, whose job, and which worker started it."""

    container_id: str
    job_id: str
    worker_id: str
