"""SQLite implementation of the storage port.

One connection per process, used from one thread (SQLite allows one writer at a time anyway), so
each verb is one short transaction run off the event loop. Writes take the lock up front with
``BEGIN IMMEDIATE`` and wait behind other processes with a busy timeout instead of failing. Claims
are one ``UPDATE … WHERE seq IN (SELECT … LIMIT n) RETURNING`` under that lock, so two workers can
never claim the same job. Other processes' commits are noticed through ``PRAGMA data_version``,
which costs no disk read, so an idle worker wakes within one poll interval of a submit.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from dockyard.domain.definitions import definition_document
from dockyard.domain.events import Event
from dockyard.domain.records import Attempt, Definition, DefinitionSpec, Job, JobId, NewJob
from dockyard.domain.rules import Invocation, InvocationState, Rule
from dockyard.domain.rules import spec_document as rule_spec_document
from dockyard.domain.scheduling import Schedule, spec_document
from dockyard.domain.states import ACTIVE_STATES, TERMINAL_STATES, DefinitionStatus, JobState
from dockyard.domain.tokens import Token
from dockyard.domain.transitions import CLAIM, Transition
from dockyard.errors import StorageError
from dockyard.storage.port import (
    Capabilities,
    ClaimRequest,
    Fire,
    FireResult,
    Heartbeat,
    InsertedJob,
    InvocationUpdate,
    JobQuery,
    NewInvocation,
    QueueInfo,
    StoredEvent,
    WorkerInfo,
)
from dockyard.storage.rows import RowReader, new_job_columns, new_job_record
from dockyard.storage.signal import ChangeSignal
from dockyard.storage.sql import UPDATABLE_COLUMNS, list_jobs_sql
from dockyard.storage.sqlite.migrator import apply_migrations

__all__ = ["SQLiteStorage"]

T = TypeVar("T")

#: How often an idle waiter looks for commits made by other processes.
POLL_INTERVAL = 0.02
BUSY_TIMEOUT_MS = 30_000

_TIME_COLUMNS = frozenset(
    {"created_at", "not_before", "started_at", "stopped_at", "lease_expires_at"}
)
_JSON_COLUMNS = frozenset({"payload", "result"})
_ACTIVE = tuple(sorted(ACTIVE_STATES))
#: In the order of jobs_open_groups' WHERE clause (migration 0001), which queries must repeat.
_TERMINAL_ORDER = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
assert frozenset(_TERMINAL_ORDER) == TERMINAL_STATES
_TERMINAL_SQL = ", ".join(f"'{state.value}'" for state in _TERMINAL_ORDER)
#: A job ``j`` may run only when no earlier job of its group is unfinished (SQS FIFO groups).
#: The subquery must read jobs_open_groups, which holds only unfinished grouped jobs; else it walks
#: every earlier row by seq, finished ones too, for each grouped candidate of every claim. SQLite
#: takes a partial index only when the query repeats its WHERE terms exactly: the same IN list in
#: the same order as migration 0001 (INDEXED BY turns a mismatch into an error, not a slow scan).
_GROUP_HEAD = (
    "(j.group_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs g INDEXED BY jobs_open_groups"
    " WHERE g.group_key = j.group_key AND g.seq < j.seq"
    f" AND g.state NOT IN ({_TERMINAL_SQL})))"
)
_NOT_PAUSED = "j.queue NOT IN (SELECT name FROM queues WHERE paused = 1)"


def _ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _dt(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


class SQLiteStorage:
    """The embedded store: a single SQLite file, safe for several processes on one host."""

    capabilities = Capabilities(multi_host=False, cross_process_notify=False)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="dockyard-sqlite")
        self._db: sqlite3.Connection | None = None
        self._signal = ChangeSignal()
        self._data_version = 0
        self._lock = threading.Lock()
        self._leads: dict[str, int] = {}

    # -- plumbing -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            except (OSError, sqlite3.Error) as error:
                raise StorageError(f"cannot open {self.path}: {error}") from error
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a crashed process loses nothing; a power cut may lose the last
            # commits but never corrupts the file.
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            self._db = db
        return self._db

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: fn(self._connect()))

    @contextmanager
    def _write(self, db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self._signal.notify()

    async def migrate(self) -> list[str]:
        return await self._run(apply_migrations)

    async def close(self) -> None:
        def close(db: sqlite3.Connection) -> None:
            db.close()
            self._db = None

        if self._db is not None:
            await self._run(close)
        self._thread.shutdown(wait=True)
        for fd in self._leads.values():
            os.close(fd)  # releases the flock
        self._leads.clear()

    # -- definitions ----------------------------------------------------------------------------

    async def insert_definition(self, name: str, spec: DefinitionSpec, now: datetime) -> Definition:
        document = json.dumps(definition_document(name, spec))

        def insert(db: sqlite3.Connection) -> Definition:
            with self._write(db):
                row = db.execute(
                    "INSERT INTO definitions (name, revision, status, created_at, document)"
                    " SELECT ?, COALESCE(MAX(revision), 0) + 1, 'ACTIVE', ?, ?"
                    " FROM definitions WHERE name = ? RETURNING *",
                    (name, now.timestamp(), document, name),
                ).fetchone()
            return _definition(row)

        return await self._run(insert)

    async def get_definition(self, name: str, revision: int | None) -> Definition | None:
        if revision is None:
            sql = (
                "SELECT * FROM definitions WHERE name = ? AND status = 'ACTIVE'"
                " ORDER BY revision DESC LIMIT 1"
            )
            args: tuple[Any, ...] = (name,)
        else:
            sql, args = (
                "SELECT * FROM definitions WHERE name = ? AND revision = ?",
                (name, revision),
            )
        row = await self._run(lambda db: db.execute(sql, args).fetchone())
        return None if row is None else _definition(row)

    async def list_definitions(self, name: str | None = None) -> list[Definition]:
        if name is None:
            sql = (
                "SELECT d.* FROM definitions d JOIN (SELECT name, MAX(revision) AS revision"
                " FROM definitions GROUP BY name) latest USING (name, revision) ORDER BY d.name"
            )
            args: tuple[Any, ...] = ()
        else:
            sql, args = "SELECT * FROM definitions WHERE name = ? ORDER BY revision", (name,)
        rows = await self._run(lambda db: db.execute(sql, args).fetchall())
        return [_definition(row) for row in rows]

    async def set_definition_status(
        self, name: str, revision: int, status: DefinitionStatus
    ) -> Definition | None:
        def update(db: sqlite3.Connection) -> sqlite3.Row | None:
            with self._write(db):
                row: sqlite3.Row | None = db.execute(
                    "UPDATE definitions SET status = ? WHERE name = ? AND revision = ? RETURNING *",
                    (status.value, name, revision),
                ).fetchone()
            return row

        row = await self._run(update)
        return None if row is None else _definition(row)

    # -- jobs -----------------------------------------------------------------------------------

    async def insert_jobs(self, jobs: Sequence[NewJob]) -> list[InsertedJob]:
        def insert(db: sqlite3.Connection) -> list[InsertedJob]:
            with self._write(db):
                return _insert_jobs(db, jobs)

        return await self._run(insert)

    async def get_job(self, job_id: JobId) -> Job | None:
        def get(db: sqlite3.Connection) -> Job | None:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            attempts = db.execute(
                "SELECT * FROM attempts WHERE job_id = ? ORDER BY number", (job_id,)
            ).fetchall()
            return _job(row, tuple(_attempt(a) for a in attempts))

        return await self._run(get)

    async def list_jobs(self, query: JobQuery) -> list[Job]:
        sql, args = list_jobs_sql(
            query,
            mark="?",
            one_of=lambda column, values: (
                f"{column} IN ({_placeholders(len(values))})",
                list(values),
            ),
        )

        def select(db: sqlite3.Connection) -> list[Job]:
            rows = db.execute(sql, args).fetchall()
            attempts: dict[str, list[Attempt]] = {row["id"]: [] for row in rows}
            if rows:
                for row in db.execute(
                    f"SELECT * FROM attempts WHERE job_id IN ({_placeholders(len(rows))})"
                    " ORDER BY job_id, number",
                    list(attempts),
                ):
                    attempts[row["job_id"]].append(_attempt(row))
            return [_job(row, tuple(attempts[row["id"]])) for row in rows]

        return await self._run(select)

    # -- the hot path ---------------------------------------------------------------------------

    async def claim(self, request: ClaimRequest) -> list[Job]:
        def claim(db: sqlite3.Connection) -> list[Job]:
            with self._write(db):
                return _claim(db, request)

        return await self._run(claim)

    async def apply(self, transitions: Sequence[Transition]) -> list[bool]:
        def apply(db: sqlite3.Connection) -> list[bool]:
            with self._write(db):
                return [_apply_one(db, transition) for transition in transitions]

        return await self._run(apply)

    async def apply_and_claim(
        self, transitions: Sequence[Transition], request: ClaimRequest
    ) -> tuple[list[bool], list[Job]]:
        def apply_and_claim(db: sqlite3.Connection) -> tuple[list[bool], list[Job]]:
            with self._write(db):
                applied = [_apply_one(db, transition) for transition in transitions]
                return applied, _claim(db, request)

        return await self._run(apply_and_claim)

    async def heartbeat(self, beat: Heartbeat) -> frozenset[JobId]:
        ids = list(beat.job_ids)
        marks = _placeholders(len(ids))

        def renew(db: sqlite3.Connection) -> frozenset[JobId]:
            if beat.lease_until is not None:
                with self._write(db):
                    db.execute(
                        f"UPDATE jobs SET lease_expires_at = ? WHERE id IN ({marks})"
                        " AND worker_id = ? AND state IN (?, ?)",
                        (beat.lease_until.timestamp(), *ids, beat.worker_id, *_ACTIVE),
                    )
                    db.execute(
                        "UPDATE workers SET heartbeat_at = ? WHERE id = ?",
                        (beat.now.timestamp(), beat.worker_id),
                    )
            if not ids:
                return frozenset()
            held = db.execute(
                f"SELECT id FROM jobs WHERE id IN ({marks}) AND worker_id = ? AND state IN (?, ?)",
                (*ids, beat.worker_id, *_ACTIVE),
            ).fetchall()
            return frozenset(ids) - {row[0] for row in held}

        return await self._run(renew)

    async def expired_leases(self, now: datetime, limit: int) -> list[Job]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT * FROM jobs WHERE state IN (?, ?) AND lease_expires_at < ? LIMIT ?",
                (*_ACTIVE, now.timestamp(), limit),
            ).fetchall()
        )
        return [_job(row) for row in rows]

    async def next_runnable_at(self, queues: tuple[str, ...] | None) -> datetime | None:
        # Only jobs a claim could take: a job behind an unfinished job of its group is not due,
        # however old its not_before (else an idle worker would wake at once, again and again).
        # Walking jobs_runnable_due stops at the first such job instead of reading every one.
        sql = (
            "SELECT j.not_before FROM jobs j INDEXED BY jobs_runnable_due"
            f" WHERE j.state = 'RUNNABLE' AND {_GROUP_HEAD} AND {_NOT_PAUSED}"
        )
        args: list[Any] = []
        if queues is not None:
            sql += f" AND j.queue IN ({_placeholders(len(queues))})"
            args.extend(queues)
        sql += " ORDER BY j.not_before LIMIT 1"
        row = await self._run(lambda db: db.execute(sql, args).fetchone())
        return None if row is None else _dt(row[0])

    # -- schedules ------------------------------------------------------------------------------

    async def insert_schedule(self, schedule: Schedule) -> bool:
        def insert(db: sqlite3.Connection) -> bool:
            with self._write(db):
                cursor = db.execute(
                    "INSERT INTO schedules (name, spec, enabled, next_fire_at, created_at,"
                    f" updated_at) VALUES ({_placeholders(6)}) ON CONFLICT (name) DO NOTHING",
                    _schedule_row(schedule),
                )
                return cursor.rowcount == 1

        return await self._run(insert)

    async def get_schedule(self, name: str) -> Schedule | None:
        row = await self._run(
            lambda db: db.execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchone()
        )
        return None if row is None else _rows.schedule(row)

    async def list_schedules(self) -> list[Schedule]:
        rows = await self._run(
            lambda db: db.execute("SELECT * FROM schedules ORDER BY name").fetchall()
        )
        return [_rows.schedule(row) for row in rows]

    async def replace_schedule(self, schedule: Schedule, expected_next: datetime | None) -> bool:
        name, spec, enabled, next_fire_at, _, updated_at = _schedule_row(schedule)

        def replace(db: sqlite3.Connection) -> bool:
            with self._write(db):
                cursor = db.execute(
                    "UPDATE schedules SET spec = ?, enabled = ?, next_fire_at = ?,"
                    " updated_at = ?, last_error = ? WHERE name = ? AND next_fire_at IS ?",
                    (
                        spec,
                        enabled,
                        next_fire_at,
                        updated_at,
                        schedule.last_error,
                        name,
                        _epoch(expected_next),
                    ),
                )
                return cursor.rowcount == 1

        return await self._run(replace)

    async def delete_schedule(self, name: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            with self._write(db):
                return db.execute("DELETE FROM schedules WHERE name = ?", (name,)).rowcount == 1

        return await self._run(delete)

    async def due_schedules(self, now: datetime, limit: int) -> list[Schedule]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT * FROM schedules INDEXED BY schedules_due WHERE enabled"
                " AND next_fire_at IS NOT NULL AND next_fire_at <= ?"
                " ORDER BY next_fire_at LIMIT ?",
                (now.timestamp(), limit),
            ).fetchall()
        )
        return [_rows.schedule(row) for row in rows]

    async def next_fire_at(self) -> datetime | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT min(next_fire_at) FROM schedules WHERE enabled AND next_fire_at IS NOT NULL"
            ).fetchone()
        )
        return None if row is None or row[0] is None else _dt(row[0])

    async def record_fires(self, fires: Sequence[Fire]) -> list[FireResult]:
        def record(db: sqlite3.Connection) -> list[FireResult]:
            results = []
            with self._write(db):
                for fire in fires:
                    moved = db.execute(
                        "UPDATE schedules SET next_fire_at = ?,"
                        " last_fire_at = COALESCE(?, last_fire_at), fires = fires + ?,"
                        " last_error = ?, updated_at = ? WHERE name = ? AND next_fire_at = ?",
                        (
                            _epoch(fire.next_fire_at),
                            _epoch(fire.fired_at),
                            len(fire.jobs),
                            fire.error,
                            fire.now.timestamp(),
                            fire.schedule,
                            fire.expected_next.timestamp(),
                        ),
                    )
                    if moved.rowcount != 1:
                        results.append(FireResult(applied=False))
                        continue
                    inserted = _insert_jobs(db, fire.jobs) if fire.jobs else []
                    if inserted:
                        db.execute(
                            "UPDATE schedules SET last_job_id = ? WHERE name = ?",
                            (inserted[-1].job.id, fire.schedule),
                        )
                    _insert_events(db, fire.events, fire.now)
                    if fire.delete:
                        db.execute("DELETE FROM schedules WHERE name = ?", (fire.schedule,))
                    results.append(FireResult(applied=True, jobs=tuple(inserted)))
            return results

        return await self._run(record)

    # -- events and rules -----------------------------------------------------------------------

    async def insert_events(self, events: Sequence[Event], now: datetime) -> int:
        def insert(db: sqlite3.Connection) -> int:
            with self._write(db):
                return _insert_events(db, events, now)

        return await self._run(insert)

    async def list_events(self, limit: int, source: str | None = None) -> list[StoredEvent]:
        sql = "SELECT seq, body, received_at FROM events"
        args: tuple[Any, ...] = ()
        if source is not None:
            sql, args = sql + " WHERE source = ?", (source,)
        rows = await self._run(
            lambda db: db.execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, limit)).fetchall()
        )
        return [_stored_event(row) for row in rows]

    async def unrouted_events(self, limit: int) -> list[StoredEvent]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT seq, body, received_at FROM events INDEXED BY events_unrouted"
                " WHERE NOT routed ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [_stored_event(row) for row in rows]

    async def route_events(
        self, seqs: Sequence[int], invocations: Sequence[NewInvocation], now: datetime
    ) -> int:
        def route(db: sqlite3.Connection) -> int:
            with self._write(db):
                recorded = 0
                for item in invocations:
                    recorded += db.execute(
                        "INSERT INTO invocations (id, rule, target, event_id, event, state,"
                        " next_attempt_at, created_at, updated_at)"
                        " SELECT ?, ?, ?, ?, ?, 'PENDING', ?, ?, ? WHERE EXISTS"
                        " (SELECT 1 FROM rules WHERE name = ?)"
                        " ON CONFLICT (rule, target, event_id) DO NOTHING",
                        (
                            item.id,
                            item.rule,
                            item.target,
                            item.event["id"],
                            json.dumps(item.event),
                            now.timestamp(),
                            now.timestamp(),
                            now.timestamp(),
                            item.rule,
                        ),
                    ).rowcount
                db.executemany("UPDATE events SET routed = 1 WHERE seq = ?", [(s,) for s in seqs])
                return recorded

        return await self._run(route)

    async def prune_events(self, before: datetime, limit: int) -> int:
        def prune(db: sqlite3.Connection) -> int:
            with self._write(db):
                events = db.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events"
                    " WHERE routed AND received_at < ? ORDER BY received_at LIMIT ?)",
                    (before.timestamp(), limit),
                ).rowcount
                invocations = db.execute(
                    "DELETE FROM invocations WHERE id IN (SELECT id FROM invocations"
                    " WHERE state = 'DELIVERED' AND updated_at < ? LIMIT ?)",
                    (before.timestamp(), limit),
                ).rowcount
                return max(events, invocations)

        return await self._run(prune)

    async def insert_rule(self, rule: Rule) -> bool:
        def insert(db: sqlite3.Connection) -> bool:
            with self._write(db):
                return (
                    db.execute(
                        "INSERT INTO rules (name, spec, enabled, created_at, updated_at)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                        _rule_row(rule),
                    ).rowcount
                    == 1
                )

        return await self._run(insert)

    async def get_rule(self, name: str) -> Rule | None:
        row = await self._run(
            lambda db: db.execute("SELECT * FROM rules WHERE name = ?", (name,)).fetchone()
        )
        return None if row is None else _rows.rule(row)

    async def list_rules(self, enabled_only: bool = False) -> list[Rule]:
        where = " WHERE enabled" if enabled_only else ""
        rows = await self._run(
            lambda db: db.execute(f"SELECT * FROM rules{where} ORDER BY name").fetchall()
        )
        return [_rows.rule(row) for row in rows]

    async def replace_rule(self, rule: Rule) -> bool:
        name, spec, enabled, _, updated_at = _rule_row(rule)

        def replace(db: sqlite3.Connection) -> bool:
            with self._write(db):
                return (
                    db.execute(
                        "UPDATE rules SET spec = ?, enabled = ?, updated_at = ? WHERE name = ?",
                        (spec, enabled, updated_at, name),
                    ).rowcount
                    == 1
                )

        return await self._run(replace)

    async def delete_rule(self, name: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            with self._write(db):
                db.execute("DELETE FROM invocations WHERE rule = ?", (name,))
                return db.execute("DELETE FROM rules WHERE name = ?", (name,)).rowcount == 1

        return await self._run(delete)

    async def due_invocations(self, now: datetime, limit: int) -> list[Invocation]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT * FROM invocations INDEXED BY invocations_due WHERE state = 'PENDING'"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
                (now.timestamp(), limit),
            ).fetchall()
        )
        return [_rows.invocation(row) for row in rows]

    async def next_invocation_at(self) -> datetime | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT min(next_attempt_at) FROM invocations WHERE state = 'PENDING'"
            ).fetchone()
        )
        return None if row is None or row[0] is None else _dt(row[0])

    async def update_invocations(self, updates: Sequence[InvocationUpdate]) -> None:
        def update(db: sqlite3.Connection) -> None:
            with self._write(db):
                db.executemany(
                    "UPDATE invocations SET state = ?, attempts = ?, next_attempt_at = ?,"
                    " result = ?, error = ?, updated_at = ? WHERE id = ? AND state = 'PENDING'",
                    [
                        (
                            u.state.value,
                            u.attempts,
                            _epoch(u.next_attempt_at),
                            u.result,
                            u.error,
                            u.now.timestamp(),
                            u.id,
                        )
                        for u in updates
                    ],
                )

        await self._run(update)

    async def list_invocations(
        self, rule: str, state: InvocationState | None, limit: int
    ) -> list[Invocation]:
        sql = "SELECT * FROM invocations WHERE rule = ?"
        args: tuple[Any, ...] = (rule,)
        if state is not None:
            sql, args = sql + " AND state = ?", (*args, state.value)
        rows = await self._run(
            lambda db: db.execute(
                sql + " ORDER BY created_at DESC, id DESC LIMIT ?", (*args, limit)
            ).fetchall()
        )
        return [_rows.invocation(row) for row in rows]

    async def retry_invocations(self, rule: str, ids: Sequence[str] | None, now: datetime) -> int:
        sql = (
            "UPDATE invocations SET state = 'PENDING', attempts = 0, next_attempt_at = ?,"
            " error = NULL, updated_at = ? WHERE rule = ? AND state = 'DEAD'"
        )
        args: tuple[Any, ...] = (now.timestamp(), now.timestamp(), rule)
        if ids is not None:
            sql += f" AND id IN ({_placeholders(len(ids))})"
            args = (*args, *ids)

        def retry(db: sqlite3.Connection) -> int:
            with self._write(db):
                return db.execute(sql, args).rowcount

        return await self._run(retry)

    async def refresh_statistics(self) -> bool:
        # Claims name their index (INDEXED BY), so they do not depend on statistics.
        return False

    async def prune_finished(self, before: datetime, limit: int) -> list[JobId]:
        sql = (
            "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs INDEXED BY jobs_finished"
            f" WHERE state IN ({_TERMINAL_SQL}) AND stopped_at < ? ORDER BY stopped_at LIMIT ?)"
            " RETURNING id"
        )

        def prune(db: sqlite3.Connection) -> list[JobId]:
            with self._write(db):
                return [JobId(row[0]) for row in db.execute(sql, (before.timestamp(), limit))]

        return await self._run(prune)

    async def try_lead(self, role: str) -> bool:
        """An exclusive ``flock`` on ``<store>.<role>.lock``, held while this process lives."""
        if role in self._leads:
            return True
        lock = self.path.with_name(f"{self.path.name}.{role}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._leads[role] = fd
        return True

    # -- workers --------------------------------------------------------------------------------

    async def register_worker(self, worker: WorkerInfo) -> None:
        def register(db: sqlite3.Connection) -> None:
            with self._write(db):
                db.execute(
                    "INSERT OR REPLACE INTO workers (id, hostname, pid, queues, concurrency,"
                    " started_at, heartbeat_at, stopped_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        worker.id,
                        worker.hostname,
                        worker.pid,
                        None if worker.queues is None else json.dumps(worker.queues),
                        worker.concurrency,
                        worker.started_at.timestamp(),
                        worker.heartbeat_at.timestamp(),
                        _ts(worker.stopped_at),
                    ),
                )

        await self._run(register)

    async def list_workers(self) -> list[WorkerInfo]:
        def select(db: sqlite3.Connection) -> tuple[list[sqlite3.Row], dict[str, list[JobId]]]:
            running: dict[str, list[JobId]] = {}
            for row in db.execute(
                "SELECT worker_id, id FROM jobs WHERE state IN (?, ?) ORDER BY seq", _ACTIVE
            ):
                running.setdefault(row[0], []).append(JobId(row[1]))
            return db.execute("SELECT * FROM workers ORDER BY started_at").fetchall(), running

        rows, running = await self._run(select)
        return [
            WorkerInfo(
                id=row["id"],
                hostname=row["hostname"],
                pid=row["pid"],
                queues=None if row["queues"] is None else tuple(json.loads(row["queues"])),
                concurrency=row["concurrency"],
                started_at=_dt(row["started_at"]),  # type: ignore[arg-type]
                heartbeat_at=_dt(row["heartbeat_at"]),  # type: ignore[arg-type]
                stopped_at=_dt(row["stopped_at"]),
                running=tuple(running.get(row["id"], ())),
            )
            for row in rows
        ]

    # -- tokens and queues ----------------------------------------------------------------------

    async def insert_token(self, token: Token, secret_hash: str) -> None:
        def insert(db: sqlite3.Connection) -> None:
            with self._write(db):
                db.execute(
                    "INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)",
                    (
                        token.id,
                        token.name,
                        token.role.value,
                        secret_hash,
                        token.created_at.timestamp(),
                    ),
                )

        await self._run(insert)

    async def find_token(self, secret_hash: str) -> Token | None:
        row = await self._run(
            lambda db: db.execute("SELECT * FROM tokens WHERE hash = ?", (secret_hash,)).fetchone()
        )
        return None if row is None else _token(row)

    async def list_tokens(self) -> list[Token]:
        rows = await self._run(
            lambda db: db.execute("SELECT * FROM tokens ORDER BY created_at").fetchall()
        )
        return [_token(row) for row in rows]

    async def revoke_token(self, token_id: str, now: datetime) -> Token | None:
        def revoke(db: sqlite3.Connection) -> sqlite3.Row | None:
            with self._write(db):
                db.execute(
                    "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    (now.timestamp(), token_id),
                )
                row: sqlite3.Row | None = db.execute(
                    "SELECT * FROM tokens WHERE id = ?", (token_id,)
                ).fetchone()
            return row

        row = await self._run(revoke)
        return None if row is None else _token(row)

    async def list_queues(self) -> list[QueueInfo]:
        def select(db: sqlite3.Connection) -> list[QueueInfo]:
            counts: dict[str, dict[str, int]] = {}
            for name, state, count in db.execute(
                "SELECT queue, state, COUNT(*) FROM jobs GROUP BY queue, state"
            ):
                counts.setdefault(name, {})[state] = count
            paused = {row[0]: bool(row[1]) for row in db.execute("SELECT name, paused FROM queues")}
            return [
                QueueInfo(name=name, paused=paused.get(name, False), counts=counts.get(name, {}))
                for name in sorted(counts.keys() | paused.keys())
            ]

        return await self._run(select)

    async def set_queue_paused(self, name: str, paused: bool, now: datetime) -> QueueInfo:
        def update(db: sqlite3.Connection) -> QueueInfo:
            with self._write(db):
                db.execute(
                    "INSERT INTO queues (name, paused, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused,"
                    " updated_at = excluded.updated_at",
                    (name, int(paused), now.timestamp()),
                )
                counts = db.execute(
                    "SELECT state, COUNT(*) FROM jobs WHERE queue = ? GROUP BY state", (name,)
                ).fetchall()
            return QueueInfo(name=name, paused=paused, counts={row[0]: row[1] for row in counts})

        return await self._run(update)

    # -- change notification --------------------------------------------------------------------

    def change_token(self) -> int:
        return self._signal.generation

    async def wait_for_change(self, token: int, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            if await self._signal.wait(token, min(remaining, POLL_INTERVAL)):
                return
            if await self._run(self._other_process_committed):
                return

    def _other_process_committed(self, db: sqlite3.Connection) -> bool:
        version = int(db.execute("PRAGMA data_version").fetchone()[0])
        changed = version != self._data_version
        self._data_version = version
        return changed


def _claim(db: sqlite3.Connection, request: ClaimRequest) -> list[Job]:
    """Move up to ``request.limit`` runnable jobs to STARTING and open an attempt for each."""
    (source,) = CLAIM.expected_from
    args: list[Any] = [request.worker_id, request.lease_until.timestamp(), request.now.timestamp()]
    # Walk runnable jobs in claim order and stop after LIMIT of them: left to itself the
    # planner takes jobs_state and sorts every runnable job, on every claim.
    jobs, queue_filter = "jobs j INDEXED BY jobs_claim_order", ""
    if request.queues is not None:
        if len(request.queues) == 1:
            jobs = "jobs j INDEXED BY jobs_runnable"  # (queue, priority DESC, seq)
        queue_filter = f" AND j.queue IN ({_placeholders(len(request.queues))})"
        args.extend(request.queues)
    args.append(request.limit)
    # The states are literals, not parameters: SQLite uses a partial index (WHERE state =
    # 'RUNNABLE') only for a query that names the same constant.
    sql = (
        f"UPDATE jobs SET state = '{CLAIM.to.value}', worker_id = ?, lease_expires_at = ?,"
        " status_reason = NULL, attempt_count = attempt_count + 1,"
        " attempts_used = attempts_used + 1"
        f" WHERE seq IN (SELECT j.seq FROM {jobs} WHERE j.state = '{source.value}'"
        f" AND j.not_before <= ?{queue_filter} AND {_GROUP_HEAD} AND {_NOT_PAUSED}"
        " ORDER BY j.priority DESC, j.seq LIMIT ?) RETURNING *"
    )
    rows = db.execute(sql, args).fetchall()
    claimed_at = request.now.timestamp()
    db.executemany(
        "INSERT INTO attempts (job_id, number, worker_id, claimed_at) VALUES (?, ?, ?, ?)",
        [(row["id"], row["attempt_count"], request.worker_id, claimed_at) for row in rows],
    )
    claimed = [_job(row) for row in rows]
    claimed.sort(key=lambda job: (-job.priority, job.created_at))
    return claimed


def _apply_one(db: sqlite3.Connection, transition: Transition) -> bool:
    sets = ["state = ?", "status_reason = ?"]
    args: list[Any] = [transition.to.value, transition.reason]
    for column, value in transition.updates.items():
        if column not in UPDATABLE_COLUMNS:
            raise ValueError(f"transition may not set {column}")
        sets.append(f"{column} = ?")
        args.append(_encode(column, value))
    where = f"id = ? AND state IN ({_placeholders(len(transition.expected_from))})"
    args.append(transition.job_id)
    args.extend(sorted(transition.expected_from))
    if transition.expected_worker is not None:
        where += " AND worker_id = ?"
        args.append(transition.expected_worker)
    if transition.lease_expired_before is not None:
        where += " AND lease_expires_at < ?"
        args.append(transition.lease_expired_before.timestamp())
    applied = db.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE {where}", args).rowcount == 1
    end = transition.attempt_end
    if end is not None:
        # An attempt is closed once: by its worker, or first by a cancel or a rescue.
        db.execute(
            "UPDATE attempts SET stopped_at = ?, exit_code = ?, reason = ?, status_reason = ?,"
            " counted = ?, image = ? WHERE job_id = ? AND number = ? AND stopped_at IS NULL",
            (
                end.stopped_at.timestamp(),
                end.exit_code,
                end.reason,
                end.status_reason,
                int(end.counted),
                end.image,
                transition.job_id,
                end.number,
            ),
        )
    if applied and transition.attempt_started_at is not None:
        db.execute(
            "UPDATE attempts SET started_at = ? WHERE job_id = ?"
            " AND number = (SELECT attempt_count FROM jobs WHERE id = ?)",
            (transition.attempt_started_at.timestamp(), transition.job_id, transition.job_id),
        )
    return applied


def _encode(column: str, value: object) -> object:
    if column in _TIME_COLUMNS:
        return _ts(value)  # type: ignore[arg-type]
    if column in _JSON_COLUMNS:
        return json.dumps(value)
    return value


def _select_jobs_by(db: sqlite3.Connection, column: str, values: list[Any]) -> dict[str, Job]:
    found: dict[str, Job] = {}
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        rows = db.execute(
            f"SELECT * FROM jobs WHERE {column} IN ({_placeholders(len(chunk))})", chunk
        ).fetchall()
        found.update((row["id"], _job(row)) for row in rows)
    return found


_rows = RowReader(time=lambda seconds: datetime.fromtimestamp(seconds, UTC), json=json.loads)
_definition, _job, _token, _attempt = _rows.definition, _rows.job, _rows.token, _rows.attempt


def _new_job(job: NewJob, row: tuple[Any, ...], times: dict[float, datetime]) -> Job:
    """The job just inserted from ``row`` (of insert_jobs), as :func:`_job` would read it back
    (``times`` remembers the times of a batch, which mostly share one)."""
    created_at = times.get(row[13]) or times.setdefault(row[13], _dt_from(row[13]))
    not_before = times.get(row[14]) or times.setdefault(row[14], _dt_from(row[14]))
    return new_job_record(
        job,
        payload=None if job.payload is None else json.loads(row[9]),
        created_at=created_at,
        not_before=not_before,
    )


def _dt_from(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


_INSERT_JOBS = (
    "INSERT INTO jobs (id, name, definition_name, definition_revision, state, queue,"
    " group_key, priority, idempotency_key, payload, overrides, parameters, max_attempts,"
    f" created_at, not_before) VALUES ({_placeholders(15)})"
    " ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
)


def _insert_jobs(db: sqlite3.Connection, jobs: Sequence[NewJob]) -> list[InsertedJob]:
    """Insert ``jobs`` in the caller's transaction; an idempotency key seen before returns the
    earlier job instead."""
    runnable = JobState.RUNNABLE.value
    seconds: dict[datetime, float] = {}  # the jobs of a batch mostly share their times

    def epoch(moment: datetime) -> float:
        value = seconds.get(moment)
        if value is None:
            value = seconds[moment] = moment.timestamp()
        return value

    rows = [
        (
            job.id,
            job.name,
            job.definition_name,
            job.definition_revision,
            runnable,
            job.queue,
            job.group_key,
            job.priority,
            job.idempotency_key,
            *new_job_columns(job),
            job.max_attempts,
            epoch(job.created_at),
            epoch(job.not_before),
        )
        for job in jobs
    ]
    db.executemany(_INSERT_JOBS, rows)
    # Only a job with an idempotency key can have been skipped: read those back to tell which;
    # every other row is exactly what was just written.
    keyed = [job.id for job in jobs if job.idempotency_key is not None]
    found = _select_jobs_by(db, "id", keyed) if keyed else {}
    missing = [
        job.idempotency_key
        for job in jobs
        if job.idempotency_key is not None and job.id not in found
    ]
    existing = _select_jobs_by(db, "idempotency_key", missing) if missing else {}
    by_key = {job.idempotency_key: job for job in existing.values()}
    inserted = []
    times: dict[float, datetime] = {}
    for job, row in zip(jobs, rows, strict=True):
        if job.idempotency_key is None:
            inserted.append(InsertedJob(job=_new_job(job, row, times), created=True))
        elif job.id in found:
            inserted.append(InsertedJob(job=found[job.id], created=True))
        else:
            inserted.append(InsertedJob(job=by_key[job.idempotency_key], created=False))
    return inserted


def _schedule_row(schedule: Schedule) -> tuple[Any, ...]:
    return (
        schedule.name,
        json.dumps(spec_document(schedule.spec)),
        int(schedule.enabled),
        _epoch(schedule.next_fire_at),
        schedule.created_at.timestamp(),
        schedule.updated_at.timestamp(),
    )


def _insert_events(db: sqlite3.Connection, events: Sequence[Event], now: datetime) -> int:
    """Insert ``events`` if some rule is enabled (else nothing would read them)."""
    if not events:
        return 0
    return db.executemany(
        "INSERT INTO events (id, source, detail_type, body, received_at)"
        " SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM rules WHERE enabled)",
        [
            (e.id, e.source, e.detail_type, json.dumps(e.envelope()), now.timestamp())
            for e in events
        ],
    ).rowcount


def _stored_event(row: sqlite3.Row) -> StoredEvent:
    return StoredEvent(
        seq=row["seq"], envelope=json.loads(row["body"]), received_at=_dt_from(row["received_at"])
    )


def _rule_row(rule: Rule) -> tuple[Any, ...]:
    return (
        rule.name,
        json.dumps(rule_spec_document(rule.spec)),
        int(rule.enabled),
        rule.created_at.timestamp(),
        rule.updated_at.timestamp(),
    )


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()
