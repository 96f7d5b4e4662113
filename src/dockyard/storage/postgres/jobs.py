"""The jobs port on PostgreSQL: the hot path of DESIGN.md §5 and the jobs' upkeep.

- **Bulk submit**: one ``INSERT … SELECT FROM unnest(…)`` for the whole batch
  (:func:`insert_jobs`, also called by the scheduler's fires in their own transaction).
- **Claims in batches**: one statement picks up to ``limit`` runnable jobs of the executor kinds
  the worker offers in claim order with ``FOR UPDATE SKIP LOCKED`` (so workers on many hosts
  never wait on each other or take the same job), moves them to STARTING and opens their
  attempts (:func:`claim_sql`); jobs whose executor starts at once go to RUNNING, their
  attempts started by the same statement.
- **Batched completions**: the transitions a worker collected are written in one transaction,
  one statement per table and shape (``job_transitions.apply_all``), with the next claim in the
  same transaction. Each is guarded (``… WHERE id = … AND state = ANY(…)``): zero rows is a
  conflict, never a silent overwrite.

The statements are in ``sql/jobs.sql``; only the guarded update, whose SET list depends on the
transition, and :meth:`PostgresJobs.select` (``storage/sql.py``) are assembled here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dockyard.domain.records import Attempt, Job, JobId, NewJob
from dockyard.domain.specs.registry import kind_names
from dockyard.domain.states import ACTIVE_STATES, TERMINAL_STATES, JobState
from dockyard.domain.transitions import CLAIM, CLAIM_STARTED, Transition
from dockyard.storage.ports import ClaimRequest, Heartbeat, InsertedJob, JobQuery
from dockyard.storage.ports.jobs import LeaseEnd
from dockyard.storage.postgres.database import ROWS, Conn, Database
from dockyard.storage.postgres.job_transitions import apply_all
from dockyard.storage.postgres.queues import touch_worker
from dockyard.storage.queries import Queries
from dockyard.storage.rows import new_job_columns, new_job_record
from dockyard.storage.sql import list_jobs_sql

__all__ = ["CLAIM_SETTING", "PostgresJobs", "claim_sql", "insert_jobs"]

_SQL = Queries.load("dockyard.storage.postgres", "jobs.sql")
_INSERT = _SQL["insert"]
_BY_IDS = _SQL["by_ids"]
_BY_IDEMPOTENCY_KEYS = _SQL["by_idempotency_keys"]
_GET = _SQL["get"]
_ATTEMPTS_OF_JOB = _SQL["attempts_of_job"]
_ATTEMPTS_OF_JOBS = _SQL["attempts_of_jobs"]
_CLAIM = _SQL["claim"]
_CLAIM_IN_QUEUES = _SQL["claim_in_queues"]
_RENEW_LEASES = _SQL["renew_leases"]
_HELD = _SQL["held"]
_END_LEASES = _SQL["end_leases"]
_EXPIRED_LEASES = _SQL["expired_leases"]
_NEXT_RUNNABLE_AT = _SQL["next_runnable_at"]
_NEXT_RUNNABLE_AT_IN_QUEUES = _SQL["next_runnable_at_in_queues"]
_PRUNE_FINISHED = _SQL["prune_finished"]
_STALE_STATISTICS = _SQL["stale_statistics"]
_NO_SORT = _SQL["no_sort"]
#: What the claim's transaction sets before the claim statement (see :func:`_claim`).
CLAIM_SETTING = _NO_SORT

# jobs.sql spells the CLAIM edge and the terminal states as literals, as the partial indexes of
# schema.sql do; the domain remains their one definition, so a change there must reach the SQL.
if (
    CLAIM.expected_from != {JobState.RUNNABLE}
    or CLAIM.to is not JobState.STARTING
    or CLAIM_STARTED.expected_from != {JobState.RUNNABLE}
    or CLAIM_STARTED.to is not JobState.RUNNING
    or TERMINAL_STATES != {JobState.CANCELLED, JobState.FAILED, JobState.SUCCEEDED}
):
    raise ImportError("sql/jobs.sql spells job states that domain/states.py no longer has")

_ACTIVE = sorted(ACTIVE_STATES)


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
            applied = await apply_all(conn, transitions)
            if any(applied):
                await self._database.notify(conn)
            return applied

        return await self._database.run(apply)

    async def apply_and_claim(
        self, transitions: Sequence[Transition], request: ClaimRequest
    ) -> tuple[list[bool], list[Job]]:
        async def apply_and_claim(conn: Conn) -> tuple[list[bool], list[Job]]:
            applied = await apply_all(conn, transitions)
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
    offered in claim order, skipping rows other workers hold, move them to STARTING (RUNNING for
    the kinds that start at once) and open their attempts."""
    args: dict[str, Any] = {
        "now": request.now,
        "limit": request.limit,
        "worker_id": request.worker_id,
        "lease_until": request.lease_until,
        "executors": _kinds(request.executors),
        "starts_at_once": list(request.starts_at_once),
    }
    if request.queues is None:
        return _CLAIM, args
    return _CLAIM_IN_QUEUES, {**args, "queues": list(request.queues)}


async def _claim(conn: Conn, request: ClaimRequest) -> list[Job]:
    """Move up to ``request.limit`` runnable jobs to STARTING (or RUNNING) and open an attempt
    for each.

    The claim's plan must not depend on statistics: several indexes can serve ``state =
    'RUNNABLE'`` (jobs_state, jobs_claim_order, jobs_runnable), and a planner that guesses a
    small backlog (statistics older than a bulk submit) prices reading all of it and sorting it
    like walking jobs_claim_order, and may pick the first: every claim then reads the whole
    backlog (scale-findings §1). ``enable_sort = off`` for the claim's transaction leaves the
    one plan that needs no sort of the candidates, in either case; ``jit = off`` with it, since
    the penalty that setting adds to a sort's cost would otherwise make every claim worth
    compiling (0.8 s a claim). Both are sent in the claim's pipeline: no round trip of their
    own.
    """
    sql, args = claim_sql(request)
    async with conn.pipeline():
        await conn.execute(_NO_SORT)
        cursor = await conn.execute(sql, args)
    return [ROWS.job(row) for row in await cursor.fetchall()]
