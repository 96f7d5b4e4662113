"""The embedded store: one SQLite file in WAL mode, safe for several processes on one host.

:class:`SQLiteStorage` composes one module per storage port (``jobs.py``, ``definitions.py``…),
each with its SQL in ``sql/<port>.sql``, over one shared :class:`Database`: one connection per
process used from one thread, each verb one short transaction, writes under ``BEGIN IMMEDIATE``
so that SQLite's single writer serialises claims from every process.
"""

from __future__ import annotations

from pathlib import Path

from dockyard.storage.ports import Capabilities
from dockyard.storage.sqlite.audit import SQLiteAudit
from dockyard.storage.sqlite.changes import SQLiteChanges
from dockyard.storage.sqlite.database import Database
from dockyard.storage.sqlite.definitions import SQLiteDefinitions
from dockyard.storage.sqlite.events import SQLiteEvents
from dockyard.storage.sqlite.jobs import SQLiteJobs
from dockyard.storage.sqlite.leadership import SQLiteLeadership
from dockyard.storage.sqlite.migrator import apply_migrations
from dockyard.storage.sqlite.queues import SQLiteQueues
from dockyard.storage.sqlite.rules import SQLiteRules
from dockyard.storage.sqlite.schedules import SQLiteSchedules
from dockyard.storage.sqlite.tokens import SQLiteTokens

__all__ = ["SQLiteStorage"]


class SQLiteStorage:
    """The store in the SQLite file at ``path`` (created, with its folder, on first use)."""

    capabilities = Capabilities(multi_host=False, cross_process_notify=False)

    def __init__(self, path: Path) -> None:
        self.path = path
        #: The one connection every port shares; ``database.run`` reaches it (tests do too).
        self.database = Database(path)
        self.jobs = SQLiteJobs(self.database)
        self.definitions = SQLiteDefinitions(self.database)
        self.schedules = SQLiteSchedules(self.database)
        self.events = SQLiteEvents(self.database)
        self.rules = SQLiteRules(self.database)
        self.tokens = SQLiteTokens(self.database)
        self.audit = SQLiteAudit(self.database)
        self.queues = SQLiteQueues(self.database)
        self.leadership = SQLiteLeadership(path)
        self.changes = SQLiteChanges(self.database)

    async def migrate(self) -> list[str]:
        return await self.database.run(apply_migrations)

    async def close(self) -> None:
        """Close the connection, then give up the leaderships; safe to call more than once."""
        await self.database.close()
        self.leadership.release()
