"""The PostgreSQL store: one :class:`Database` shared by one object per storage port."""

from __future__ import annotations

from dockyard.storage.ports import Capabilities
from dockyard.storage.postgres.audit import PostgresAudit
from dockyard.storage.postgres.changes import PostgresChanges
from dockyard.storage.postgres.database import Database
from dockyard.storage.postgres.definitions import PostgresDefinitions
from dockyard.storage.postgres.events import PostgresEvents
from dockyard.storage.postgres.jobs import PostgresJobs
from dockyard.storage.postgres.leadership import PostgresLeadership
from dockyard.storage.postgres.migrator import apply_migrations
from dockyard.storage.postgres.queues import PostgresQueues
from dockyard.storage.postgres.rules import PostgresRules
from dockyard.storage.postgres.schedules import PostgresSchedules
from dockyard.storage.postgres.tokens import PostgresTokens

__all__ = ["PostgresStorage"]


class PostgresStorage:
    """Dockyard's state in a PostgreSQL database (``search_path`` selects the schema).

    Nothing connects until the first verb; :meth:`close` releases the listener, the leadership
    connections (and so the leaderships) and the pool, and may be called more than once.
    """

    capabilities = Capabilities(multi_host=True, cross_process_notify=True)

    def __init__(self, conninfo: str) -> None:
        self._database = Database(conninfo)
        self.jobs = PostgresJobs(self._database)
        self.definitions = PostgresDefinitions(self._database)
        self.schedules = PostgresSchedules(self._database)
        self.events = PostgresEvents(self._database)
        self.rules = PostgresRules(self._database)
        self.tokens = PostgresTokens(self._database)
        self.audit = PostgresAudit(self._database)
        self.queues = PostgresQueues(self._database)
        self.leadership = PostgresLeadership(self._database)
        self.changes = PostgresChanges(self._database)

    async def migrate(self) -> list[str]:
        async def migrate() -> list[str]:
            conn = await self._database.connect()
            async with conn:
                return await apply_migrations(conn)

        return await self._database.retrying(migrate)

    async def close(self) -> None:
        await self.changes.close()
        await self.leadership.close()
        await self._database.close()
