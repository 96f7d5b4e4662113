"""The tokens port on PostgreSQL: API tokens in the ``tokens`` table, by the hash of their
secret."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from psycopg.rows import DictRow

from dockyard.domain.tokens import Token
from dockyard.storage.postgres.database import ROWS, Conn, Database
from dockyard.storage.queries import Queries

__all__ = ["PostgresTokens"]

_SQL = Queries.load("dockyard.storage.postgres", "tokens.sql")
_INSERT = _SQL["insert"]
_FIND = _SQL["find"]
_ALL = _SQL["all"]
_REVOKE = _SQL["revoke"]
_GET = _SQL["get"]
_TOUCH = _SQL["touch"]


def _token(row: DictRow) -> Token:
    return replace(ROWS.token(row), expires_at=row["expires_at"], last_used_at=row["last_used_at"])


class PostgresTokens:
    """Tokens, revoked ones included (a revoked token is refused, not unknown)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, token: Token, secret_hash: str) -> None:
        args = {
            "id": token.id,
            "name": token.name,
            "role": token.role.value,
            "hash": secret_hash,
            "created_at": token.created_at,
            "expires_at": token.expires_at,
        }

        async def insert(conn: Conn) -> None:
            await conn.execute(_INSERT, args)

        await self._database.run(insert)

    async def find(self, secret_hash: str) -> Token | None:
        row = await self._database.fetchone(_FIND, {"hash": secret_hash})
        return None if row is None else _token(row)

    async def all(self) -> list[Token]:
        return [_token(row) for row in await self._database.fetchall(_ALL)]

    async def revoke(self, token_id: str, now: datetime) -> Token | None:
        async def revoke(conn: Conn) -> DictRow | None:
            await conn.execute(_REVOKE, {"id": token_id, "now": now})
            return await (await conn.execute(_GET, {"id": token_id})).fetchone()

        row = await self._database.run(revoke)
        return None if row is None else _token(row)

    async def touch(self, token_id: str, now: datetime, stale_before: datetime) -> None:
        args = {"id": token_id, "now": now, "stale_before": stale_before}

        async def touch(conn: Conn) -> None:
            await conn.execute(_TOUCH, args)

        await self._database.run(touch)
