"""The scheduler: one leader among all processes fires due schedules, each fire exactly once.

Every process that runs a scheduler tries to lead (the loop of :mod:`dockyard.runtime.leader`: an
advisory lock on PostgreSQL, a file lock on SQLite); the leader reads the enabled schedules whose
``next_fire_at`` has come, works out their fires (:func:`dockyard.domain.scheduling.plan_fires`:
on time, missed and caught up, or skipped), and writes each round in one transaction: the
schedule moved on, guarded by the ``next_fire_at`` it read, and the jobs of its fires, each with
the idempotency key ``schedule:<name>:<fire time>``.

So a fire is neither doubled nor lost when a leader dies: if it died before its transaction
committed, nothing moved and the next leader fires the same times; two leaders for a moment (a
failover while the old one still ran) write the same keys, and the guard lets one of them move
the schedule.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dockyard.domain.clock import Clock
from dockyard.domain.definitions import parse_definition_ref
from dockyard.domain.events import Event, iso_time
from dockyard.domain.fire_plans import fire_request, plan_fires
from dockyard.domain.jobs import new_job
from dockyard.domain.records import Definition, NewJob
from dockyard.domain.scheduling import Overlap, Schedule
from dockyard.domain.states import TERMINAL_STATES
from dockyard.errors import DockyardError, NotFoundError
from dockyard.runtime.leader import LeaderService
from dockyard.storage.ports import Fire, FireResult, Storage

__all__ = ["ROLE", "Scheduler", "SchedulerConfig", "SchedulerReport"]

log = logging.getLogger("dockyard.scheduler")

ROLE = "scheduler"


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerConfig:
    #: Longest sleep between looks (and how soon a follower notices the leader is gone).
    poll_seconds: float = 1.0
    #: Due schedules read at once.
    batch_size: int = 1000
    #: Schedules per transaction (the next chunk is worked out while one is written).
    chunk_size: int = 100
    #: A fire found later than this after its time was missed: the catch-up policy decides.
    grace_seconds: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerReport:
    #: Due schedules this round read (a full batch means more may be due).
    schedules: int = 0
    #: Jobs submitted (a fire whose key was already taken counts too: its job exists).
    fired: int = 0
    #: Fire times passed over: missed under the catch-up policy, or overlapping a running job.
    skipped: int = 0
    #: Schedules whose round failed (their definition is gone, say); see ``last_error``.
    failed: int = 0


class Scheduler(LeaderService):
    """Fires due schedules while this process leads the ``scheduler`` role (see :mod:`.leader`)."""

    name = "scheduler"

    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        config: SchedulerConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(storage=storage, role=ROLE, log=log)
        self.config = config or SchedulerConfig()
        self._clock = clock
        self._rng = rng or random.Random()

    @property
    def poll_seconds(self) -> float:
        return self.config.poll_seconds

    async def _lead(self) -> float | None:
        """Rounds until the due schedules fit in one batch; then sleep until the next is due."""
        while (await self.run_once()).schedules >= self.config.batch_size:
            pass
        upcoming = await self._storage.schedules.next_fire_at()
        return None if upcoming is None else (upcoming - self._clock.now()).total_seconds()

    async def run_once(self) -> SchedulerReport:
        """One round over the due schedules (at most ``batch_size``), leader or not.

        The batch is written in chunks, each its own transaction, and the next chunk is worked
        out while the previous one is written: the database and the scheduler's CPU overlap.
        """
        now = self._clock.now()
        due = await self._storage.schedules.due(now, self.config.batch_size)
        if not due:
            return SchedulerReport()
        definitions: dict[str, Definition | None] = {}
        writes: list[tuple[list[Fire], asyncio.Task[list[FireResult]]]] = []
        skipped = failed = fired = 0
        for offset in range(0, len(due), self.config.chunk_size):
            fires = []
            for index, schedule in enumerate(due[offset : offset + self.config.chunk_size]):
                if index % 10 == 9:
                    await asyncio.sleep(0)  # let the previous chunk's write go on meanwhile
                fire, passed_over = await self._round(schedule, now, definitions)
                fires.append(fire)
                skipped += passed_over
                failed += fire.error is not None
            if writes:  # one write at a time, in order
                done_fires, done_write = writes.pop()
                fired += self._count(done_fires, await done_write)
            writes.append((fires, asyncio.create_task(self._storage.schedules.record_fires(fires))))
            await asyncio.sleep(0)  # start it before working out the next chunk
        for fires, write in writes:
            fired += self._count(fires, await write)
        return SchedulerReport(schedules=len(due), fired=fired, skipped=skipped, failed=failed)

    @staticmethod
    def _count(fires: list[Fire], results: list[FireResult]) -> int:
        fired = 0
        for fire, result in zip(fires, results, strict=True):
            if not result.applied:
                continue  # another scheduler moved it first
            fired += len(result.jobs)
            if fire.error is not None:
                log.warning("schedule %s did not fire: %s", fire.schedule, fire.error)
        return fired

    async def _round(
        self, schedule: Schedule, now: datetime, definitions: dict[str, Definition | None]
    ) -> tuple[Fire, int]:
        """What one round of ``schedule`` writes, and how many due fires it passes over."""
        assert schedule.next_fire_at is not None
        grace = timedelta(seconds=self.config.grace_seconds)
        plan = plan_fires(schedule, now=now, grace=grace)
        times: Sequence[datetime] = plan.fires
        skipped = plan.missed
        if times and schedule.spec.overlap is Overlap.SKIP:
            # One job at a time: none while the last one runs, else only the newest fire.
            if await self._previous_unfinished(schedule):
                skipped += len(times)
                times = ()
            else:
                skipped += len(times) - 1
                times = times[-1:]
        jobs: list[NewJob] = []
        error = None
        if times:
            try:
                definition = await self._definition(schedule.spec.target.definition, definitions)
                jobs = [
                    new_job(fire_request(schedule, moment, rng=self._rng), definition, now)
                    for moment in times
                ]
            except DockyardError as failure:
                error = str(failure)
        events = [
            Event.new(
                "dockyard.schedule",
                "Schedule Fired",
                {
                    "schedule": schedule.name,
                    "scheduledTime": iso_time(moment),
                    "jobId": job.id,
                    "jobDefinition": f"{job.definition_name}:{job.definition_revision}",
                },
                now=now,
                resources=[f"dockyard:schedule/{schedule.name}"],
            )
            for moment, job in zip(times, jobs, strict=False)
        ]
        fire = Fire(
            schedule=schedule.name,
            expected_next=schedule.next_fire_at,
            next_fire_at=plan.next_fire_at,
            jobs=jobs,
            events=events,
            fired_at=times[-1] if jobs else None,
            error=error,
            delete=plan.next_fire_at is None and schedule.spec.delete_after_completion,
            now=now,
        )
        return fire, skipped

    async def _previous_unfinished(self, schedule: Schedule) -> bool:
        if schedule.last_job_id is None:
            return False
        job = await self._storage.jobs.get(schedule.last_job_id)
        return job is not None and job.state not in TERMINAL_STATES

    async def _definition(self, ref: str, cache: dict[str, Definition | None]) -> Definition:
        if ref not in cache:
            name, revision = parse_definition_ref(ref)
            cache[ref] = await self._storage.definitions.get(name, revision)
        definition = cache[ref]
        if definition is None:
            raise NotFoundError("active revision of definition", ref)
        return definition
