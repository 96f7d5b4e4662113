"""The change feed on SQLite: waiters wake on this process's commits at once, and on other
processes' commits within :data:`POLL_INTERVAL`.

This process's commits bump an in-process signal (:meth:`Database.write`); other processes' are
seen through ``PRAGMA data_version`` (:meth:`Database.committed_elsewhere`), which reads a counter
in shared memory and costs no disk read, so an idle worker wakes within one poll interval of a
submit made elsewhere.
"""

from __future__ import annotations

import asyncio

from dockyard.storage.sqlite.database import Database

__all__ = ["POLL_INTERVAL", "SQLiteChanges"]

#: How often an idle waiter looks for commits made by other processes.
POLL_INTERVAL = 0.02


class SQLiteChanges:
    """Wake-ups for this store's waiters."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def token(self) -> int:
        return self._database.signal.generation

    async def wait(self, token: int, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            if await self._database.signal.wait(token, min(remaining, POLL_INTERVAL)):
                return
            if await self._database.run(self._database.committed_elsewhere):
                return
