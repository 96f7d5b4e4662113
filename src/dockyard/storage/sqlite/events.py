"""The events port on SQLite: put events on the bus, read them, route them, prune them.

Routing records the invocations (a table of the rules port, :func:`record_invocations`) in the
transaction that marks the events routed, so a failover that routes an event twice records it
once. :func:`insert_events` is shared with the schedules port, whose fires put events in their
own transaction. The statements are in ``sql/events.sql``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from dockyard.domain.events import Event
from dockyard.storage.ports import NewInvocation, StoredEvent
from dockyard.storage.sqlite.database import Database, load_queries
from dockyard.storage.sqlite.rules import prune_delivered, record_invocations

__all__ = ["SQLiteEvents", "insert_events"]

_SQL = load_queries("events.sql")


class SQLiteEvents:
    """The event bus, on the store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def put(self, events: Sequence[Event], now: datetime) -> int:
        def insert(db: sqlite3.Connection) -> int:
            with self._database.write(db):
                return insert_events(db, events, now)

        return await self._database.run(insert)

    async def recent(self, limit: int, source: str | None = None) -> list[StoredEvent]:
        args: tuple[Any, ...]
        if source is None:
            sql, args = _SQL["recent"], (limit,)
        else:
            sql, args = _SQL["recent_from_source"], (source, limit)
        rows = await self._database.run(lambda db: db.execute(sql, args).fetchall())
        return [_stored_event(row) for row in rows]

    async def unrouted(self, limit: int) -> list[StoredEvent]:
        rows = await self._database.run(
            lambda db: db.execute(_SQL["unrouted"], (limit,)).fetchall()
        )
        return [_stored_event(row, depth=row["depth"]) for row in rows]

    async def route(
        self, seqs: Sequence[int], invocations: Sequence[NewInvocation], now: datetime
    ) -> int:
        def route(db: sqlite3.Connection) -> int:
            with self._database.write(db):
                recorded = record_invocations(db, invocations, now)
                db.executemany(_SQL["mark_routed"], [(seq,) for seq in seqs])
                return recorded

        return await self._database.run(route)

    async def prune(self, before: datetime, limit: int) -> int:
        def prune(db: sqlite3.Connection) -> int:
            with self._database.write(db):
                events = db.execute(_SQL["prune"], (before.timestamp(), limit)).rowcount
                invocations = prune_delivered(db, before, limit)
                return max(events, invocations)

        return await self._database.run(prune)


def insert_events(db: sqlite3.Connection, events: Sequence[Event], now: datetime) -> int:
    """Insert ``events`` in the caller's transaction if some rule is enabled (else nothing would
    read them); return how many were kept."""
    if not events:
        return 0
    return db.executemany(
        _SQL["put"],
        [
            (e.id, e.source, e.detail_type, json.dumps(e.envelope()), now.timestamp())
            for e in events
        ],
    ).rowcount


def _stored_event(row: sqlite3.Row, depth: int = 0) -> StoredEvent:
    return StoredEvent(
        seq=row["seq"],
        envelope=json.loads(row["body"]),
        received_at=datetime.fromtimestamp(row["received_at"], UTC),
        depth=depth,
    )
