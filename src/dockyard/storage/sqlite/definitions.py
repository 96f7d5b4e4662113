"""The definitions port on SQLite: revisions of definitions, stored as the user's document.

A revision is never changed but for its status; the statements are in ``sql/definitions.sql``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from dockyard.domain.definitions import definition_document
from dockyard.domain.records import Definition, DefinitionSpec
from dockyard.domain.states import DefinitionStatus
from dockyard.storage.sqlite.database import ROWS, Database, load_queries

__all__ = ["SQLiteDefinitions"]

_SQL = load_queries("definitions.sql")


class SQLiteDefinitions:
    """Revisions of definitions, on the store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, name: str, spec: DefinitionSpec, now: datetime) -> Definition:
        document = json.dumps(definition_document(name, spec))

        def insert(db: sqlite3.Connection) -> Definition:
            with self._database.write(db):
                row = db.execute(_SQL["insert"], (name, now.timestamp(), document, name)).fetchone()
            return ROWS.definition(row)

        return await self._database.run(insert)

    async def get(self, name: str, revision: int | None) -> Definition | None:
        args: tuple[Any, ...]
        if revision is None:
            sql, args = _SQL["latest_active"], (name,)
        else:
            sql, args = _SQL["revision"], (name, revision)
        row = await self._database.run(lambda db: db.execute(sql, args).fetchone())
        return None if row is None else ROWS.definition(row)

    async def revisions(self, name: str) -> list[Definition]:
        rows = await self._database.run(
            lambda db: db.execute(_SQL["revisions"], (name,)).fetchall()
        )
        return [ROWS.definition(row) for row in rows]

    async def latest(self) -> list[Definition]:
        rows = await self._database.run(lambda db: db.execute(_SQL["latest"]).fetchall())
        return [ROWS.definition(row) for row in rows]

    async def set_status(
        self, name: str, revision: int, status: DefinitionStatus
    ) -> Definition | None:
        def update(db: sqlite3.Connection) -> sqlite3.Row | None:
            with self._database.write(db):
                row: sqlite3.Row | None = db.execute(
                    _SQL["set_status"], (status.value, name, revision)
                ).fetchone()
            return row

        row = await self._database.run(update)
        return None if row is None else ROWS.definition(row)
