"""The queues port on SQLite: which queues are paused, their jobs per state, and the workers.

The workers table belongs here: :func:`touch_worker` lets a heartbeat (the jobs port) record the
worker's liveness in the transaction that renews its leases. The statements are in
``sql/queues.sql``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from dockyard.domain.records import JobId
from dockyard.domain.states import ACTIVE_STATES
from dockyard.storage.ports import QueueInfo, WorkerInfo
from dockyard.storage.sqlite.database import Database, epoch, load_queries, moment

__all__ = ["SQLiteQueues", "touch_worker"]

_SQL = load_queries("queues.sql")
_ACTIVE = tuple(sorted(ACTIVE_STATES))


class SQLiteQueues:
    """Queues and workers, on the store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def queues(self) -> list[QueueInfo]:
        def select(db: sqlite3.Connection) -> list[QueueInfo]:
            counts: dict[str, dict[str, int]] = {}
            for name, state, count in db.execute(_SQL["job_counts"]):
                counts.setdefault(name, {})[state] = count
            paused = {row[0]: bool(row[1]) for row in db.execute(_SQL["paused"])}
            return [
                QueueInfo(name=name, paused=paused.get(name, False), counts=counts.get(name, {}))
                for name in sorted(counts.keys() | paused.keys())
            ]

        return await self._database.run(select)

    async def set_paused(self, name: str, paused: bool, now: datetime) -> QueueInfo:
        def update(db: sqlite3.Connection) -> QueueInfo:
            with self._database.write(db):
                db.execute(_SQL["set_paused"], (name, int(paused), now.timestamp()))
                counts = db.execute(_SQL["job_counts_of_queue"], (name,)).fetchall()
            return QueueInfo(name=name, paused=paused, counts={row[0]: row[1] for row in counts})

        return await self._database.run(update)

    async def register_worker(self, worker: WorkerInfo) -> None:
        def register(db: sqlite3.Connection) -> None:
            with self._database.write(db):
                db.execute(
                    _SQL["register_worker"],
                    (
                        worker.id,
                        worker.hostname,
                        worker.pid,
                        None if worker.queues is None else json.dumps(worker.queues),
                        worker.concurrency,
                        worker.started_at.timestamp(),
                        worker.heartbeat_at.timestamp(),
                        epoch(worker.stopped_at),
                    ),
                )

        await self._database.run(register)

    async def workers(self) -> list[WorkerInfo]:
        def select(db: sqlite3.Connection) -> tuple[list[sqlite3.Row], dict[str, list[JobId]]]:
            running: dict[str, list[JobId]] = {}
            for row in db.execute(_SQL["running_jobs"], _ACTIVE):
                running.setdefault(row[0], []).append(JobId(row[1]))
            return db.execute(_SQL["workers"]).fetchall(), running

        rows, running = await self._database.run(select)
        return [
            WorkerInfo(
                id=row["id"],
                hostname=row["hostname"],
                pid=row["pid"],
                queues=None if row["queues"] is None else tuple(json.loads(row["queues"])),
                concurrency=row["concurrency"],
                started_at=moment(row["started_at"]),  # type: ignore[arg-type]
                heartbeat_at=moment(row["heartbeat_at"]),  # type: ignore[arg-type]
                stopped_at=moment(row["stopped_at"]),
                running=tuple(running.get(row["id"], ())),
            )
            for row in rows
        ]


def touch_worker(db: sqlite3.Connection, worker_id: str, now: datetime) -> None:
    """Record the worker's heartbeat, in the caller's transaction."""
    db.execute(_SQL["touch_worker"], (now.timestamp(), worker_id))
