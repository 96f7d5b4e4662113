"""The tokens port on SQLite: API tokens, looked up by the hash of their secret.

The secret itself is never stored. The statements are in ``sql/tokens.sql``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime

from dockyard.domain.tokens import Token
from dockyard.storage.sqlite.database import ROWS, Database, epoch, load_queries, moment

__all__ = ["SQLiteTokens"]

_SQL = load_queries("tokens.sql")


def _token(row: sqlite3.Row) -> Token:
    return replace(
        ROWS.token(row),
        expires_at=moment(row["expires_at"]),
        last_used_at=moment(row["last_used_at"]),
    )


class SQLiteTokens:
    """API tokens, on the store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, token: Token, secret_hash: str) -> None:
        row = (
            token.id,
            token.name,
            token.role.value,
            secret_hash,
            token.created_at.timestamp(),
            epoch(token.expires_at),
        )

        def insert(db: sqlite3.Connection) -> None:
            with self._database.write(db):
                db.execute(_SQL["insert"], row)

        await self._database.run(insert)

    async def find(self, secret_hash: str) -> Token | None:
        row = await self._database.run(
            lambda db: db.execute(_SQL["find"], (secret_hash,)).fetchone()
        )
        return None if row is None else _token(row)

    async def all(self) -> list[Token]:
        rows = await self._database.run(lambda db: db.execute(_SQL["all"]).fetchall())
        return [_token(row) for row in rows]

    async def revoke(self, token_id: str, now: datetime) -> Token | None:
        def revoke(db: sqlite3.Connection) -> sqlite3.Row | None:
            with self._database.write(db):
                db.execute(_SQL["revoke"], (now.timestamp(), token_id))
                row: sqlite3.Row | None = db.execute(_SQL["get"], (token_id,)).fetchone()
            return row

        row = await self._database.run(revoke)
        return None if row is None else _token(row)

    async def touch(self, token_id: str, now: datetime, stale_before: datetime) -> None:
        def touch(db: sqlite3.Connection) -> None:
            with self._database.write(db):
                db.execute(_SQL["touch"], (now.timestamp(), token_id, stale_before.timestamp()))

        await self._database.run(touch)
