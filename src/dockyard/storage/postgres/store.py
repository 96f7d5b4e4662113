"""PostgreSQL implementation of the storage port, on psycopg 3 (async) with a connection pool.

The fast path of DESIGN.md §5:

- **Claims in batches**: one statement picks up to ``limit`` runnable jobs in claim order with
  ``FOR UPDATE SKIP LOCKED`` (so workers on many hosts never wait on each other or take the same
  job), moves them to STARTING and opens their attempts.
- **Batched completions**: the transitions a worker collected go to the server in one pipeline,
  one round trip and one commit for the batch, with the next claim in the same transaction.
- **Bulk submit**: one ``INSERT … SELECT FROM unnest(…)`` for the whole batch.
- **Wake-ups**: every commit that changes jobs sends ``NOTIFY`` on a channel of this schema; a
  listener connection turns it into the in-process change signal that idle workers and waiting
  API calls sleep on. The worker's polling interval is the fallback while the listener reconnects.
- **Partial indexes** on runnable, leased and unfinished grouped jobs, so a claim reads the
  backlog, never the history.

Connection failures (a restart, a failover, a network cut) are retried with backoff for up to
:data:`RECONNECT_SECONDS`, so workers and API servers ride out a PostgreSQL restart. A write whose
commit was acknowledged to nobody may be retried; every write is either idempotent (inserts by
job id) or guarded by the state it expects, so a retry changes nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from dockyard.domain.definitions import definition_document
from dockyard.domain.events import Event
from dockyard.domain.records import Attempt, Definition, DefinitionSpec, Job, JobId, NewJob
from dockyard.domain.rules import Invocation, InvocationState, Rule
from dockyard.domain.rules import spec_document as rule_spec_document
from dockyard.domain.scheduling import Schedule, spec_document
from dockyard.domain.states import ACTIVE_STATES, TERMINAL_STATES, DefinitionStatus
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
from dockyard.storage.postgres.migrator import apply_migrations
from dockyard.storage.rows import RowReader, new_job_columns, new_job_record
from dockyard.storage.signal import ChangeSignal
from dockyard.storage.sql import UPDATABLE_COLUMNS, list_jobs_sql

__all__ = ["PostgresStorage", "listen_channel", "with_search_path"]

log = logging.getLogger("dockyard.storage.postgres")

T = TypeVar("T")
Conn = AsyncConnection[DictRow]

#: How long a verb keeps retrying a lost connection before it gives up with a StorageError.
RECONNECT_SECONDS = 60.0
POOL_MAX_SIZE = 8
#: Advisory lock ``classid`` of leadership locks; the ``objid`` names the role and the schema.
LEADER_LOCK = 0x0D0C_1EAD

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
#: Run on every new connection: times in UTC, and the server's end of the dead-peer timeouts.
_CONFIGURE_SESSION = (
    "SELECT set_config('TimeZone', 'UTC', false),"
    f" set_config('tcp_keepalives_idle', '{DEAD_PEER_SECONDS // 2}', false),"
    " set_config('tcp_keepalives_interval', '1', false),"
    f" set_config('tcp_keepalives_count', '{DEAD_PEER_SECONDS // 2}', false),"
    f" set_config('tcp_user_timeout', '{DEAD_PEER_SECONDS * 1000}', false)"
)

_ACTIVE = sorted(ACTIVE_STATES)
_TERMINAL = sorted(TERMINAL_STATES)
_TERMINAL_SQL = ", ".join(f"'{state.value}'" for state in _TERMINAL)
_JSON_COLUMNS = frozenset({"payload", "result"})
#: A job ``j`` may run only when no earlier job of its group is unfinished; the subquery reads
#: jobs_open_groups, which holds only unfinished grouped jobs.
_GROUP_HEAD = (
    "(j.group_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs g WHERE g.group_key = j.group_key"
    f" AND g.seq < j.seq AND g.state NOT IN ({_TERMINAL_SQL})))"
)
_NOT_PAUSED = "j.queue NOT IN (SELECT name FROM queues WHERE paused)"
_INSERT_JOBS = (
    "INSERT INTO jobs (id, name, definition_name, definition_revision, state, queue, group_key,"
    " priority, idempotency_key, payload, overrides, parameters, max_attempts, created_at,"
    " not_before)"
    " SELECT id, name, dn, dr, 'RUNNABLE', q, g, p, k, pl::jsonb, o::jsonb, pa::jsonb, m, c, nb"
    " FROM unnest(%b::text[], %b::text[], %b::text[], %b::int[], %b::text[], %b::text[],"
    " %b::int[], %b::text[], %b::text[], %b::text[], %b::text[], %b::int[], %b::timestamptz[],"
    " %b::timestamptz[]) WITH ORDINALITY AS u(id, name, dn, dr, q, g, p, k, pl, o, pa, m, c, nb, i)"
    # In request order, so that seq (the claim order) follows the order of submission.
    " ORDER BY i"
    # On any key: an idempotency key seen before, or a retry of this very insert after its
    # commit went unacknowledged (the job id is then already there).
    " ON CONFLICT DO NOTHING RETURNING id"
)

_rows = RowReader(time=lambda value: value, json=lambda value: value)


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


class PostgresStorage:
    """Dockyard's state in a PostgreSQL database (``search_path`` selects the schema)."""

    capabilities = Capabilities(multi_host=True, cross_process_notify=True)

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        # What the URL says wins; the dead-peer defaults fill in what it leaves out.
        self._dsn = make_conninfo(**{**_CLIENT_DEAD_PEER, **conninfo_to_dict(conninfo)})
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._signal = ChangeSignal()
        self._channel = ""
        self._schema_key = 0
        self._listener: asyncio.Task[None] | None = None
        self._leaders: dict[str, AsyncConnection[Any]] = {}
        self._leading: set[str] = set()
        #: Set by the first verb that succeeds; from then on a lost connection is retried.
        self._reached = False

    # -- plumbing -------------------------------------------------------------------------------

    async def _configure(self, conn: AsyncConnection[Any]) -> None:
        # The server's end of the dead-peer timeouts: a session whose client vanished ends
        # (releasing its locks, such as a leadership) after about DEAD_PEER_SECONDS instead of
        # the system's 2 hours.
        await conn.execute(_CONFIGURE_SESSION)

    async def _connect(self, **kwargs: Any) -> AsyncConnection[Any]:
        """A new connection of our own; one cancelled halfway (a shutdown) is closed, not left
        for the garbage collector."""
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

    async def _open_pool(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            conn = await self._connect()
            async with conn:
                row = await (await conn.execute("SELECT current_schema()")).fetchone()
            if row is None or row[0] is None:
                raise StorageError(f"{self.conninfo}: no schema on the search_path")
            self._channel = listen_channel(row[0])
            self._schema_key = zlib.crc32(row[0].encode())
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

    async def _run(
        self, fn: Callable[[Conn], Awaitable[T]], *, write: bool = True, snapshot: bool = False
    ) -> T:
        """Run ``fn`` on a pooled connection, retrying lost connections.

        A write runs in one transaction, and its commit wakes this process's waiters. A read of
        several statements asks for a ``snapshot``: one REPEATABLE READ transaction, so a job and
        its attempts are read as of one moment.
        """

        async def once() -> T:
            pool = await self._open_pool()
            async with pool.connection() as conn:
                if snapshot:
                    async with conn.transaction():
                        await conn.execute(
                            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                        )
                        return await fn(conn)
                if not write:
                    return await fn(conn)
                async with conn.transaction():
                    result = await fn(conn)
            self._signal.notify()
            return result

        return await self._retrying(once)

    async def _retrying(self, once: Callable[[], Awaitable[T]]) -> T:
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
                    raise StorageError(f"PostgreSQL: {error}") from error
                log.warning("PostgreSQL: %s; retrying in %.2fs", str(error).strip(), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _notify(self, conn: Conn) -> None:
        """Wake other processes' waiters when this transaction commits."""
        await conn.execute("SELECT pg_notify(%s, '')", (self._channel,))

    async def migrate(self) -> list[str]:
        async def migrate() -> list[str]:
            conn = await self._connect()
            async with conn:
                return await apply_migrations(conn)

        return await self._retrying(migrate)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        for conn in self._leaders.values():
            await conn.close()
        self._leaders.clear()
        self._leading.clear()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # -- definitions ----------------------------------------------------------------------------

    async def insert_definition(self, name: str, spec: DefinitionSpec, now: datetime) -> Definition:
        document = Jsonb(definition_document(name, spec))

        async def insert(conn: Conn) -> Definition:
            # The per-name lock orders concurrent registrations, so revisions never collide.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"def:{name}",))
            row = await (
                await conn.execute(
                    "INSERT INTO definitions (name, revision, status, created_at, document)"
                    " SELECT %s, COALESCE(MAX(revision), 0) + 1, 'ACTIVE', %s, %s"
                    " FROM definitions WHERE name = %s RETURNING *",
                    (name, now, document, name),
                )
            ).fetchone()
            assert row is not None
            return _rows.definition(row)

        return await self._run(insert)

    async def get_definition(self, name: str, revision: int | None) -> Definition | None:
        if revision is None:
            sql = (
                "SELECT * FROM definitions WHERE name = %s AND status = 'ACTIVE'"
                " ORDER BY revision DESC LIMIT 1"
            )
            args: tuple[Any, ...] = (name,)
        else:
            sql = "SELECT * FROM definitions WHERE name = %s AND revision = %s"
            args = (name, revision)
        row = await self._fetchone(sql, args)
        return None if row is None else _rows.definition(row)

    async def list_definitions(self, name: str | None = None) -> list[Definition]:
        if name is None:
            sql = "SELECT DISTINCT ON (name) * FROM definitions ORDER BY name, revision DESC"
            args: tuple[Any, ...] = ()
        else:
            sql, args = "SELECT * FROM definitions WHERE name = %s ORDER BY revision", (name,)
        return [_rows.definition(row) for row in await self._fetchall(sql, args)]

    async def set_definition_status(
        self, name: str, revision: int, status: DefinitionStatus
    ) -> Definition | None:
        async def update(conn: Conn) -> DictRow | None:
            cursor = await conn.execute(
                "UPDATE definitions SET status = %s WHERE name = %s AND revision = %s RETURNING *",
                (status.value, name, revision),
            )
            return await cursor.fetchone()

        row = await self._run(update)
        return None if row is None else _rows.definition(row)

    # -- jobs -----------------------------------------------------------------------------------

    async def insert_jobs(self, jobs: Sequence[NewJob]) -> list[InsertedJob]:
        return await self._run(lambda conn: self._insert_jobs(conn, jobs))

    async def _insert_jobs(self, conn: Conn, jobs: Sequence[NewJob]) -> list[InsertedJob]:
        """Insert ``jobs`` in the caller's transaction; an idempotency key seen before returns
        the earlier job instead."""
        if not jobs:
            return []
        encoded = [new_job_columns(job) for job in jobs]
        payloads = [payload for payload, _, _ in encoded]
        columns = (
            [job.id for job in jobs],
            [job.name for job in jobs],
            [job.definition_name for job in jobs],
            [job.definition_revision for job in jobs],
            [job.queue for job in jobs],
            [job.group_key for job in jobs],
            [job.priority for job in jobs],
            [job.idempotency_key for job in jobs],
            payloads,
            [overrides for _, overrides, _ in encoded],
            [parameters for _, _, parameters in encoded],
            [job.max_attempts for job in jobs],
            [job.created_at for job in jobs],
            [job.not_before for job in jobs],
        )
        cursor = await conn.execute(_INSERT_JOBS, columns)
        created = {row["id"] for row in await cursor.fetchall()}
        missing = [job for job in jobs if job.id not in created]
        by_key = await self._jobs_by(
            conn, "idempotency_key", [j.idempotency_key for j in missing if j.idempotency_key]
        )
        # Only a retry of this very insert leaves a job neither created nor found by key.
        unexplained = [j.id for j in missing if j.idempotency_key not in by_key]
        by_id = await self._jobs_by(conn, "id", unexplained)
        if created:
            await self._notify(conn)
        inserted = []
        for job, payload in zip(jobs, payloads, strict=True):
            if job.id in created:
                record = new_job_record(
                    job,
                    payload=None if payload is None else json.loads(payload),
                    created_at=job.created_at,
                    not_before=job.not_before,
                )
                inserted.append(InsertedJob(job=record, created=True))
            elif job.idempotency_key is not None and job.idempotency_key in by_key:
                existing = by_key[job.idempotency_key]
                inserted.append(InsertedJob(job=existing, created=existing.id == job.id))
            else:
                inserted.append(InsertedJob(job=by_id[job.id], created=True))
        return inserted

    @staticmethod
    async def _jobs_by(conn: Conn, column: str, values: list[Any]) -> dict[str, Job]:
        if not values:
            return {}
        cursor = await conn.execute(f"SELECT * FROM jobs WHERE {column} = ANY(%s)", (values,))
        return {row[column]: _rows.job(row) for row in await cursor.fetchall()}

    async def get_job(self, job_id: JobId) -> Job | None:
        async def get(conn: Conn) -> Job | None:
            row = await (
                await conn.execute("SELECT * FROM jobs WHERE id = %s", (job_id,))
            ).fetchone()
            if row is None:
                return None
            attempts = await (
                await conn.execute(
                    "SELECT * FROM attempts WHERE job_id = %s ORDER BY number", (job_id,)
                )
            ).fetchall()
            return _rows.job(row, tuple(_rows.attempt(a) for a in attempts))

        return await self._run(get, snapshot=True)

    async def list_jobs(self, query: JobQuery) -> list[Job]:
        sql, args = list_jobs_sql(
            query,
            mark="%s",
            one_of=lambda column, values: (f"{column} = ANY(%s)", [list(values)]),
        )

        async def select(conn: Conn) -> list[Job]:
            rows = await (await conn.execute(sql, args)).fetchall()
            attempts: dict[str, list[Attempt]] = {row["id"]: [] for row in rows}
            if rows:
                cursor = await conn.execute(
                    "SELECT * FROM attempts WHERE job_id = ANY(%s) ORDER BY job_id, number",
                    (list(attempts),),
                )
                for row in await cursor.fetchall():
                    attempts[row["job_id"]].append(_rows.attempt(row))
            return [_rows.job(row, tuple(attempts[row["id"]])) for row in rows]

        return await self._run(select, snapshot=True)

    # -- the hot path ---------------------------------------------------------------------------

    async def claim(self, request: ClaimRequest) -> list[Job]:
        return await self._run(lambda conn: _claim(conn, request))

    async def apply(self, transitions: Sequence[Transition]) -> list[bool]:
        async def apply(conn: Conn) -> list[bool]:
            applied = await _apply_all(conn, transitions)
            if any(applied):
                await self._notify(conn)
            return applied

        return await self._run(apply)

    async def apply_and_claim(
        self, transitions: Sequence[Transition], request: ClaimRequest
    ) -> tuple[list[bool], list[Job]]:
        async def apply_and_claim(conn: Conn) -> tuple[list[bool], list[Job]]:
            applied = await _apply_all(conn, transitions)
            if any(applied):
                await self._notify(conn)
            return applied, await _claim(conn, request)

        return await self._run(apply_and_claim)

    async def heartbeat(self, beat: Heartbeat) -> frozenset[JobId]:
        ids = list(beat.job_ids)

        async def renew(conn: Conn) -> frozenset[JobId]:
            if beat.lease_until is not None:
                await conn.execute(
                    "UPDATE jobs SET lease_expires_at = %s WHERE id = ANY(%s)"
                    " AND worker_id = %s AND state = ANY(%s)",
                    (beat.lease_until, ids, beat.worker_id, _ACTIVE),
                )
                await conn.execute(
                    "UPDATE workers SET heartbeat_at = %s WHERE id = %s",
                    (beat.now, beat.worker_id),
                )
            if not ids:
                return frozenset()
            held = await (
                await conn.execute(
                    "SELECT id FROM jobs WHERE id = ANY(%s) AND worker_id = %s AND state = ANY(%s)",
                    (ids, beat.worker_id, _ACTIVE),
                )
            ).fetchall()
            return frozenset(ids) - {row["id"] for row in held}

        # No NOTIFY: renewing a lease changes nothing anyone waits for.
        return await self._run(renew, write=beat.lease_until is not None)

    async def expired_leases(self, now: datetime, limit: int) -> list[Job]:
        rows = await self._fetchall(
            "SELECT * FROM jobs WHERE state = ANY(%s) AND lease_expires_at < %s"
            " ORDER BY lease_expires_at LIMIT %s",
            (_ACTIVE, now, limit),
        )
        return [_rows.job(row) for row in rows]

    async def next_runnable_at(self, queues: tuple[str, ...] | None) -> datetime | None:
        sql = (
            "SELECT j.not_before FROM jobs j"
            f" WHERE j.state = 'RUNNABLE' AND {_GROUP_HEAD} AND {_NOT_PAUSED}"
        )
        args: list[Any] = []
        if queues is not None:
            sql += " AND j.queue = ANY(%s)"
            args.append(list(queues))
        sql += " ORDER BY j.not_before LIMIT 1"
        row = await self._fetchone(sql, args)
        return None if row is None else row["not_before"]

    async def prune_finished(self, before: datetime, limit: int) -> list[JobId]:
        async def prune(conn: Conn) -> list[JobId]:
            cursor = await conn.execute(
                "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs"
                f" WHERE state IN ({_TERMINAL_SQL}) AND stopped_at < %s"
                " ORDER BY stopped_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
                (before, limit),
            )
            return [JobId(row["id"]) for row in await cursor.fetchall()]

        return await self._run(prune)

    # -- schedules ------------------------------------------------------------------------------

    async def insert_schedule(self, schedule: Schedule) -> bool:
        async def insert(conn: Conn) -> bool:
            cursor = await conn.execute(
                "INSERT INTO schedules (name, spec, enabled, next_fire_at, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING RETURNING name",
                _schedule_args(schedule),
            )
            inserted = await cursor.fetchone() is not None
            if inserted:
                await self._notify(conn)
            return inserted

        return await self._run(insert)

    async def get_schedule(self, name: str) -> Schedule | None:
        row = await self._fetchone(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE name = %s", (name,)
        )
        return None if row is None else _rows.schedule(row)

    async def list_schedules(self) -> list[Schedule]:
        rows = await self._fetchall(f"SELECT {_SCHEDULE_COLUMNS} FROM schedules ORDER BY name", ())
        return [_rows.schedule(row) for row in rows]

    async def replace_schedule(self, schedule: Schedule, expected_next: datetime | None) -> bool:
        async def replace(conn: Conn) -> bool:
            name, spec, enabled, next_fire_at, _, updated_at = _schedule_args(schedule)
            cursor = await conn.execute(
                "UPDATE schedules SET spec = %s, enabled = %s, next_fire_at = %s,"
                " updated_at = %s, last_error = %s WHERE name = %s"
                " AND next_fire_at IS NOT DISTINCT FROM %s RETURNING name",
                (spec, enabled, next_fire_at, updated_at, schedule.last_error, name, expected_next),
            )
            replaced = await cursor.fetchone() is not None
            if replaced:
                await self._notify(conn)
            return replaced

        return await self._run(replace)

    async def delete_schedule(self, name: str) -> bool:
        async def delete(conn: Conn) -> bool:
            cursor = await conn.execute(
                "DELETE FROM schedules WHERE name = %s RETURNING name", (name,)
            )
            return await cursor.fetchone() is not None

        return await self._run(delete)

    async def due_schedules(self, now: datetime, limit: int) -> list[Schedule]:
        rows = await self._fetchall(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE enabled AND next_fire_at IS NOT NULL"
            " AND next_fire_at <= %s ORDER BY next_fire_at LIMIT %s",
            (now, limit),
        )
        return [_rows.schedule(row) for row in rows]

    async def next_fire_at(self) -> datetime | None:
        row = await self._fetchone(
            "SELECT min(next_fire_at) AS at FROM schedules"
            " WHERE enabled AND next_fire_at IS NOT NULL",
            (),
        )
        return None if row is None else row["at"]

    async def record_fires(self, fires: Sequence[Fire]) -> list[FireResult]:
        # A set-based statement per step, whatever the number of schedules: a minute when
        # thousands of schedules fire is a handful of statements per batch.
        async def record(conn: Conn) -> list[FireResult]:
            # The job ids are made here, so the move sets last_job_id too; only a fire whose
            # key was taken (a failover) points at another job, corrected after the insert.
            planned = [fire.jobs[-1].id if fire.jobs else None for fire in fires]
            cursor = await conn.execute(
                _MOVE_SCHEDULES,
                (
                    [fire.schedule for fire in fires],
                    [fire.expected_next for fire in fires],
                    [fire.next_fire_at for fire in fires],
                    [fire.fired_at for fire in fires],
                    [len(fire.jobs) for fire in fires],
                    [fire.error for fire in fires],
                    [fire.now for fire in fires],
                    planned,
                ),
            )
            moved = {row["name"] for row in await cursor.fetchall()}
            applied = [fire for fire in fires if fire.schedule in moved]
            inserted = await self._insert_jobs(conn, [job for f in applied for job in f.jobs])
            results: dict[str, FireResult] = {}
            others: dict[str, str] = {}
            offset = 0
            for fire in applied:
                mine = tuple(inserted[offset : offset + len(fire.jobs)])
                offset += len(fire.jobs)
                results[fire.schedule] = FireResult(applied=True, jobs=mine)
                if mine and mine[-1].job.id != fire.jobs[-1].id:
                    others[fire.schedule] = mine[-1].job.id
            if others:
                await conn.execute(
                    "UPDATE schedules s SET last_job_id = v.job_id"
                    " FROM unnest(%s::text[], %s::text[]) AS v(name, job_id) WHERE s.name = v.name",
                    (list(others), list(others.values())),
                )
            await _insert_events(conn, [e for fire in applied for e in fire.events], fires[0].now)
            deleted = [fire.schedule for fire in applied if fire.delete]
            if deleted:
                await conn.execute("DELETE FROM schedules WHERE name = ANY(%s)", (deleted,))
            return [results.get(fire.schedule, FireResult(applied=False)) for fire in fires]

        return await self._run(record)

    # -- events and rules -----------------------------------------------------------------------

    async def insert_events(self, events: Sequence[Event], now: datetime) -> int:
        async def insert(conn: Conn) -> int:
            kept = await _insert_events(conn, events, now)
            if kept:
                await self._notify(conn)
            return kept

        return await self._run(insert)

    async def list_events(self, limit: int, source: str | None = None) -> list[StoredEvent]:
        where = "" if source is None else " WHERE source = %s"
        args: tuple[Any, ...] = () if source is None else (source,)
        rows = await self._fetchall(
            f"SELECT seq, body, received_at FROM events{where} ORDER BY seq DESC LIMIT %s",
            (*args, limit),
        )
        return [_stored_event(row) for row in rows]

    async def unrouted_events(self, limit: int) -> list[StoredEvent]:
        rows = await self._fetchall(
            "SELECT seq, body, received_at FROM events WHERE NOT routed ORDER BY seq LIMIT %s",
            (limit,),
        )
        return [_stored_event(row) for row in rows]

    async def route_events(
        self, seqs: Sequence[int], invocations: Sequence[NewInvocation], now: datetime
    ) -> int:
        async def route(conn: Conn) -> int:
            recorded = 0
            if invocations:
                cursor = await conn.execute(
                    "INSERT INTO invocations (id, rule, target, event_id, event, state,"
                    " next_attempt_at, created_at, updated_at)"
                    " SELECT v.id, v.rule, v.target, v.event ->> 'id', v.event, 'PENDING',"
                    " %s, %s, %s FROM unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[])"
                    " AS v(id, rule, target, event) JOIN rules r ON r.name = v.rule"
                    " ON CONFLICT (rule, target, event_id) DO NOTHING",
                    (
                        now,
                        now,
                        now,
                        [item.id for item in invocations],
                        [item.rule for item in invocations],
                        [item.target for item in invocations],
                        [Jsonb(item.event) for item in invocations],
                    ),
                )
                recorded = cursor.rowcount
            await conn.execute("UPDATE events SET routed = true WHERE seq = ANY(%s)", (list(seqs),))
            return recorded

        return await self._run(route)

    async def prune_events(self, before: datetime, limit: int) -> int:
        async def prune(conn: Conn) -> int:
            events = await conn.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events"
                " WHERE routed AND received_at < %s ORDER BY received_at LIMIT %s)",
                (before, limit),
            )
            invocations = await conn.execute(
                "DELETE FROM invocations WHERE id IN (SELECT id FROM invocations"
                " WHERE state = 'DELIVERED' AND updated_at < %s LIMIT %s)",
                (before, limit),
            )
            return max(events.rowcount, invocations.rowcount)

        return await self._run(prune)

    async def insert_rule(self, rule: Rule) -> bool:
        async def insert(conn: Conn) -> bool:
            cursor = await conn.execute(
                "INSERT INTO rules (name, spec, enabled, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
                _rule_args(rule),
            )
            return cursor.rowcount == 1

        return await self._run(insert)

    async def get_rule(self, name: str) -> Rule | None:
        row = await self._fetchone(f"SELECT {_RULE_COLUMNS} FROM rules WHERE name = %s", (name,))
        return None if row is None else _rows.rule(row)

    async def list_rules(self, enabled_only: bool = False) -> list[Rule]:
        where = " WHERE enabled" if enabled_only else ""
        rows = await self._fetchall(f"SELECT {_RULE_COLUMNS} FROM rules{where} ORDER BY name", ())
        return [_rows.rule(row) for row in rows]

    async def replace_rule(self, rule: Rule) -> bool:
        name, spec, enabled, _, updated_at = _rule_args(rule)

        async def replace(conn: Conn) -> bool:
            cursor = await conn.execute(
                "UPDATE rules SET spec = %s, enabled = %s, updated_at = %s WHERE name = %s",
                (spec, enabled, updated_at, name),
            )
            return cursor.rowcount == 1

        return await self._run(replace)

    async def delete_rule(self, name: str) -> bool:
        async def delete(conn: Conn) -> bool:
            cursor = await conn.execute("DELETE FROM rules WHERE name = %s", (name,))
            return cursor.rowcount == 1

        return await self._run(delete)

    async def due_invocations(self, now: datetime, limit: int) -> list[Invocation]:
        rows = await self._fetchall(
            "SELECT * FROM invocations WHERE state = 'PENDING' AND next_attempt_at <= %s"
            " ORDER BY next_attempt_at LIMIT %s",
            (now, limit),
        )
        return [_rows.invocation(row) for row in rows]

    async def next_invocation_at(self) -> datetime | None:
        row = await self._fetchone(
            "SELECT min(next_attempt_at) AS at FROM invocations WHERE state = 'PENDING'", ()
        )
        return None if row is None else row["at"]

    async def update_invocations(self, updates: Sequence[InvocationUpdate]) -> None:
        async def update(conn: Conn) -> None:
            await conn.execute(
                "UPDATE invocations i SET state = v.state, attempts = v.attempts,"
                " next_attempt_at = v.next_attempt_at, result = v.result, error = v.error,"
                " updated_at = v.now FROM unnest(%s::text[], %s::text[], %s::int[],"
                " %s::timestamptz[], %s::text[], %s::text[], %s::timestamptz[])"
                " AS v(id, state, attempts, next_attempt_at, result, error, now)"
                " WHERE i.id = v.id AND i.state = 'PENDING'",
                (
                    [u.id for u in updates],
                    [u.state.value for u in updates],
                    [u.attempts for u in updates],
                    [u.next_attempt_at for u in updates],
                    [u.result for u in updates],
                    [u.error for u in updates],
                    [u.now for u in updates],
                ),
            )

        await self._run(update)

    async def list_invocations(
        self, rule: str, state: InvocationState | None, limit: int
    ) -> list[Invocation]:
        where = "" if state is None else " AND state = %s"
        args: tuple[Any, ...] = (rule,) if state is None else (rule, state.value)
        rows = await self._fetchall(
            f"SELECT * FROM invocations WHERE rule = %s{where}"
            " ORDER BY created_at DESC, id DESC LIMIT %s",
            (*args, limit),
        )
        return [_rows.invocation(row) for row in rows]

    async def retry_invocations(self, rule: str, ids: Sequence[str] | None, now: datetime) -> int:
        async def retry(conn: Conn) -> int:
            cursor = await conn.execute(
                "UPDATE invocations SET state = 'PENDING', attempts = 0, next_attempt_at = %s,"
                " error = NULL, updated_at = %s WHERE rule = %s AND state = 'DEAD'"
                " AND (%s::text[] IS NULL OR id = ANY(%s::text[]))",
                (
                    now,
                    now,
                    rule,
                    None if ids is None else list(ids),
                    None if ids is None else list(ids),
                ),
            )
            return cursor.rowcount

        return await self._run(retry)

    async def refresh_statistics(self) -> bool:
        # Autovacuum's own rule (50 rows + 10 % of the table), at most once a minute, but at
        # once for a table never analyzed: without statistics, the planner guesses the backlog
        # is a dozen rows and claims by reading and sorting all of it.
        async def refresh(conn: Conn) -> bool:
            cursor = await conn.execute(
                "SELECT relname FROM pg_stat_user_tables"
                " WHERE relid IN ('jobs'::regclass, 'attempts'::regclass)"
                " AND n_mod_since_analyze > 50 + 0.1 * n_live_tup"
                " AND COALESCE(GREATEST(last_analyze, last_autoanalyze)"
                " < now() - interval '1 min', true)"
            )
            stale = [row["relname"] for row in await cursor.fetchall()]
            if stale:
                await conn.execute(f"ANALYZE {', '.join(stale)}")
            return bool(stale)

        return await self._run(refresh, write=False)

    # -- workers --------------------------------------------------------------------------------

    async def register_worker(self, worker: WorkerInfo) -> None:
        async def register(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO workers (id, hostname, pid, queues, concurrency, started_at,"
                " heartbeat_at, stopped_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname,"
                " pid = excluded.pid, queues = excluded.queues,"
                " concurrency = excluded.concurrency, started_at = excluded.started_at,"
                " heartbeat_at = excluded.heartbeat_at, stopped_at = excluded.stopped_at",
                (
                    worker.id,
                    worker.hostname,
                    worker.pid,
                    None if worker.queues is None else Jsonb(list(worker.queues)),
                    worker.concurrency,
                    worker.started_at,
                    worker.heartbeat_at,
                    worker.stopped_at,
                ),
            )

        await self._run(register)

    async def list_workers(self) -> list[WorkerInfo]:
        async def select(conn: Conn) -> tuple[list[DictRow], dict[str, list[JobId]]]:
            running: dict[str, list[JobId]] = {}
            cursor = await conn.execute(
                "SELECT worker_id, id FROM jobs WHERE state = ANY(%s) ORDER BY seq", (_ACTIVE,)
            )
            for row in await cursor.fetchall():
                running.setdefault(row["worker_id"], []).append(JobId(row["id"]))
            workers = await conn.execute("SELECT * FROM workers ORDER BY started_at")
            return await workers.fetchall(), running

        rows, running = await self._run(select, snapshot=True)
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

    # -- tokens and queues ----------------------------------------------------------------------

    async def insert_token(self, token: Token, secret_hash: str) -> None:
        async def insert(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO tokens (id, name, role, hash, created_at) VALUES (%s, %s, %s, %s, %s)",
                (token.id, token.name, token.role.value, secret_hash, token.created_at),
            )

        await self._run(insert)

    async def find_token(self, secret_hash: str) -> Token | None:
        row = await self._fetchone("SELECT * FROM tokens WHERE hash = %s", (secret_hash,))
        return None if row is None else _rows.token(row)

    async def list_tokens(self) -> list[Token]:
        rows = await self._fetchall("SELECT * FROM tokens ORDER BY created_at", ())
        return [_rows.token(row) for row in rows]

    async def revoke_token(self, token_id: str, now: datetime) -> Token | None:
        async def revoke(conn: Conn) -> DictRow | None:
            await conn.execute(
                "UPDATE tokens SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
                (now, token_id),
            )
            cursor = await conn.execute("SELECT * FROM tokens WHERE id = %s", (token_id,))
            return await cursor.fetchone()

        row = await self._run(revoke)
        return None if row is None else _rows.token(row)

    async def list_queues(self) -> list[QueueInfo]:
        async def select(conn: Conn) -> tuple[list[DictRow], list[DictRow]]:
            counts = await conn.execute(
                "SELECT queue, state, COUNT(*) AS n FROM jobs GROUP BY queue, state"
            )
            paused = await conn.execute("SELECT name, paused FROM queues")
            return await counts.fetchall(), await paused.fetchall()

        count_rows, paused_rows = await self._run(select, snapshot=True)
        counts: dict[str, dict[str, int]] = {}
        for row in count_rows:
            counts.setdefault(row["queue"], {})[row["state"]] = row["n"]
        paused = {row["name"]: row["paused"] for row in paused_rows}
        return [
            QueueInfo(name=name, paused=paused.get(name, False), counts=counts.get(name, {}))
            for name in sorted(counts.keys() | paused.keys())
        ]

    async def set_queue_paused(self, name: str, paused: bool, now: datetime) -> QueueInfo:
        async def update(conn: Conn) -> QueueInfo:
            await conn.execute(
                "INSERT INTO queues (name, paused, updated_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused,"
                " updated_at = excluded.updated_at",
                (name, paused, now),
            )
            await self._notify(conn)
            cursor = await conn.execute(
                "SELECT state, COUNT(*) AS n FROM jobs WHERE queue = %s GROUP BY state", (name,)
            )
            counts = {row["state"]: row["n"] for row in await cursor.fetchall()}
            return QueueInfo(name=name, paused=paused, counts=counts)

        return await self._run(update)

    async def _fetchone(self, sql: str, args: Sequence[Any]) -> DictRow | None:
        async def fetch(conn: Conn) -> DictRow | None:
            return await (await conn.execute(sql, args)).fetchone()

        return await self._run(fetch, write=False)

    async def _fetchall(self, sql: str, args: Sequence[Any]) -> list[DictRow]:
        async def fetch(conn: Conn) -> list[DictRow]:
            return await (await conn.execute(sql, args)).fetchall()

        return await self._run(fetch, write=False)

    # -- leadership -----------------------------------------------------------------------------

    async def try_lead(self, role: str) -> bool:
        """Hold (or take) the session-level advisory lock of ``role`` in this schema.

        Each process keeps one connection per role for this, whether it leads or not (no
        connection churn from followers). When the leader's connection dies (the process
        crashed, the network was cut, PostgreSQL restarted) the server releases the lock and
        another process takes it at its next try.
        """
        await self._open_pool()
        key = zlib.crc32(f"{self._schema_key}:{role}".encode()) - (1 << 31)
        conn = self._leaders.get(role)
        try:
            if conn is None or conn.closed:
                conn = self._leaders[role] = await self._connect()
            if role in self._leading:
                await conn.execute("SELECT 1")  # still connected, so still holding the lock
                return True
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LEADER_LOCK, key))
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

    # -- change notification --------------------------------------------------------------------

    def change_token(self) -> int:
        return self._signal.generation

    async def wait_for_change(self, token: int, timeout: float) -> None:
        if self._listener is None or self._listener.done():
            await self._open_pool()
            self._listener = asyncio.create_task(self._listen(), name="dockyard-listen")
        await self._signal.wait(token, timeout)

    async def _listen(self) -> None:
        """Turn NOTIFYs on this schema's channel into change signals, reconnecting as needed."""
        delay = 0.1
        while True:
            try:
                conn = await self._connect()
                async with conn:
                    await conn.execute(f"LISTEN {self._channel}")
                    delay = 0.1
                    # Anything may have changed while no one listened.
                    self._signal.notify()
                    async for _ in conn.notifies():
                        self._signal.notify()
            except psycopg.Error as error:
                log.warning("PostgreSQL listener: %s", str(error).strip())
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def claim_sql(request: ClaimRequest) -> tuple[str, list[Any]]:
    """The claim: lock up to ``limit`` claimable jobs in claim order, skipping rows other
    workers hold, move them to STARTING and open their attempts, in one statement."""
    (source,) = CLAIM.expected_from
    args: list[Any] = [request.now]
    queue_filter = ""
    if request.queues is not None:
        queue_filter = " AND j.queue = ANY(%s)"
        args.append(list(request.queues))
    args += [request.limit, request.worker_id, request.lease_until, request.now, request.worker_id]
    sql = (
        "WITH picked AS (SELECT j.seq FROM jobs j"
        f" WHERE j.state = '{source.value}' AND j.not_before <= %s{queue_filter}"
        f" AND {_GROUP_HEAD} AND {_NOT_PAUSED}"
        " ORDER BY j.priority DESC, j.seq LIMIT %s FOR UPDATE SKIP LOCKED),"
        f" claimed AS (UPDATE jobs SET state = '{CLAIM.to.value}', worker_id = %s,"
        " lease_expires_at = %s, status_reason = NULL, attempt_count = attempt_count + 1,"
        " attempts_used = attempts_used + 1 FROM picked WHERE jobs.seq = picked.seq"
        " RETURNING jobs.*),"
        " opened AS (INSERT INTO attempts (job_id, number, claimed_at, worker_id)"
        " SELECT id, attempt_count, %s, %s FROM claimed)"
        " SELECT * FROM claimed ORDER BY priority DESC, seq"
    )
    return sql, args


async def _claim(conn: Conn, request: ClaimRequest) -> list[Job]:
    """Move up to ``request.limit`` runnable jobs to STARTING and open an attempt for each."""
    cursor = await conn.execute(*claim_sql(request))
    return [_rows.job(row) for row in await cursor.fetchall()]


async def _apply_all(conn: Conn, transitions: Sequence[Transition]) -> list[bool]:
    """Every transition's guarded write, in as few statements as their shapes allow.

    Transitions that write the same columns share one ``executemany`` (psycopg sends it as one
    prepared statement, row after row, in a pipeline); a job with two transitions in the batch
    (its start and its end) has them in successive rounds, so they apply in order.
    """
    applied = [False] * len(transitions)
    rounds: list[list[int]] = []
    seen: dict[JobId, int] = {}
    for index, transition in enumerate(transitions):
        depth = seen.get(transition.job_id, 0)
        seen[transition.job_id] = depth + 1
        if depth == len(rounds):
            rounds.append([])
        rounds[depth].append(index)
    for indexes in rounds:
        shapes: dict[str, list[int]] = {}
        rows: dict[int, list[Any]] = {}
        for index in indexes:
            sql, args = _job_update(transitions[index])
            shapes.setdefault(sql, []).append(index)
            rows[index] = args
        async with conn.cursor() as cursor:
            for sql, members in shapes.items():
                await cursor.executemany(sql, [rows[i] for i in members], returning=True)
                for index in members:
                    applied[index] = cursor.rowcount == 1
                    cursor.nextset()
        ends = [transitions[i] for i in indexes if transitions[i].attempt_end is not None]
        if ends:
            await conn.cursor().executemany(_CLOSE_ATTEMPT, [_close_args(t) for t in ends])
        starts = [
            (transitions[i].attempt_started_at, transitions[i].job_id)
            for i in indexes
            if transitions[i].attempt_started_at is not None and applied[i]
        ]
        if starts:
            await conn.cursor().executemany(_START_ATTEMPT, starts)
    return applied


#: An attempt is closed once: by its worker, or first by a cancel or a rescue.
_CLOSE_ATTEMPT = (
    "UPDATE attempts SET stopped_at = %s, exit_code = %s, reason = %s, status_reason = %s,"
    " counted = %s, image = %s WHERE job_id = %s AND number = %s AND stopped_at IS NULL"
)
#: Only for a start that applied: the job's current attempt, if no cancel closed it meanwhile.
_START_ATTEMPT = (
    "UPDATE attempts a SET started_at = %s FROM jobs j WHERE j.id = %s"
    " AND a.job_id = j.id AND a.number = j.attempt_count"
    " AND a.started_at IS NULL AND a.stopped_at IS NULL"
)


def _close_args(transition: Transition) -> list[Any]:
    end = transition.attempt_end
    assert end is not None
    return [
        end.stopped_at,
        end.exit_code,
        end.reason,
        end.status_reason,
        end.counted,
        end.image,
        transition.job_id,
        end.number,
    ]


def _job_update(transition: Transition) -> tuple[str, list[Any]]:
    """The job's guarded update (``RETURNING`` a row when its guard held)."""
    sets = ["state = %s", "status_reason = %s"]
    args: list[Any] = [transition.to.value, transition.reason]
    for column, value in transition.updates.items():
        if column not in UPDATABLE_COLUMNS:
            raise ValueError(f"transition may not set {column}")
        sets.append(f"{column} = %s")
        args.append(Jsonb(value) if column in _JSON_COLUMNS and value is not None else value)
    where = "id = %s AND state = ANY(%s)"
    args += [transition.job_id, sorted(transition.expected_from)]
    if transition.expected_worker is not None:
        where += " AND worker_id = %s"
        args.append(transition.expected_worker)
    if transition.lease_expired_before is not None:
        where += " AND lease_expires_at < %s"
        args.append(transition.lease_expired_before)
    return f"UPDATE jobs SET {', '.join(sets)} WHERE {where} RETURNING 1", args


async def _insert_events(conn: Conn, events: Sequence[Event], now: datetime) -> int:
    """Insert ``events`` if some rule is enabled (else nothing would read them)."""
    if not events:
        return 0
    cursor = await conn.execute(
        "INSERT INTO events (id, source, detail_type, body, received_at)"
        " SELECT v.id, v.source, v.detail_type, v.body, %s"
        " FROM unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[])"
        " AS v(id, source, detail_type, body) WHERE EXISTS (SELECT 1 FROM rules WHERE enabled)",
        (
            now,
            [e.id for e in events],
            [e.source for e in events],
            [e.detail_type for e in events],
            [Jsonb(e.envelope()) for e in events],
        ),
    )
    return cursor.rowcount


def _stored_event(row: DictRow) -> StoredEvent:
    return StoredEvent(seq=row["seq"], envelope=row["body"], received_at=row["received_at"])


def _rule_args(rule: Rule) -> tuple[Any, ...]:
    return (
        rule.name,
        Jsonb(rule_spec_document(rule.spec)),
        rule.enabled,
        rule.created_at,
        rule.updated_at,
    )


#: Rules as RowReader.rule reads them: the spec as JSON text, parsed once while unchanged.
_RULE_COLUMNS = "name, spec::text AS spec, enabled, created_at, updated_at"


def _schedule_args(schedule: Schedule) -> tuple[Any, ...]:
    return (
        schedule.name,
        Jsonb(spec_document(schedule.spec)),
        schedule.enabled,
        schedule.next_fire_at,
        schedule.created_at,
        schedule.updated_at,
    )


#: Schedules as RowReader.schedule reads them: the spec as JSON text, so that an unchanged spec
#: is parsed once (see storage/rows.py).
_SCHEDULE_COLUMNS = (
    "name, spec::text AS spec, enabled, next_fire_at, last_fire_at, last_job_id, fires,"
    " last_error, created_at, updated_at"
)
#: A scheduler round moves each schedule on only if no one else did (see :class:`Fire`).
_MOVE_SCHEDULES = (
    "UPDATE schedules s SET next_fire_at = v.next_fire_at,"
    " last_fire_at = COALESCE(v.fired_at, s.last_fire_at), fires = s.fires + v.jobs,"
    " last_error = v.error, updated_at = v.now, last_job_id = COALESCE(v.job, s.last_job_id)"
    " FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[],"
    " %s::int[], %s::text[], %s::timestamptz[], %s::text[])"
    " AS v(name, expected, next_fire_at, fired_at, jobs, error, now, job)"
    " WHERE s.name = v.name AND s.next_fire_at = v.expected RETURNING s.name"
)
