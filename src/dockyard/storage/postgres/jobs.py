"""The jobs port on PostgreSQL: the hot path of DESIGN.md §5 and the jobs' upkeep.

- **Bulk submit**: one ``INSERT … SELECT FROM unnest(…)`` for the whole batch
  (:func:`insert_jobs`, also called by the scheduler's fires in their own transaction).
- **Claims in batches**: one statement picks up to ``limit`` runnable jobs of the executor kinds
  the worker offers in claim order with ``FOR UPDATE SKIP LOCKED`` (so workers on many hosts
  never wait on each other or take the same job), moves them to STARTING and opens their
  attempts (:func:`claim_sql`).
- **Batched completions**: the transitions a worker collected go to the server in one pipeline,
  one round trip and one commit for the batch, with the next claim in the same transaction
  (``_apply_all``). Each is one guarded ``UPDATE … WHERE id = … AND state = ANY(…)``: zero
  rows is a conflict, never a silent overwrite.

The statements are in ``sql/jobs.sql``; only the guarded update, whose SET list depends on the
transition, and :meth:`PostgresJobs.select` (``storage/sql.py``) are assembled here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from dockyard.domain.records import Attempt, Job, JobId, NewJob
from dockyard.domain.specs.registry import kind_names
from dockyard.domain.states import ACTIVE_STATES, TERMINAL_STATES, JobState
from dockyard.domain.transitions import CLAIM, Transition
from dockyard.storage.ports import ClaimRequest, Heartbeat, InsertedJob, JobQuery
from dockyard.storage.ports.jobs import LeaseEnd
from dockyard.storage.postgres.database import ROWS, Conn, Database
from dockyard.storage.postgres.queues import touch_worker
from dockyard.storage.queries import Queries
from dockyard.storage.rows import new_job_columns, new_job_record
from dockyard.storage.sql import UPDATABLE_COLUMNS, list_jobs_sql

__all__ = ["PostgresJobs", "claim_sql", "insert_jobs"]

_SQL = Queries.load("dockyard.storage.postgres", "jobs.sql")
_INSERT = _SQL["insert"]
_BY_IDS = _SQL["by_ids"]
_BY_IDEMPOTENCY_KEYS = _SQL["by_idempotency_keys"]
_GET = _SQL["get"]
_ATTEMPTS_OF_JOB = _SQL["attempts_of_job"]
_ATTEMPTS_OF_JOBS = _SQL["attempts_of_jobs"]
_CLAIM = _SQL["claim"]
_CLAIM_IN_QUEUES = _SQL["claim_in_queues"]
_CLOSE_ATTEMPT = _SQL["close_attempt"]
_START_ATTEMPT = _SQL["start_attempt"]
_RENEW_LEASES = _SQL["renew_leases"]
_HELD = _SQL["held"]
_END_LEASES = _SQL["end_leases"]
_EXPIRED_LEASES = _SQL["expired_leases"]
_NEXT_RUNNABLE_AT = _SQL["next_runnable_at"]
_NEXT_RUNNABLE_AT_IN_QUEUES = _SQL["next_runnable_at_in_queues"]
_PRUNE_FINISHED = _SQL["prune_finished"]
_STALE_STATISTICS = _SQL["stale_statistics"]

# jobs.sql spells the CLAIM edge and the terminal states as literals, as the partial indexes of
# schema.sql do; the domain remains their one definition, so a change there must reach the SQL.
if (
    CLAIM.expected_from != {JobState.RUNNABLE}
    or CLAIM.to is not JobState.STARTING
    or TERMINAL_STATES != {JobState.CANCELLED, JobState.FAILED, JobState.SUCCEEDED}
):
    raise ImportError("sql/jobs.sql spells job states that domain/states.py no longer has")

_ACTIVE = sorted(ACTIVE_STATES)
_JSON_COLUMNS = frozenset({"payload", "result"})


class PostgresJobs:
    """Jobs and their attempts in the ``jobs`` and ``attempts`` tables."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, jobs: Sequence[NewJob]) -> list[InsertedJob]:
        return await self._database.run(lambda conn: insert_jobs(self._database, conn, jobs))

    async def get(self, job_id: JobId) -> Job | None:
        async def get(conn: Conn) -> Job | None:
            row = await (await conn.execute(_GET, {"id": job_id})).fetchone()
            if row is None:
                return None
            attempts = await (await conn.execute(_ATTEMPTS_OF_JOB, {"id": job_id})).fetchall()
            return ROWS.job(row, tuple(ROWS.attempt(a) for a in attempts))

        return await self._database.run(get, snapshot=True)

    async def select(self, query: JobQuery) -> list[Job]:
        sql, args = list_jobs_sql(
            query,
            mark="%s",
            one_of=lambda column, values: (f"{column} = ANY(%s)", [list(values)]),
        )

        async def select(conn: Conn) -> list[Job]:
            rows = await (await conn.execute(sql, args)).fetchall()
            attempts: dict[str, list[Attempt]] = {row["id"]: [] for row in rows}
            if rows:
                cursor = await conn.execute(_ATTEMPTS_OF_JOBS, {"ids": list(attempts)})
                for row in await cursor.fetchall():
                    attempts[row["job_id"]].append(ROWS.attempt(row))
            return [ROWS.job(row, tuple(attempts[row["id"]])) for row in rows]

        return await self._database.run(select, snapshot=True)

    async def claim(self, request: ClaimRequest) -> list[Job]:
        return await self._database.run(lambda conn: _claim(conn, request))

    async def apply(self, transitions: Sequence[Transition]) -> list[bool]:
        async def apply(conn: Conn) -> list[bool]:
            applied = await _apply_all(conn, transitions)
            if any(applied):
                await self._database.notify(conn)
            return applied

        return await self._database.run(apply)

    async def apply_and_claim(
        self, transitions: Sequence[Transition], request: ClaimRequest
    ) -> tuple[list[bool], list[Job]]:
        async def apply_and_claim(conn: Conn) -> tuple[list[bool], list[Job]]:
            applied = await _apply_all(conn, transitions)
            if any(applied):
                await self._database.notify(conn)
            return applied, await _claim(conn, request)

        return await self._database.run(apply_and_claim)

    async def heartbeat(self, beat: Heartbeat) -> frozenset[JobId]:
        ids = list(beat.job_ids)
        held_args = {"ids": ids, "worker_id": beat.worker_id, "active": _ACTIVE}

        async def renew(conn: Conn) -> frozenset[JobId]:
            if beat.lease_until is not None:
                renewal = {"ids": ids, "worker_id": beat.worker_id, "lease_until": beat.lease_until}
                await conn.execute(_RENEW_LEASES, renewal)
                await touch_worker(conn, beat.worker_id, beat.now)
            if not ids:
                return frozenset()
            held = await (await conn.execute(_HELD, held_args)).fetchall()
            return frozenset(ids) - {row["id"] for row in held}

        # No NOTIFY: renewing a lease changes nothing anyone waits for.
        return await self._database.run(renew, write=beat.lease_until is not None)

    async def end_leases(self, end: LeaseEnd) -> int:
        if not end.job_ids:
            return 0
        args = {"ids": list(end.job_ids), "worker_id": end.worker_id, "active": _ACTIVE}

        async def let_go(conn: Conn) -> int:
            return (await conn.execute(_END_LEASES, args)).rowcount

        # No NOTIFY: nothing waits for a lease to end (a retry by request is refused meanwhile).
        return await self._database.run(let_go)

    async def expired_leases(self, now: datetime, limit: int) -> list[Job]:
        rows = await self._database.fetchall(
            _EXPIRED_LEASES, {"active": _ACTIVE, "now": now, "limit": limit}
        )
        return [ROWS.job(row) for row in rows]

    async def next_runnable_at(
        self, queues: tuple[str, ...] | None, executors: tuple[str, ...] | None = None
    ) -> datetime | None:
        kinds = {"executors": _kinds(executors)}
        if queues is None:
            row = await self._database.fetchone(_NEXT_RUNNABLE_AT, kinds)
        else:
            row = await self._database.fetchone(
                _NEXT_RUNNABLE_AT_IN_QUEUES, {**kinds, "queues": list(queues)}
            )
        return None if row is None else row["not_before"]

    async def prune_finished(self, before: datetime, limit: int) -> list[JobId]:
        async def prune(conn: Conn) -> list[JobId]:
            cursor = await conn.execute(_PRUNE_FINISHED, {"before": before, "limit": limit})
            return [JobId(row["id"]) for row in await cursor.fetchall()]

        return await self._database.run(prune)

    async def refresh_statistics(self) -> bool:
        async def refresh(conn: Conn) -> bool:
            cursor = await conn.execute(_STALE_STATISTICS)
            stale = [row["relname"] for row in await cursor.fetchall()]
            if stale:
                # Table names from pg_stat_user_tables, among the two asked for: no injection.
                await conn.execute(f"ANALYZE {', '.join(stale)}")
            return bool(stale)

        return await self._database.run(refresh, write=False)


async def insert_jobs(database: Database, conn: Conn, jobs: Sequence[NewJob]) -> list[InsertedJob]:
    """Insert ``jobs`` in the caller's transaction; an idempotency key seen before returns the
    earlier job instead. Sends NOTIFY when a job was created."""
    if not jobs:
        return []
    encoded = [new_job_columns(job) for job in jobs]
    payloads = [payload for payload, _, _ in encoded]
    columns = {
        "ids": [job.id for job in jobs],
        "names": [job.name for job in jobs],
        "definition_names": [job.definition_name for job in jobs],
        "definition_revisions": [job.definition_revision for job in jobs],
        "queues": [job.queue for job in jobs],
        "group_keys": [job.group_key for job in jobs],
        "priorities": [job.priority for job in jobs],
        "idempotency_keys": [job.idempotency_key for job in jobs],
        "payloads": payloads,
        "overrides": [overrides for _, overrides, _ in encoded],
        "parameters": [parameters for _, _, parameters in encoded],
        "max_attempts": [job.max_attempts for job in jobs],
        "created_at": [job.created_at for job in jobs],
        "not_before": [job.not_before for job in jobs],
    }
    cursor = await conn.execute(_INSERT, columns)
    created = {row["id"] for row in await cursor.fetchall()}
    missing = [job for job in jobs if job.id not in created]
    keys = [job.idempotency_key for job in missing if job.idempotency_key]
    by_key = await _jobs_by(conn, _BY_IDEMPOTENCY_KEYS, "idempotency_key", keys)
    # Only a retry of this very insert leaves a job neither created nor found by key.
    unexplained = [job.id for job in missing if job.idempotency_key not in by_key]
    by_id = await _jobs_by(conn, _BY_IDS, "id", unexplained)
    if created:
        await database.notify(conn)
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


async def _jobs_by(conn: Conn, sql: str, column: str, values: list[Any]) -> dict[str, Job]:
    if not values:
        return {}
    cursor = await conn.execute(sql, {"values": values})
    return {row[column]: ROWS.job(row) for row in await cursor.fetchall()}


def _kinds(executors: tuple[str, ...] | None) -> list[str]:
    """The executor kinds a claim takes: those offered, or every registered kind (a stored job's
    kind is always a registered one: its definition was parsed by the registry)."""
    return list(kind_names() if executors is None else executors)


def claim_sql(request: ClaimRequest) -> tuple[str, dict[str, Any]]:
    """The claim statement and its arguments: lock up to ``limit`` claimable jobs of the kinds
    offered in claim order, skipping rows other workers hold, move them to STARTING and open
    their attempts."""
    args: dict[str, Any] = {
        "now": request.now,
        "limit": request.limit,
        "worker_id": request.worker_id,
        "lease_until": request.lease_until,
        "executors": _kinds(request.executors),
    }
    if request.queues is None:
        return _CLAIM, args
    return _CLAIM_IN_QUEUES, {**args, "queues": list(request.queues)}


async def _claim(conn: Conn, request: ClaimRequest) -> list[Job]:
    """Move up to ``request.limit`` runnable jobs to STARTING and open an attempt for each."""
    cursor = await conn.execute(*claim_sql(request))
    return [ROWS.job(row) for row in await cursor.fetchall()]


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
        ends = [
            transitions[i] for i in indexes if transitions[i].attempt_end is not None and applied[i]
        ]
        if ends:
            await conn.cursor().executemany(_CLOSE_ATTEMPT, [_close_args(t) for t in ends])
        starts = [
            {"started_at": transitions[i].attempt_started_at, "job_id": transitions[i].job_id}
            for i in indexes
            if transitions[i].attempt_started_at is not None and applied[i]
        ]
        if starts:
            await conn.cursor().executemany(_START_ATTEMPT, starts)
    return applied


def _close_args(transition: Transition) -> dict[str, Any]:
    end = transition.attempt_end
    assert end is not None
    return {
        "stopped_at": end.stopped_at,
        "exit_code": end.exit_code,
        "reason": end.reason,
        "status_reason": end.status_reason,
        "counted": end.counted,
        "image": end.image,
        "job_id": transition.job_id,
    }


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
    if transition.no_live_lease_at is not None:
        where += " AND (lease_expires_at IS NULL OR lease_expires_at < %s)"
        args.append(transition.no_live_lease_at)
    return f"UPDATE jobs SET {', '.join(sets)} WHERE {where} RETURNING 1", args
