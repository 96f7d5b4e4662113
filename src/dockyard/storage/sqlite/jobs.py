"""The jobs port on SQLite: inserts, claims, guarded transitions, leases and pruning.

Every write runs under ``BEGIN IMMEDIATE`` (:meth:`Database.write`), so claims from several
processes are serialised by SQLite's single writer: a claim is one
``UPDATE … WHERE seq IN (SELECT … LIMIT n) RETURNING *`` and two workers never claim the same job;
it takes only jobs of the executor kinds the worker offers (each job stores its definition's).
A transition is applied with one guarded ``UPDATE … WHERE id = ? AND state IN (…)``; zero rows
means the job changed meanwhile and nothing is forced. The statements are in ``sql/jobs.sql``.

:func:`insert_jobs` is shared with the schedules port, whose fires insert jobs in their own
transaction.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from dockyard.domain.records import Attempt, Job, JobId, NewJob
from dockyard.domain.states import ACTIVE_STATES, TERMINAL_STATES, JobState
from dockyard.domain.transitions import CLAIM, CLAIM_STARTED, Transition
from dockyard.storage.ports import ClaimRequest, Heartbeat, InsertedJob, JobQuery
from dockyard.storage.ports.jobs import LeaseEnd
from dockyard.storage.rows import new_job_columns, new_job_record, outputs_json
from dockyard.storage.sql import UPDATABLE_COLUMNS, list_jobs_sql
from dockyard.storage.sqlite.database import (
    ROWS,
    Database,
    epoch,
    fragment,
    load_queries,
    marks,
    moment,
)
from dockyard.storage.sqlite.queues import touch_worker

__all__ = ["SQLiteJobs", "claim_jobs", "insert_jobs"]

_SQL = load_queries("jobs.sql")

# jobs.sql names these states as literals (partial indexes need constants): keep them in step.
assert CLAIM.expected_from == frozenset({JobState.RUNNABLE}) and CLAIM.to is JobState.STARTING
assert CLAIM_STARTED.expected_from == {JobState.RUNNABLE} and CLAIM_STARTED.to is JobState.RUNNING
assert frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}) == TERMINAL_STATES

#: The claimable job's conditions besides its state and time, shared by the claim and
#: next_runnable_at (see jobs.sql).
_CLAIMABLE = {
    "group_head": fragment(_SQL, "group_head"),
    "not_paused": fragment(_SQL, "not_paused"),
}
_IN_QUEUES = fragment(_SQL, "in_queues")
_OF_KINDS = fragment(_SQL, "of_kinds")
_CLAIMED_STATE = fragment(_SQL, "claimed_state")
_CLAIMED_STARTED = fragment(_SQL, "claimed_started")
_EXPECTED_WORKER = fragment(_SQL, "expected_worker")
_LEASE_EXPIRED = fragment(_SQL, "lease_expired")
_NO_LIVE_LEASE = fragment(_SQL, "no_live_lease")

_ACTIVE = tuple(sorted(ACTIVE_STATES))
_TIME_COLUMNS = frozenset(
    {"created_at", "not_before", "started_at", "stopped_at", "lease_expires_at"}
)
_JSON_COLUMNS = frozenset({"payload", "result"})
#: Values per IN list when reading jobs back (SQLite caps the parameters of one statement).
_CHUNK = 500


class SQLiteJobs:
    """The hot path and the jobs' upkeep, on the store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, jobs: Sequence[NewJob]) -> list[InsertedJob]:
        def insert(db: sqlite3.Connection) -> list[InsertedJob]:
            with self._database.write(db):
                return insert_jobs(db, jobs)

        return await self._database.run(insert)

    async def get(self, job_id: JobId) -> Job | None:
        def get(db: sqlite3.Connection) -> Job | None:
            row = db.execute(_SQL["get"], (job_id,)).fetchone()
            if row is None:
                return None
            attempts = db.execute(_SQL["attempts"], (job_id,)).fetchall()
            return ROWS.job(row, tuple(ROWS.attempt(a) for a in attempts))

        return await self._database.run(get)

    async def select(self, query: JobQuery) -> list[Job]:
        sql, args = list_jobs_sql(
            query,
            mark="?",
            one_of=lambda column, values: (f"{column} IN ({marks(len(values))})", list(values)),
        )

        def select(db: sqlite3.Connection) -> list[Job]:
            rows = db.execute(sql, args).fetchall()
            attempts: dict[str, list[Attempt]] = {row["id"]: [] for row in rows}
            if rows:
                statement = _SQL["attempts_of_jobs"].format(ids=marks(len(rows)))
                for row in db.execute(statement, list(attempts)):
                    attempts[row["job_id"]].append(ROWS.attempt(row))
            return [ROWS.job(row, tuple(attempts[row["id"]])) for row in rows]

        return await self._database.run(select)

    async def claim(self, request: ClaimRequest) -> list[Job]:
        def claim(db: sqlite3.Connection) -> list[Job]:
            with self._database.write(db):
                return claim_jobs(db, request)

        return await self._database.run(claim)

    async def apply(self, transitions: Sequence[Transition]) -> list[bool]:
        def apply(db: sqlite3.Connection) -> list[bool]:
            with self._database.write(db):
                return [_apply_one(db, transition) for transition in transitions]

        return await self._database.run(apply)

    async def apply_and_claim(
        self, transitions: Sequence[Transition], request: ClaimRequest
    ) -> tuple[list[bool], list[Job]]:
        def apply_and_claim(db: sqlite3.Connection) -> tuple[list[bool], list[Job]]:
            with self._database.write(db):
                applied = [_apply_one(db, transition) for transition in transitions]
                return applied, claim_jobs(db, request)

        return await self._database.run(apply_and_claim)

    async def heartbeat(self, beat: Heartbeat) -> frozenset[JobId]:
        ids = list(beat.job_ids)
        renew_sql = _SQL["renew_leases"].format(ids=marks(len(ids)))
        held_sql = _SQL["held"].format(ids=marks(len(ids)))

        def renew(db: sqlite3.Connection) -> frozenset[JobId]:
            if beat.lease_until is not None:
                with self._database.write(db):
                    db.execute(renew_sql, (beat.lease_until.timestamp(), *ids, beat.worker_id))
                    touch_worker(db, beat.worker_id, beat.now)
            if not ids:
                return frozenset()
            held = db.execute(held_sql, (*ids, beat.worker_id, *_ACTIVE)).fetchall()
            return frozenset(ids) - {row[0] for row in held}

        return await self._database.run(renew)

    async def end_leases(self, end: LeaseEnd) -> int:
        if not end.job_ids:
            return 0
        sql = _SQL["end_leases"].format(ids=marks(len(end.job_ids)))

        def let_go(db: sqlite3.Connection) -> int:
            with self._database.write(db):
                return db.execute(sql, (*end.job_ids, end.worker_id, *_ACTIVE)).rowcount

        return await self._database.run(let_go)

    async def expired_leases(self, now: datetime, limit: int) -> list[Job]:
        rows = await self._database.run(
            lambda db: db.execute(
                _SQL["expired_leases"], (*_ACTIVE, now.timestamp(), limit)
            ).fetchall()
        )
        return [ROWS.job(row) for row in rows]

    async def next_runnable_at(
        self, queues: tuple[str, ...] | None, executors: tuple[str, ...] | None = None
    ) -> datetime | None:
        sql = _next_runnable_sql(_count(queues), _count(executors))
        args = (*(queues or ()), *(executors or ()))
        row = await self._database.run(lambda db: db.execute(sql, args).fetchone())
        return None if row is None else moment(row[0])

    async def prune_finished(self, before: datetime, limit: int) -> list[JobId]:
        def prune(db: sqlite3.Connection) -> list[JobId]:
            with self._database.write(db):
                rows = db.execute(_SQL["prune_finished"], (before.timestamp(), limit))
                return [JobId(row[0]) for row in rows]

        return await self._database.run(prune)

    async def refresh_statistics(self) -> bool:
        # Claims name their index (INDEXED BY), so they do not depend on statistics.
        return False


def _count(values: tuple[str, ...] | None) -> int | None:
    return None if values is None else len(values)


def _in_queues(count: int | None) -> str:
    return "" if count is None else _IN_QUEUES.format(queues=marks(count))


def _of_kinds(count: int | None) -> str:
    return "" if count is None else _OF_KINDS.format(kinds=marks(count))


@functools.lru_cache(maxsize=64)
def _claim_sql(queue_count: int | None, kind_count: int | None = None, started: int = 0) -> str:
    """The claim from every queue (None) or from ``queue_count`` of them, of every executor kind
    (None) or of ``kind_count`` of them, ``started`` of which start at once."""
    index = "jobs_runnable" if queue_count == 1 else "jobs_claim_order"
    state, started_at = "'STARTING'", "started_at"
    if started:
        state = _CLAIMED_STATE.format(started=marks(started))
        started_at = _CLAIMED_STARTED.format(started=marks(started))
    return _SQL["claim"].format(
        index=index,
        state=state,
        started=started_at,
        queues=_in_queues(queue_count),
        kinds=_of_kinds(kind_count),
        **_CLAIMABLE,
    )


@functools.lru_cache(maxsize=64)
def _next_runnable_sql(queue_count: int | None, kind_count: int | None = None) -> str:
    """When the next job becomes claimable, in every queue (None) or in ``queue_count``, of
    every executor kind (None) or of ``kind_count``."""
    return _SQL["next_runnable_at"].format(
        queues=_in_queues(queue_count), kinds=_of_kinds(kind_count), **_CLAIMABLE
    )


def claim_jobs(db: sqlite3.Connection, request: ClaimRequest) -> list[Job]:
    """Move up to ``request.limit`` runnable jobs to STARTING (RUNNING, their attempts started,
    for the kinds that start at once) and open an attempt for each, in the caller's
    ``BEGIN IMMEDIATE`` transaction. The claim proper is the first statement run."""
    queues, kinds, started = request.queues, request.executors, request.starts_at_once
    claimed_at = request.now.timestamp()
    args: list[Any] = [*started, *started, claimed_at] if started else []
    args += [
        request.worker_id,
        request.lease_until.timestamp(),
        request.now.timestamp(),
        *(queues or ()),
        *(kinds or ()),
        request.limit,
    ]
    rows = db.execute(_claim_sql(_count(queues), _count(kinds), len(started)), args).fetchall()
    running = JobState.RUNNING.value
    db.executemany(
        _SQL["open_attempt"],
        [
            (
                row["id"],
                row["attempt_count"],
                request.worker_id,
                claimed_at,
                claimed_at if row["state"] == running else None,
            )
            for row in rows
        ],
    )
    claimed = [ROWS.job(row) for row in rows]
    claimed.sort(key=lambda job: (-job.priority, job.created_at))
    return claimed


@functools.lru_cache(maxsize=256)
def _apply_sql(
    columns: tuple[str, ...], states: int, worker: bool, lease: bool, no_live_lease: bool
) -> str:
    """The guarded update setting ``columns`` besides the state, from one of ``states``."""
    guards = [_EXPECTED_WORKER] if worker else []
    if lease:
        guards.append(_LEASE_EXPIRED)
    if no_live_lease:
        guards.append(_NO_LIVE_LEASE)
    return _SQL["apply"].format(
        updates="".join(f", {column} = ?" for column in columns),
        states=marks(states),
        guards=" ".join(guards),
    )


def _apply_one(db: sqlite3.Connection, transition: Transition) -> bool:
    columns = tuple(transition.updates)
    for column in columns:
        if column not in UPDATABLE_COLUMNS:
            raise ValueError(f"transition may not set {column}")
    args: list[Any] = [transition.to.value, transition.reason]
    args.extend(_encode(column, value) for column, value in transition.updates.items())
    args.append(transition.job_id)
    args.extend(sorted(transition.expected_from))
    if transition.expected_worker is not None:
        args.append(transition.expected_worker)
    if transition.lease_expired_before is not None:
        args.append(transition.lease_expired_before.timestamp())
    if transition.no_live_lease_at is not None:
        args.append(transition.no_live_lease_at.timestamp())
    sql = _apply_sql(
        columns,
        len(transition.expected_from),
        transition.expected_worker is not None,
        transition.lease_expired_before is not None,
        transition.no_live_lease_at is not None,
    )
    applied = db.execute(sql, args).rowcount == 1
    end = transition.attempt_end
    if applied and end is not None:
        if end.unstarted:
            db.execute(_SQL["unstart_job"], (transition.job_id,))
        # An attempt is closed once, by the transition that ended it: by its worker, or first
        # by a cancel or a rescue. A transition whose guard failed closes nothing.
        db.execute(
            _SQL["close_attempt"],
            (
                end.stopped_at.timestamp(),
                end.exit_code,
                end.reason,
                end.status_reason,
                int(end.counted),
                end.image,
                outputs_json(end.outputs),
                int(end.unstarted),
                transition.job_id,
                transition.job_id,
            ),
        )
    if applied and transition.attempt_started_at is not None:
        db.execute(
            _SQL["start_attempt"],
            (transition.attempt_started_at.timestamp(), transition.job_id, transition.job_id),
        )
    return applied


def _encode(column: str, value: object) -> object:
    if column in _TIME_COLUMNS:
        return epoch(value)  # type: ignore[arg-type]
    if column in _JSON_COLUMNS:
        return json.dumps(value)
    return value


def _select_jobs(db: sqlite3.Connection, statement: str, values: Sequence[Any]) -> dict[str, Job]:
    """The jobs ``statement`` (``by_ids`` or ``by_idempotency_keys``) finds for ``values``."""
    found: dict[str, Job] = {}
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        sql = _SQL[statement].format(values=marks(len(chunk)))
        rows = db.execute(sql, chunk).fetchall()
        found.update((row["id"], ROWS.job(row)) for row in rows)
    return found


def _new_job(job: NewJob, row: tuple[Any, ...], times: dict[float, datetime]) -> Job:
    """The job just inserted from ``row`` (of :func:`insert_jobs`), as ``ROWS.job`` would read it
    back (``times`` remembers the times of a batch, which mostly share one)."""
    created_at = times.get(row[13]) or times.setdefault(row[13], _time(row[13]))
    not_before = times.get(row[14]) or times.setdefault(row[14], _time(row[14]))
    return new_job_record(
        job,
        payload=None if job.payload is None else json.loads(row[9]),
        created_at=created_at,
        not_before=not_before,
    )


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def insert_jobs(db: sqlite3.Connection, jobs: Sequence[NewJob]) -> list[InsertedJob]:
    """Insert ``jobs`` in the caller's transaction; an idempotency key seen before returns the
    earlier job instead."""
    runnable = JobState.RUNNABLE.value
    seconds: dict[datetime, float] = {}  # the jobs of a batch mostly share their times

    def at(value: datetime) -> float:
        found = seconds.get(value)
        if found is None:
            found = seconds[value] = value.timestamp()
        return found

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
            at(job.created_at),
            at(job.not_before),
        )
        for job in jobs
    ]
    db.executemany(_SQL["insert"], rows)
    # Only a job with an idempotency key can have been skipped: read those back to tell which;
    # every other row is exactly what was just written.
    keyed = [job.id for job in jobs if job.idempotency_key is not None]
    found = _select_jobs(db, "by_ids", keyed) if keyed else {}
    missing = [
        job.idempotency_key
        for job in jobs
        if job.idempotency_key is not None and job.id not in found
    ]
    existing = _select_jobs(db, "by_idempotency_keys", missing) if missing else {}
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
