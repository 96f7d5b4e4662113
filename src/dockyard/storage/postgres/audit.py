"""The audit port on PostgreSQL: the trail of changes made through the facade.

Ids come from an identity column: a later entry has a larger id, except that two processes
recording at the same moment may commit in the other order (the trail is for reading, not for
exactly-ordered replay).
"""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import DictRow

from dockyard.domain.tokens import AuditEntry, Role
from dockyard.storage.ports import AuditQuery
from dockyard.storage.postgres.database import Conn, Database
from dockyard.storage.queries import Queries

__all__ = ["PostgresAudit"]

_SQL = Queries.load("dockyard.storage.postgres", "audit.sql")
_RECORD = _SQL["record"]
_NEWEST = _SQL["newest"]
_BEFORE = _SQL["before"]
_PRUNE = _SQL["prune"]


def _entry(row: DictRow) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=row["at"],
        token_id=row["token_id"],
        token_name=row["token_name"],
        role=Role(row["role"]),
        operation=row["operation"],
        target=row["target"],
    )


class PostgresAudit:
    """The audit trail in the ``audit`` table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def record(self, entry: AuditEntry) -> None:
        args = {
            "at": entry.at,
            "token_id": entry.token_id,
            "token_name": entry.token_name,
            "role": entry.role.value,
            "operation": entry.operation,
            "target": entry.target,
        }

        async def record(conn: Conn) -> None:
            await conn.execute(_RECORD, args)

        await self._database.run(record)

    async def entries(self, query: AuditQuery) -> list[AuditEntry]:
        if query.before is None:
            rows = await self._database.fetchall(_NEWEST, {"limit": query.limit})
        else:
            rows = await self._database.fetchall(
                _BEFORE, {"before": query.before, "limit": query.limit}
            )
        return [_entry(row) for row in rows]

    async def prune(self, before: datetime, limit: int) -> int:
        async def prune(conn: Conn) -> int:
            return (await conn.execute(_PRUNE, {"before": before, "limit": limit})).rowcount

        return await self._database.run(prune)
