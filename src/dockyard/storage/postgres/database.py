"""The plumbing every PostgreSQL port shares: one pool, its sessions, retries and wake-ups.

Each port module (``jobs.py``, ``schedules.py``…) receives the one :class:`Database` of its
store and runs its verbs through :meth:`Database.run`, so that every verb gets the same
guarantees:

- **Reconnects.** A connection failure (a restart, a failover, a network cut) is retried with
  backoff for up to :data:`RECONNECT_SECONDS`, so workers and API servers ride out a PostgreSQL
  restart. A write whose commit was acknowledged to nobody may be retried; every write is either
  idempotent (inserts by job id) or guarded by the state it expects, so a retry changes nothing
  twice.
- **Dead peers.** Keepalives on both ends give up on a silent peer after about
  :data:`DEAD_PEER_SECONDS`, instead of the kernel's 15 minutes (client) or 2 hours (server).
- **Wake-ups.** Every committed write bumps the in-process change signal; writes that change
  what other processes wait for also send ``NOTIFY`` (:meth:`Database.notify`) on the channel of
  this schema (:func:`listen_channel`), which the change feed listens to.
- **No password in a message.** Errors and log lines name the store by its redacted URL, and
  the password is masked in whatever text the driver gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.abc import Params
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from dockyard.errors import StorageError
from dockyard.settings import redacted_url
from dockyard.storage.queries import Queries
from dockyard.storage.rows import RowReader
from dockyard.storage.signal import ChangeSignal

__all__ = [
    "DEAD_PEER_SECONDS",
    "RECONNECT_SECONDS",
    "ROWS",
    "Conn",
    "Database",
    "listen_channel",
    "with_search_path",
]

log = logging.getLogger("dockyard.storage.postgres")

T = TypeVar("T")
Conn = AsyncConnection[DictRow]

#: How long a verb keeps retrying a lost connection before it gives up with a StorageError.
RECONNECT_SECONDS = 60.0
POOL_MAX_SIZE = 8

#: A peer that stops answering (a host cut off the network, a frozen process) is given up after
#: about this long, on both ends: the client's calls fail (and are retried) instead of hanging
#: for the kernel's 15 minutes, and the server ends the session and releases its locks.
DEAD_PEER_SECONDS = 10
_CLIENT_DEAD_PEER: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": DEAD_PEER_SECONDS // 2,
    "keepalives_interval": 1,
    "keepalives_count": DEAD_PEER_SECONDS // 2,
    "tcp_user_timeout": DEAD_PEER_SECONDS * 1000,
}
_SERVER_DEAD_PEER = {
    "idle": str(DEAD_PEER_SECONDS // 2),
    "count": str(DEAD_PEER_SECONDS // 2),
    "user_timeout": str(DEAD_PEER_SECONDS * 1000),
}

_SQL = Queries.load("dockyard.storage.postgres", "database.sql")
_CONFIGURE_SESSION = _SQL["configure_session"]
_CURRENT_SCHEMA = _SQL["current_schema"]
_SNAPSHOT = _SQL["snapshot"]
_NOTIFY = _SQL["notify"]

#: Rows to records: psycopg already returns times as datetimes and JSON as Python values.
ROWS = RowReader(time=lambda value: value, json=lambda value: value)


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``schema`` first on its search_path (libpq's ``options`` parameter)."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def listen_channel(schema: str) -> str:
    """The NOTIFY channel of the Dockyard in ``schema`` (so that schemas never wake each other)."""
    return f"dockyard_{zlib.crc32(schema.encode()):08x}"


def _retryable(error: BaseException) -> bool:
    """Errors a retry can cure: a lost or refused connection, a deadlock, a serialisation race."""
    return isinstance(error, psycopg.OperationalError) and not isinstance(
        error, psycopg.errors.QueryCanceled
    )


class Database:
    """The connection pool of one store, and how its ports run statements on it.

    The pool opens on first use, after one connection has found the schema (whose name keys the
    NOTIFY channel and the leadership locks).
    """

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        try:
            given = conninfo_to_dict(conninfo)
        except psycopg.Error as error:
            raise StorageError(f"{redacted_url(conninfo)}: {error}") from None
        self._password = str(given.get("password") or "")
        # What the URL says wins; the dead-peer defaults fill in what it leaves out.
        self._dsn = make_conninfo(**{**_CLIENT_DEAD_PEER, **given})
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._opening = asyncio.Lock()
        #: Bumped after every committed write; the change feed's waiters sleep on it.
        self.signal = ChangeSignal()
        #: This schema's NOTIFY channel and lock key, known once the pool is open.
        self.channel = ""
        self.schema_key = 0
        #: Set by the first verb that succeeds; from then on a lost connection is retried.
        self._reached = False

    async def _configure(self, conn: AsyncConnection[Any]) -> None:
        await conn.execute(_CONFIGURE_SESSION, _SERVER_DEAD_PEER)

    async def connect(self, **kwargs: Any) -> AsyncConnection[Any]:
        """A new autocommit connection of the caller's own (not pooled), configured like the
        pool's; one cancelled halfway (a shutdown) is closed, not left for the garbage
        collector."""
        opening = asyncio.ensure_future(self._open_connection(**kwargs))
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await (await opening).close()
            raise

    async def _open_connection(self, **kwargs: Any) -> AsyncConnection[Any]:
        conn = await AsyncConnection.connect(self._dsn, autocommit=True, **kwargs)
        try:
            await self._configure(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def open(self) -> AsyncConnectionPool[Conn]:
        """The pool, opened (and :attr:`channel` and :attr:`schema_key` set) on first use."""
        if self._pool is None:
            # Two first calls at once would each make a pool: the second waits for the first.
            async with self._opening:
                return await self._open_pool()
        return self._pool

    async def _open_pool(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            conn = await self.connect()
            async with conn:
                row = await (await conn.execute(_CURRENT_SCHEMA)).fetchone()
            if row is None or row[0] is None:
                raise StorageError(f"{redacted_url(self.conninfo)}: no schema on the search_path")
            self.channel = listen_channel(row[0])
            self.schema_key = zlib.crc32(row[0].encode())
            pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
                self._dsn,
                min_size=1,
                max_size=POOL_MAX_SIZE,
                kwargs={"autocommit": True, "row_factory": dict_row},
                configure=self._configure,
                open=False,
                name="dockyard",
            )
            await pool.open(wait=False)
            self._pool = pool
        return self._pool

    async def run(
        self, fn: Callable[[Conn], Awaitable[T]], *, write: bool = True, snapshot: bool = False
    ) -> T:
        """Run ``fn`` on a pooled connection, retrying lost connections.

        A write runs in one transaction, and its commit wakes this process's waiters. A read of
        several statements asks for a ``snapshot``: one REPEATABLE READ transaction, so a job and
        its attempts are read as of one moment.
        """

        async def once() -> T:
            pool = await self.open()
            async with pool.connection() as conn:
                if snapshot:
                    async with conn.transaction():
                        await conn.execute(_SNAPSHOT)
                        return await fn(conn)
                if not write:
                    return await fn(conn)
                async with conn.transaction():
                    result = await fn(conn)
            # After the commit, never before: a waiter woken early would find nothing new.
            self.signal.notify()
            return result

        return await self.retrying(once)

    async def retrying(self, once: Callable[[], Awaitable[T]]) -> T:
        """``once()``, again with backoff after a lost connection, for up to RECONNECT_SECONDS."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECONNECT_SECONDS
        delay = 0.05
        while True:
            try:
                result = await once()
                self._reached = True
                return result
            except psycopg.Error as error:
                # Before the store was ever reached, a failure is a wrong URL, a missing database
                # or a server that is not there: said at once, not waited out.
                give_up = not self._reached or loop.time() + delay > deadline
                if give_up or not _retryable(error):
                    raise StorageError(f"PostgreSQL: {self._masked(error)}") from error
                log.warning("PostgreSQL: %s; retrying in %.2fs", self._masked(error), delay)
                if self._pool is not None:
                    # What broke this connection (a restart, terminated backends) broke the idle
                    # ones too: drop them now, or each retry would meet the next dead one.
                    await self._pool.check()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _masked(self, error: BaseException) -> str:
        """The driver's message, with the password masked should it ever quote it."""
        text = str(error).strip()
        return text.replace(self._password, "***") if self._password else text

    async def notify(self, conn: Conn) -> None:
        """Wake other processes' waiters when this transaction commits."""
        await conn.execute(_NOTIFY, {"channel": self.channel})

    async def fetchone(self, sql: str, args: Params | None = None) -> DictRow | None:
        """One row of a single-statement read (no transaction, no wake-up)."""

        async def fetch(conn: Conn) -> DictRow | None:
            return await (await conn.execute(sql, args)).fetchone()

        return await self.run(fetch, write=False)

    async def fetchall(self, sql: str, args: Params | None = None) -> list[DictRow]:
        """Every row of a single-statement read (no transaction, no wake-up)."""

        async def fetch(conn: Conn) -> list[DictRow]:
            return await (await conn.execute(sql, args)).fetchall()

        return await self.run(fetch, write=False)

    async def close(self) -> None:
        """Close the pool (it reopens on next use). Safe to call more than once."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
