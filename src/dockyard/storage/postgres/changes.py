"""The change feed on PostgreSQL: waiters wake on this process's commits and on NOTIFY.

Every commit through :meth:`Database.run` bumps the in-process change signal. Writes that change
what other processes wait for send ``NOTIFY`` on this schema's channel; a listener task, started
by the first :meth:`PostgresChanges.wait`, turns each into a bump of the same signal. The
worker's polling interval is the fallback while the listener reconnects, so a lost notification
costs latency, never a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from dockyard.storage.postgres.database import Database

__all__ = ["PostgresChanges"]

log = logging.getLogger("dockyard.storage.postgres")


class PostgresChanges:
    """The change signal of one :class:`Database`, fed by its commits and by a listener."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._listener: asyncio.Task[None] | None = None

    def token(self) -> int:
        return self._database.signal.generation

    async def wait(self, token: int, timeout: float) -> None:
        if self._listener is None or self._listener.done():
            await self._database.open()  # names the channel
            self._listener = asyncio.create_task(self._listen(), name="dockyard-listen")
        await self._database.signal.wait(token, timeout)

    async def _listen(self) -> None:
        """Turn NOTIFYs on this schema's channel into change signals, reconnecting as needed."""
        signal = self._database.signal
        delay = 0.1
        while True:
            try:
                conn = await self._database.connect()
                async with conn:
                    # The channel is listen_channel()'s name: letters, digits and an underscore.
                    await conn.execute(f"LISTEN {self._database.channel}")
                    delay = 0.1
                    # Anything may have changed while no one listened.
                    signal.notify()
                    async for _ in conn.notifies():
                        signal.notify()
            except psycopg.Error as error:
                log.warning("PostgreSQL listener: %s", str(error).strip())
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def close(self) -> None:
        """Stop the listener (a later wait starts it again). Safe to call more than once."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
