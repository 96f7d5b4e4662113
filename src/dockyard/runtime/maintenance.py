"""The maintenance service: one leader among all processes rescues lost jobs and prunes history.

Every worker runs one; the loop of :mod:`dockyard.runtime.leader` makes one of them the leader
(an advisory lock on PostgreSQL, a file lock on SQLite), and when the leader dies the next one
takes over within an interval. The leader

- **rescues** jobs whose lease expired (their worker died or lost the network): each becomes a
  lost attempt through :func:`dockyard.domain.transitions.rescue`, a write guarded by the state,
  the worker and the lease it read, so a worker that renewed meanwhile keeps its job;
- **prunes** jobs that finished more than ``retention`` ago, oldest first, in small batches (each
  its own short transaction, so claims never wait behind a long delete), with their logs, and
  the bus's routed events and delivered invocations as old (the dead list stays), and the
  audit trail's entries as old;
- **refreshes the planner's statistics** of the jobs when many changed (a bulk submit, a
  burst of work) and the database has not done it itself.

Both are safe to run twice at once, so a brief overlap of two leaders during a failover costs
nothing.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dockyard.domain import transitions
from dockyard.domain.clock import Clock
from dockyard.domain.records import Job
from dockyard.domain.retry import RetryPolicy
from dockyard.logs.port import LogStore
from dockyard.runtime.leader import LeaderService
from dockyard.storage.ports import Storage

__all__ = ["Maintenance", "MaintenanceConfig", "MaintenanceReport"]

log = logging.getLogger("dockyard.maintenance")

ROLE = "maintenance"


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceConfig:
    #: Finished jobs are kept this long, then pruned with their attempts and logs.
    retention: timedelta = timedelta(days=7)
    #: How often the leader looks (and a follower tries to lead).
    interval_seconds: float = 1.0
    #: Jobs per rescue or prune transaction.
    batch_size: int = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceReport:
    rescued: int = 0
    pruned: int = 0
    analyzed: bool = False


class Maintenance(LeaderService):
    """Rescues and prunes while this process leads the ``maintenance`` role (see :mod:`.leader`).

    Every worker starts one beside it and stops it when the worker stops.
    """

    name = "maintenance"

    def __init__(
        self,
        *,
        storage: Storage,
        logs: LogStore,
        clock: Clock,
        config: MaintenanceConfig,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(storage=storage, role=ROLE, log=log)
        self.config = config
        self._logs = logs
        self._clock = clock
        self._rng = rng or random.Random()
        self._policies: dict[tuple[str, int], RetryPolicy] = {}

    @property
    def poll_seconds(self) -> float:
        return self.config.interval_seconds

    async def _lead(self) -> float | None:
        await self.run_once()
        return None  # every interval, whatever it found

    async def run_once(self) -> MaintenanceReport:
        """One pass, whether or not this process leads."""
        rescued = await self.rescue_expired()
        pruned = await self.prune()
        await self.prune_events()
        await self.prune_audit()
        analyzed = await self._storage.jobs.refresh_statistics()
        return MaintenanceReport(rescued=rescued, pruned=pruned, analyzed=analyzed)

    async def rescue_expired(self) -> int:
        """Rescue every job whose lease has expired; return how many were rescued."""
        rescued = 0
        while True:
            now = self._clock.now()
            expired = await self._storage.jobs.expired_leases(now, limit=self.config.batch_size)
            if not expired:
                return rescued
            rescues = [
                transitions.rescue(job, await self._policy(job), now=now, rng=self._rng)
                for job in expired
            ]
            applied = sum(await self._storage.jobs.apply(rescues))
            rescued += applied
            if applied:
                log.warning("rescued %d job(s) whose worker stopped renewing its lease", applied)
            if len(expired) < self.config.batch_size or not applied:
                return rescued

    async def prune(self) -> int:
        """Delete jobs finished before the retention period, batch by batch; return how many."""
        before = self._clock.now() - self.config.retention
        pruned = 0
        while True:
            ids = await self._storage.jobs.prune_finished(before, self.config.batch_size)
            for job_id in ids:
                self._logs.remove(job_id)
            pruned += len(ids)
            if len(ids) < self.config.batch_size:
                if pruned:
                    log.info("pruned %d job(s) finished before %s", pruned, before.isoformat())
                return pruned

    async def prune_events(self) -> int:
        """Delete routed events, and delivered invocations, older than the retention."""
        return await self._prune_batches(self._storage.events.prune)

    async def prune_audit(self) -> int:
        """Delete audit entries older than the retention, batch by batch; return how many."""
        return await self._prune_batches(self._storage.audit.prune)

    async def _prune_batches(self, prune: Callable[[datetime, int], Awaitable[int]]) -> int:
        """Call ``prune(before, batch_size)`` until a batch comes back short; the total."""
        before = self._clock.now() - self.config.retention
        pruned = 0
        while True:
            count = await prune(before, self.config.batch_size)
            pruned += count
            if count < self.config.batch_size:
                return pruned

    async def _policy(self, job: Job) -> RetryPolicy:
        key = (job.definition_name, job.definition_revision)
        policy = self._policies.get(key)
        if policy is None:
            definition = await self._storage.definitions.get(*key)
            policy = RetryPolicy() if definition is None else definition.spec.retry
            self._policies[key] = policy
        return policy
