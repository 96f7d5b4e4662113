"""The schedules port on SQLite: schedules as a resource, and the scheduler's rounds of fires.

A round of fires is one transaction: each schedule is moved on only while its ``next_fire_at`` is
still the one the scheduler read, and its jobs and events are written with the move (with
:func:`insert_jobs` and :func:`insert_events`, which the jobs and events ports own). Fires are
keyed by idempotency keys, so two schedulers overlapping for a moment make one job per fire.
The statements are in ``sql/schedules.sql``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dockyard.domain.scheduling import Schedule, spec_document
from dockyard.storage.ports import Fire, FireResult
from dockyard.storage.sqlite.database import ROWS, Database, epoch, load_queries, moment
from dockyard.storage.sqlite.events import insert_events
from dockyard.storage.sqlite.jobs import insert_jobs

__all__ = ["SQLiteSchedules"]

_SQL = load_queries("schedules.sql")


class SQLiteSchedules:
    """Schedules and their fires, on the store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, schedule: Schedule) -> bool:
        def insert(db: sqlite3.Connection) -> bool:
            with self._database.write(db):
                return db.execute(_SQL["insert"], _schedule_row(schedule)).rowcount == 1

        return await self._database.run(insert)

    async def get(self, name: str) -> Schedule | None:
        row = await self._database.run(lambda db: db.execute(_SQL["get"], (name,)).fetchone())
        return None if row is None else ROWS.schedule(row)

    async def all(self) -> list[Schedule]:
        rows = await self._database.run(lambda db: db.execute(_SQL["all"]).fetchall())
        return [ROWS.schedule(row) for row in rows]

    async def replace(self, schedule: Schedule, expected_next: datetime | None) -> bool:
        name, spec, enabled, next_fire_at, _, updated_at = _schedule_row(schedule)
        args = (spec, enabled, next_fire_at, updated_at, schedule.last_error, name)

        def replace(db: sqlite3.Connection) -> bool:
            with self._database.write(db):
                return db.execute(_SQL["replace"], (*args, epoch(expected_next))).rowcount == 1

        return await self._database.run(replace)

    async def delete(self, name: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            with self._database.write(db):
                return db.execute(_SQL["delete"], (name,)).rowcount == 1

        return await self._database.run(delete)

    async def due(self, now: datetime, limit: int) -> list[Schedule]:
        rows = await self._database.run(
            lambda db: db.execute(_SQL["due"], (now.timestamp(), limit)).fetchall()
        )
        return [ROWS.schedule(row) for row in rows]

    async def next_fire_at(self) -> datetime | None:
        row = await self._database.run(lambda db: db.execute(_SQL["next_fire_at"]).fetchone())
        return None if row is None or row[0] is None else moment(row[0])

    async def record_fires(self, fires: Sequence[Fire]) -> list[FireResult]:
        def record(db: sqlite3.Connection) -> list[FireResult]:
            with self._database.write(db):
                return [_record_fire(db, fire) for fire in fires]

        return await self._database.run(record)


def _record_fire(db: sqlite3.Connection, fire: Fire) -> FireResult:
    """Apply one fire in the caller's transaction, if the schedule is still as expected."""
    moved = db.execute(
        _SQL["move"],
        (
            epoch(fire.next_fire_at),
            epoch(fire.fired_at),
            len(fire.jobs),
            fire.error,
            fire.now.timestamp(),
            fire.schedule,
            fire.expected_next.timestamp(),
        ),
    )
    if moved.rowcount != 1:
        return FireResult(applied=False)
    inserted = insert_jobs(db, fire.jobs) if fire.jobs else []
    if inserted:
        db.execute(_SQL["set_last_job"], (inserted[-1].job.id, fire.schedule))
    insert_events(db, fire.events, fire.now)
    if fire.delete:
        db.execute(_SQL["delete"], (fire.schedule,))
    return FireResult(applied=True, jobs=tuple(inserted))


def _schedule_row(schedule: Schedule) -> tuple[Any, ...]:
    return (
        schedule.name,
        json.dumps(spec_document(schedule.spec)),
        int(schedule.enabled),
        epoch(schedule.next_fire_at),
        schedule.created_at.timestamp(),
        schedule.updated_at.timestamp(),
    )
