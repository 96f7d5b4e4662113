"""The queues port: which queues are paused, their jobs per state, and the workers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dockyard.domain.records import JobId

__all__ = ["QueueInfo", "QueueStore", "WorkerInfo"]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueInfo:
    name: str
    paused: bool
    #: Jobs per state; states with no job are left out.
    counts: Mapping[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    id: str
    hostname: str
    pid: int
    queues: tuple[str, ...] | None
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None = None
    #: Jobs the worker holds now (filled by :meth:`QueueStore.workers`).
    running: tuple[JobId, ...] = ()


class QueueStore(Protocol):
    async def queues(self) -> list[QueueInfo]:
        """Every queue that has jobs or was paused, by name, with its job counts per state."""
        ...

    async def set_paused(self, name: str, paused: bool, now: datetime) -> QueueInfo:
        """A paused queue keeps its jobs and takes new ones, but workers claim none of them."""
        ...

    async def register_worker(self, worker: WorkerInfo) -> None:
        """Insert or replace the worker's registration (its start, heartbeat or stop)."""
        ...

    async def workers(self) -> list[WorkerInfo]:
        """Every registered worker, by start time, with the jobs it holds."""
        ...
