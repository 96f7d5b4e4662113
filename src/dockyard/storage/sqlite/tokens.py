"""The tokens port on SQLite: API tokens, looked up by the hash of their secret.

The secret itself is never stored. The statements are in ``sql/tokens.sql``.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from dockyard.domain.tokens import Token
from dockyard.storage.sqlite.database import ROWS, Database, load_queries

__all__ = ["SQLiteTokens"]

_SQL = load_queries("tokens.sql")


class SQLiteTokens:
    """API tokens, on the store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, token: Token, secret_hash: str) -> None:
        row = (token.id, token.name, token.role.value, secret_hash, token.created_at.timestamp())

        def insert(db: sqlite3.Connection) -> None:
            with self._database.write(db):
                db.execute(_SQL["insert"], row)

        await self._database.run(insert)

    async def find(self, secret_hash: str) -> Token | None:
        row = await self._database.run(
            lambda db: db.execute(_SQL["find"], (secret_hash,)).fetchone()
        )
        return None if row is None else ROWS.token(row)

    async def all(self) -> list[Token]:
        rows = await self._database.run(lambda db: db.execute(_SQL["all"]).fetchall())
        return [ROWS.token(row) for row in rows]

    async def revoke(self, token_id: str, now: datetime) -> Token | None:
        def revoke(db: sqlite3.Connection) -> sqlite3.Row | None:
            with self._database.write(db):
                db.execute(_SQL["revoke"], (now.timestamp(), token_id))
                row: sqlite3.Row | None = db.execute(_SQL["get"], (token_id,)).fetchone()
            return row

        row = await self._database.run(revoke)
        return None if row is None else ROWS.token(row)
