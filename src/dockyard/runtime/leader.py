"""The leader loop: work that one process at a time does for every process sharing the store.

The scheduler, the rules engine and maintenance each run where many processes do (every worker
runs maintenance, ``dockyard up`` and every ``dockyard scheduler`` the other two), yet each
round must be done by one of them. :class:`LeaderService` is their one loop:

1. try to lead the role (:meth:`Leadership.try_lead`: an advisory lock on PostgreSQL, a file lock
   on SQLite; a process that dies loses it at once), logging ``took``/``lost the <role>
   leadership`` once per change;
2. while leading, run one round (:meth:`LeaderService._lead`, the subclass's work);
3. sleep until the time the round asked for, a stop, the poll interval, or, for a service that
   wakes on changes, a write to the store (:class:`ChangeFeed`).

A round that fails is logged and tried again after the pause: a store briefly unreachable costs
a round, never the service. A follower notices that the leader is gone within one poll interval.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from typing import Any, ClassVar

from dockyard.runtime.service import Service
from dockyard.storage.ports import Storage

__all__ = ["LeaderService"]


class LeaderService(Service):
    """A service whose rounds run only while this process leads its ``role``."""

    #: Whether a write to the store, while leading, ends the pause early.
    wake_on_change: ClassVar[bool] = False

    def __init__(self, *, storage: Storage, role: str, log: logging.Logger) -> None:
        super().__init__()
        self.role = role
        self._storage = storage
        self._log = log
        #: Set while this process leads ``role``, cleared when it lost the leadership.
        self.leads = asyncio.Event()

    @property
    def leading(self) -> bool:
        """True while this process leads ``role`` (as of its last try)."""
        return self.leads.is_set()

    @property
    @abc.abstractmethod
    def poll_seconds(self) -> float:
        """The longest pause between tries (and how soon a follower notices a dead leader)."""

    @property
    def min_gap_seconds(self) -> float:
        """The shortest time from one round's start to the next one's."""
        return 0.0

    @abc.abstractmethod
    async def _lead(self) -> float | None:
        """One round, as the leader; returns in how many seconds it wants the next (or None)."""

    async def _serve(self) -> None:
        self._announce_started()
        while not self.stopping:
            # Read before the round: what the round itself writes wakes the next one at once.
            token = self._storage.changes.token() if self.wake_on_change else None
            began = time.monotonic()
            delay = self.poll_seconds
            try:
                if await self._try_lead():
                    wanted = await self._lead()
                    if wanted is not None:
                        delay = min(delay, max(wanted, 0.0))
            except Exception:
                self._log.exception("%s failed; trying again", self.name)
            await self._pause(token, delay, began)

    async def _try_lead(self) -> bool:
        leading = await self._storage.leadership.try_lead(self.role)
        if leading != self.leading:
            self._log.info("%s the %s leadership", "took" if leading else "lost", self.role)
            if leading:
                self.leads.set()
            else:
                self.leads.clear()
        return leading

    async def _pause(self, token: int | None, delay: float, began: float) -> None:
        """Until a stop, ``delay`` seconds, or (leading, waking on changes) a write since
        ``token``; then until ``min_gap_seconds`` after ``began``."""
        waits: set[asyncio.Task[Any]] = {asyncio.create_task(self._until_stopping())}
        if token is not None and self.leading:
            waits.add(asyncio.create_task(self._storage.changes.wait(token, delay)))
        await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        rest = self.min_gap_seconds - (time.monotonic() - began)
        if rest > 0:
            await self._until_stopping(rest)
