"""The queues port on PostgreSQL: which queues are paused, their jobs per state, the workers.

A pause is a row in ``queues`` that the claim reads (``sql/jobs.sql``); pausing sends NOTIFY so
that idle workers look again. Worker registrations live in ``workers``; the jobs a worker holds
are read from ``jobs`` in the same snapshot, so the two agree.
"""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from dockyard.domain.records import JobId
from dockyard.domain.states import ACTIVE_STATES
from dockyard.storage.ports import QueueInfo, WorkerInfo
from dockyard.storage.postgres.database import Conn, Database
from dockyard.storage.queries import Queries

__all__ = ["PostgresQueues", "touch_worker"]

_SQL = Queries.load("dockyard.storage.postgres", "queues.sql")
_REGISTER_WORKER = _SQL["register_worker"]
_TOUCH_WORKER = _SQL["touch_worker"]
_RUNNING_JOBS = _SQL["running_jobs"]
_WORKERS = _SQL["workers"]
_COUNTS = _SQL["counts"]
_PAUSED = _SQL["paused"]
_SET_PAUSED = _SQL["set_paused"]
_COUNTS_OF_QUEUE = _SQL["counts_of_queue"]

_ACTIVE = sorted(ACTIVE_STATES)


class PostgresQueues:
    """Queues in the ``queues`` table (only those ever paused have a row), workers in
    ``workers``."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def queues(self) -> list[QueueInfo]:
        async def select(conn: Conn) -> tuple[list[DictRow], list[DictRow]]:
            counts = await conn.execute(_COUNTS)
            paused = await conn.execute(_PAUSED)
            return await counts.fetchall(), await paused.fetchall()

        count_rows, paused_rows = await self._database.run(select, snapshot=True)
        counts: dict[str, dict[str, int]] = {}
        for row in count_rows:
            counts.setdefault(row["queue"], {})[row["state"]] = row["n"]
        paused = {row["name"]: row["paused"] for row in paused_rows}
        return [
            QueueInfo(name=name, paused=paused.get(name, False), counts=counts.get(name, {}))
            for name in sorted(counts.keys() | paused.keys())
        ]

    async def set_paused(self, name: str, paused: bool, now: datetime) -> QueueInfo:
        async def update(conn: Conn) -> QueueInfo:
            await conn.execute(_SET_PAUSED, {"name": name, "paused": paused, "now": now})
            await self._database.notify(conn)
            cursor = await conn.execute(_COUNTS_OF_QUEUE, {"name": name})
            counts = {row["state"]: row["n"] for row in await cursor.fetchall()}
            return QueueInfo(name=name, paused=paused, counts=counts)

        return await self._database.run(update)

    async def register_worker(self, worker: WorkerInfo) -> None:
        args = {
            "id": worker.id,
            "hostname": worker.hostname,
            "pid": worker.pid,
            "queues": None if worker.queues is None else Jsonb(list(worker.queues)),
            "concurrency": worker.concurrency,
            "started_at": worker.started_at,
            "heartbeat_at": worker.heartbeat_at,
            "stopped_at": worker.stopped_at,
        }

        async def register(conn: Conn) -> None:
            await conn.execute(_REGISTER_WORKER, args)

        await self._database.run(register)

    async def workers(self) -> list[WorkerInfo]:
        async def select(conn: Conn) -> tuple[list[DictRow], dict[str, list[JobId]]]:
            running: dict[str, list[JobId]] = {}
            cursor = await conn.execute(_RUNNING_JOBS, {"active": _ACTIVE})
            for row in await cursor.fetchall():
                running.setdefault(row["worker_id"], []).append(JobId(row["id"]))
            workers = await conn.execute(_WORKERS)
            return await workers.fetchall(), running

        rows, running = await self._database.run(select, snapshot=True)
        return [
            WorkerInfo(
                id=row["id"],
                hostname=row["hostname"],
                pid=row["pid"],
                queues=None if row["queues"] is None else tuple(row["queues"]),
                concurrency=row["concurrency"],
                started_at=row["started_at"],
                heartbeat_at=row["heartbeat_at"],
                stopped_at=row["stopped_at"],
                running=tuple(running.get(row["id"], ())),
            )
            for row in rows
        ]


async def touch_worker(conn: Conn, worker_id: str, now: datetime) -> None:
    """Record a worker's heartbeat in the caller's transaction (the jobs port's heartbeat)."""
    await conn.execute(_TOUCH_WORKER, {"id": worker_id, "now": now})
