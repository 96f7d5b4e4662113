"""The audit port on SQLite: the trail of changes made through the facade.

Ids come from the table's rowid, so a later entry has a larger id in every process sharing the
file (writes are serialised). The statements are in ``sql/audit.sql``.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from dockyard.domain.tokens import AuditEntry, Role
from dockyard.storage.ports import AuditQuery
from dockyard.storage.sqlite.database import Database, load_queries

__all__ = ["SQLiteAudit"]

_SQL = load_queries("audit.sql")


def _entry(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=datetime.fromtimestamp(row["at"], UTC),
        token_id=row["token_id"],
        token_name=row["token_name"],
        role=Role(row["role"]),
        operation=row["operation"],
        target=row["target"],
    )


class SQLiteAudit:
    """The audit trail, on the store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def record(self, entry: AuditEntry) -> None:
        row = (
            entry.at.timestamp(),
            entry.token_id,
            entry.token_name,
            entry.role.value,
            entry.operation,
            entry.target,
        )

        def record(db: sqlite3.Connection) -> None:
            with self._database.write(db):
                db.execute(_SQL["record"], row)

        await self._database.run(record)

    async def entries(self, query: AuditQuery) -> list[AuditEntry]:
        sql, args = (
            (_SQL["newest"], [query.limit])
            if query.before is None
            else (_SQL["before"], [query.before, query.limit])
        )
        rows = await self._database.run(lambda db: db.execute(sql, args).fetchall())
        return [_entry(row) for row in rows]

    async def prune(self, before: datetime, limit: int) -> int:
        def prune(db: sqlite3.Connection) -> int:
            with self._database.write(db):
                return db.execute(_SQL["prune"], (before.timestamp(), limit)).rowcount

        return await self._database.run(prune)
