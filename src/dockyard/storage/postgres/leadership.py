"""The leadership port on PostgreSQL: one leader per role, as a session-level advisory lock.

Each process keeps one connection per role for this, outside the pool, whether it leads or not
(no connection churn from followers). When the leader's connection dies (the process crashed,
the network was cut, PostgreSQL restarted) the server releases the lock, after at most about
``DEAD_PEER_SECONDS`` for a silent peer, and another process takes it at its next try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from typing import Any

import psycopg
from psycopg import AsyncConnection

from dockyard.storage.postgres.database import Database
from dockyard.storage.queries import Queries

__all__ = ["LEADER_LOCK", "PostgresLeadership"]

log = logging.getLogger("dockyard.storage.postgres")

_SQL = Queries.load("dockyard.storage.postgres", "leadership.sql")
_TRY_LOCK = _SQL["try_lock"]
_PING = _SQL["ping"]

#: Advisory lock ``classid`` of leadership locks; the ``objid`` names the role and the schema.
LEADER_LOCK = 0x0D0C_1EAD


class PostgresLeadership:
    """The leaderships this process holds or tries, each on its own connection."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._leaders: dict[str, AsyncConnection[Any]] = {}
        self._leading: set[str] = set()
        #: One try per role at a time: two at once would each open a connection for the role.
        self._locks: dict[str, asyncio.Lock] = {}

    async def try_lead(self, role: str) -> bool:
        """Hold (or take) the session-level advisory lock of ``role`` in this schema."""
        async with self._locks.setdefault(role, asyncio.Lock()):
            return await self._try_lead(role)

    async def _try_lead(self, role: str) -> bool:
        await self._database.open()
        key = zlib.crc32(f"{self._database.schema_key}:{role}".encode()) - (1 << 31)
        conn = self._leaders.get(role)
        try:
            if conn is None or conn.closed:
                conn = self._leaders[role] = await self._database.connect()
            if role in self._leading:
                await conn.execute(_PING)
                return True
            cursor = await conn.execute(_TRY_LOCK, {"classid": LEADER_LOCK, "objid": key})
            row = await cursor.fetchone()
            if row is not None and row[0]:
                self._leading.add(role)
                return True
            return False
        except psycopg.Error as error:
            if role in self._leading:
                log.warning("lost the %s lock: %s", role, str(error).strip())
            self._leading.discard(role)
            conn = self._leaders.pop(role, None)
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    await conn.close()
            return False

    async def close(self) -> None:
        """Close the leadership connections, which releases every lock held. Safe to call more
        than once."""
        for conn in self._leaders.values():
            await conn.close()
        self._leaders.clear()
        self._leading.clear()
