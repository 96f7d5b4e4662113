"""The executor port."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import DefinitionSpec, Job
from dockyard.logs.port import LogSink

__all__ = ["Closes", "ExecutionContext", "Executor", "LeavesThingsBehind", "Leftover"]


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
