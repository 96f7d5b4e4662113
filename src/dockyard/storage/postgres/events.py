"""The events port on PostgreSQL: the bus that rules read, as an outbox.

Dockyard's own events are written by database triggers and by the scheduler's round
(:func:`insert_events`, in the transaction of the fires) with the change they announce, so an
event is on the bus exactly when its change committed. The rules leader reads unrouted events in
arrival order and records their invocations in the transaction that marks them routed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from dockyard.domain.events import Event
from dockyard.storage.ports import NewInvocation, StoredEvent
from dockyard.storage.postgres.database import Conn, Database
from dockyard.storage.postgres.rules import insert_invocations, prune_delivered
from dockyard.storage.queries import Queries

__all__ = ["PostgresEvents", "insert_events"]

_SQL = Queries.load("dockyard.storage.postgres", "events.sql")
_INSERT = _SQL["insert"]
_RECENT = _SQL["recent"]
_RECENT_FROM_SOURCE = _SQL["recent_from_source"]
_UNROUTED = _SQL["unrouted"]
_MARK_ROUTED = _SQL["mark_routed"]
_PRUNE = _SQL["prune"]


class PostgresEvents:
    """Events in ``events``, numbered by ``seq`` in arrival order."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def put(self, events: Sequence[Event], now: datetime) -> int:
        async def insert(conn: Conn) -> int:
            kept = await insert_events(conn, events, now)
            if kept:
                await self._database.notify(conn)
            return kept

        return await self._database.run(insert)

    async def recent(self, limit: int, source: str | None = None) -> list[StoredEvent]:
        if source is None:
            rows = await self._database.fetchall(_RECENT, {"limit": limit})
        else:
            args = {"source": source, "limit": limit}
            rows = await self._database.fetchall(_RECENT_FROM_SOURCE, args)
        return [_stored_event(row) for row in rows]

    async def unrouted(self, limit: int) -> list[StoredEvent]:
        rows = await self._database.fetchall(_UNROUTED, {"limit": limit})
        return [_stored_event(row) for row in rows]

    async def route(
        self, seqs: Sequence[int], invocations: Sequence[NewInvocation], now: datetime
    ) -> int:
        async def route(conn: Conn) -> int:
            recorded = await insert_invocations(conn, invocations, now)
            await conn.execute(_MARK_ROUTED, {"seqs": list(seqs)})
            return recorded

        return await self._database.run(route)

    async def prune(self, before: datetime, limit: int) -> int:
        async def prune(conn: Conn) -> int:
            events = await conn.execute(_PRUNE, {"before": before, "limit": limit})
            invocations = await prune_delivered(conn, before, limit)
            return max(events.rowcount, invocations)

        return await self._database.run(prune)


async def insert_events(conn: Conn, events: Sequence[Event], now: datetime) -> int:
    """Put ``events`` on the bus in the caller's transaction, if some rule is enabled (else
    nothing would read them); return how many were kept."""
    if not events:
        return 0
    cursor = await conn.execute(
        _INSERT,
        {
            "now": now,
            "ids": [e.id for e in events],
            "sources": [e.source for e in events],
            "detail_types": [e.detail_type for e in events],
            "bodies": [Jsonb(e.envelope()) for e in events],
        },
    )
    return cursor.rowcount


def _stored_event(row: DictRow) -> StoredEvent:
    return StoredEvent(
        seq=row["seq"],
        envelope=row["body"],
        received_at=row["received_at"],
        depth=row.get("depth", 0),  # read by ``unrouted`` only
    )
