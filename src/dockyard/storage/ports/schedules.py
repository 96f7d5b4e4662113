"""The schedules port: schedules as a resource, and the scheduler's rounds of fires."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dockyard.domain.events import Event
from dockyard.domain.records import NewJob
from dockyard.domain.scheduling import Schedule
from dockyard.storage.ports.jobs import InsertedJob

__all__ = ["Fire", "FireResult", "ScheduleStore"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Fire:
    """One scheduler round of one schedule: move it on, and submit the jobs of its fires.

    Applies only while the schedule's ``next_fire_at`` is still ``expected_next`` (another
    scheduler, or an update, did not move it meanwhile).
    """

    schedule: str
    expected_next: datetime
    next_fire_at: datetime | None
    jobs: Sequence[NewJob] = ()
    #: The latest fire time of this round (None when every due fire was skipped).
    fired_at: datetime | None = None
    error: str | None = None
    #: Delete the schedule (nothing left to fire and ``delete_after_completion``).
    delete: bool = False
    #: ``Schedule Fired`` events, put on the bus with the jobs (when a rule is enabled).
    events: Sequence[Event] = ()
    now: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class FireResult:
    applied: bool
    jobs: tuple[InsertedJob, ...] = ()


class ScheduleStore(Protocol):
    async def insert(self, schedule: Schedule) -> bool:
        """Store a new schedule; False when the name is taken."""
        ...

    async def get(self, name: str) -> Schedule | None: ...

    async def all(self) -> list[Schedule]:
        """Every schedule, by name."""
        ...

    async def replace(self, schedule: Schedule, expected_next: datetime | None) -> bool:
        """Store ``schedule`` over the one of its name (its spec, state, ``next_fire_at`` and
        ``last_error``) if that one's ``next_fire_at`` is still ``expected_next``; False when
        there is none or a fire moved it meanwhile."""
        ...

    async def delete(self, name: str) -> bool: ...

    async def due(self, now: datetime, limit: int) -> list[Schedule]:
        """Enabled schedules whose ``next_fire_at`` is at or before ``now``, earliest first."""
        ...

    async def next_fire_at(self) -> datetime | None:
        """The earliest ``next_fire_at`` of an enabled schedule."""
        ...

    async def record_fires(self, fires: Sequence[Fire]) -> list[FireResult]:
        """Apply every fire in one transaction: each schedule moved on (if still as expected),
        its jobs inserted (idempotency keys deduplicating) and its events put on the bus."""
        ...
