"""The schedules port on PostgreSQL: schedules, and the scheduler's rounds of fires.

A round is one transaction of a few set-based statements, whatever the number of schedules:
move each schedule on (only if it still has the next fire time the round planned from), insert
the jobs of the moved ones (:func:`~dockyard.storage.postgres.jobs.insert_jobs`, idempotency
keys deduplicating) and put their events on the bus
(:func:`~dockyard.storage.postgres.events.insert_events`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from dockyard.domain.scheduling import Schedule, spec_document
from dockyard.storage.ports import Fire, FireResult
from dockyard.storage.postgres.database import ROWS, Conn, Database
from dockyard.storage.postgres.events import insert_events
from dockyard.storage.postgres.jobs import insert_jobs
from dockyard.storage.queries import Queries

__all__ = ["PostgresSchedules"]

_SQL = Queries.load("dockyard.storage.postgres", "schedules.sql")
_INSERT = _SQL["insert"]
_GET = _SQL["get"]
_ALL = _SQL["all"]
_REPLACE = _SQL["replace"]
_DELETE = _SQL["delete"]
_DUE = _SQL["due"]
_NEXT_FIRE_AT = _SQL["next_fire_at"]
_MOVE = _SQL["move"]
_SET_LAST_JOBS = _SQL["set_last_jobs"]
_DELETE_ALL = _SQL["delete_all"]


class PostgresSchedules:
    """Schedules in ``schedules`` (the spec as a JSON document)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, schedule: Schedule) -> bool:
        args = _schedule_args(schedule)

        async def insert(conn: Conn) -> bool:
            inserted = await (await conn.execute(_INSERT, args)).fetchone() is not None
            if inserted:
                await self._database.notify(conn)
            return inserted

        return await self._database.run(insert)

    async def get(self, name: str) -> Schedule | None:
        row = await self._database.fetchone(_GET, {"name": name})
        return None if row is None else ROWS.schedule(row)

    async def all(self) -> list[Schedule]:
        return [ROWS.schedule(row) for row in await self._database.fetchall(_ALL)]

    async def replace(self, schedule: Schedule, expected_next: datetime | None) -> bool:
        args = _schedule_args(schedule)
        del args["created_at"]
        args |= {"last_error": schedule.last_error, "expected_next": expected_next}

        async def replace(conn: Conn) -> bool:
            replaced = await (await conn.execute(_REPLACE, args)).fetchone() is not None
            if replaced:
                await self._database.notify(conn)
            return replaced

        return await self._database.run(replace)

    async def delete(self, name: str) -> bool:
        async def delete(conn: Conn) -> bool:
            return await (await conn.execute(_DELETE, {"name": name})).fetchone() is not None

        return await self._database.run(delete)

    async def due(self, now: datetime, limit: int) -> list[Schedule]:
        rows = await self._database.fetchall(_DUE, {"now": now, "limit": limit})
        return [ROWS.schedule(row) for row in rows]

    async def next_fire_at(self) -> datetime | None:
        row = await self._database.fetchone(_NEXT_FIRE_AT)
        return None if row is None else row["at"]

    async def record_fires(self, fires: Sequence[Fire]) -> list[FireResult]:
        # A set-based statement per step, whatever the number of schedules: a minute when
        # thousands of schedules fire is a handful of statements per batch.
        return await self._database.run(lambda conn: self._record(conn, fires))

    async def _record(self, conn: Conn, fires: Sequence[Fire]) -> list[FireResult]:
        # The job ids are made here, so the move sets last_job_id too; only a fire whose key
        # was taken (a failover) points at another job, corrected after the insert.
        planned = [fire.jobs[-1].id if fire.jobs else None for fire in fires]
        cursor = await conn.execute(
            _MOVE,
            {
                "names": [fire.schedule for fire in fires],
                "expected": [fire.expected_next for fire in fires],
                "next_fire_at": [fire.next_fire_at for fire in fires],
                "fired_at": [fire.fired_at for fire in fires],
                "jobs": [len(fire.jobs) for fire in fires],
                "errors": [fire.error for fire in fires],
                "now": [fire.now for fire in fires],
                "job_ids": planned,
            },
        )
        moved = {row["name"] for row in await cursor.fetchall()}
        applied = [fire for fire in fires if fire.schedule in moved]
        jobs = [job for fire in applied for job in fire.jobs]
        inserted = await insert_jobs(self._database, conn, jobs)
        results: dict[str, FireResult] = {}
        others: dict[str, str] = {}
        offset = 0
        for fire in applied:
            mine = tuple(inserted[offset : offset + len(fire.jobs)])
            offset += len(fire.jobs)
            results[fire.schedule] = FireResult(applied=True, jobs=mine)
            if mine and mine[-1].job.id != fire.jobs[-1].id:
                others[fire.schedule] = mine[-1].job.id
        if others:
            args = {"names": list(others), "job_ids": list(others.values())}
            await conn.execute(_SET_LAST_JOBS, args)
        await insert_events(conn, [e for fire in applied for e in fire.events], fires[0].now)
        deleted = [fire.schedule for fire in applied if fire.delete]
        if deleted:
            await conn.execute(_DELETE_ALL, {"names": deleted})
        return [results.get(fire.schedule, FireResult(applied=False)) for fire in fires]


def _schedule_args(schedule: Schedule) -> dict[str, Any]:
    return {
        "name": schedule.name,
        "spec": Jsonb(spec_document(schedule.spec)),
        "enabled": schedule.enabled,
        "next_fire_at": schedule.next_fire_at,
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
    }
