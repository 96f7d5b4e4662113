"""The definitions port on PostgreSQL: immutable revisions, numbered per name.

A registration takes a transaction-scoped advisory lock on its name, so that registrations of
one name from several API servers get distinct, consecutive revisions.
"""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from dockyard.domain.definitions import definition_document
from dockyard.domain.records import Definition, DefinitionSpec
from dockyard.domain.states import DefinitionStatus
from dockyard.storage.postgres.database import ROWS, Conn, Database
from dockyard.storage.queries import Queries

__all__ = ["PostgresDefinitions"]

_SQL = Queries.load("dockyard.storage.postgres", "definitions.sql")
_LOCK_NAME = _SQL["lock_name"]
_INSERT = _SQL["insert"]
_LATEST_ACTIVE = _SQL["latest_active"]
_REVISION = _SQL["revision"]
_REVISIONS = _SQL["revisions"]
_LATEST = _SQL["latest"]
_SET_STATUS = _SQL["set_status"]


class PostgresDefinitions:
    """Definitions in the ``definitions`` table, one row per revision."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, name: str, spec: DefinitionSpec, now: datetime) -> Definition:
        document = Jsonb(definition_document(name, spec))

        async def insert(conn: Conn) -> Definition:
            await conn.execute(_LOCK_NAME, {"key": f"def:{name}"})
            cursor = await conn.execute(_INSERT, {"name": name, "now": now, "document": document})
            row = await cursor.fetchone()
            assert row is not None
            return ROWS.definition(row)

        return await self._database.run(insert)

    async def get(self, name: str, revision: int | None) -> Definition | None:
        if revision is None:
            row = await self._database.fetchone(_LATEST_ACTIVE, {"name": name})
        else:
            row = await self._database.fetchone(_REVISION, {"name": name, "revision": revision})
        return None if row is None else ROWS.definition(row)

    async def revisions(self, name: str) -> list[Definition]:
        rows = await self._database.fetchall(_REVISIONS, {"name": name})
        return [ROWS.definition(row) for row in rows]

    async def latest(self) -> list[Definition]:
        return [ROWS.definition(row) for row in await self._database.fetchall(_LATEST)]

    async def set_status(
        self, name: str, revision: int, status: DefinitionStatus
    ) -> Definition | None:
        args = {"status": status.value, "name": name, "revision": revision}

        async def update(conn: Conn) -> DictRow | None:
            return await (await conn.execute(_SET_STATUS, args)).fetchone()

        row = await self._database.run(update)
        return None if row is None else ROWS.definition(row)
