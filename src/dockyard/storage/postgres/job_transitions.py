"""Guarded transitions of jobs on PostgreSQL, a batch at a time: one statement per table.

A worker's batch (the ends of the jobs that finished while the last batch was written, the
starts of jobs that prepare, a cancel, a rescue) is written as few statements as its shapes
allow: the transitions that set the same columns under the same guards are one
``UPDATE jobs … FROM unnest(…)`` whose ``RETURNING`` names the jobs whose guard held (zero rows
for a job is a conflict, never a silent overwrite), and the attempts they close are one
``UPDATE attempts … FROM unnest(…)``. One statement instead of one per job also means one
statement-level ``job_state_change`` trigger call per batch. A job with two transitions in the
batch (its start and its end) has them in successive rounds, so they apply in order.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from dockyard.domain.records import JobId
from dockyard.domain.transitions import Transition
from dockyard.storage.postgres.database import Conn
from dockyard.storage.queries import Queries
from dockyard.storage.rows import outputs_json
from dockyard.storage.sql import UPDATABLE_COLUMNS

__all__ = ["apply_all"]

_SQL = Queries.load("dockyard.storage.postgres", "jobs.sql")
_CLOSE_ATTEMPTS = _SQL["close_attempts"]
_START_ATTEMPT = _SQL["start_attempt"]
_UNSTART_JOB = _SQL["unstart_job"]

#: The SQL type of each column a transition may set (the arrays ``unnest`` reads are typed).
_TYPES = {
    "status_reason": "text",
    "not_before": "timestamptz",
    "started_at": "timestamptz",
    "stopped_at": "timestamptz",
    "worker_id": "text",
    "lease_expires_at": "timestamptz",
    "exit_code": "int",
    "result": "jsonb",
    "attempts_used": "int",
}
if set(_TYPES) != UPDATABLE_COLUMNS:
    raise ImportError("job_transitions._TYPES must name every column of UPDATABLE_COLUMNS")

#: A batch's transitions that share one statement: the columns set, then which guards apply.
Shape = tuple[tuple[str, ...], bool, bool, bool]


def _shape(transition: Transition) -> Shape:
    for column in transition.updates:
        if column not in UPDATABLE_COLUMNS:
            raise ValueError(f"transition may not set {column}")
    return (
        tuple(transition.updates),
        transition.expected_worker is not None,
        transition.lease_expired_before is not None,
        transition.no_live_lease_at is not None,
    )


@functools.lru_cache(maxsize=64)
def _update_sql(shape: Shape) -> str:
    """The guarded update of every job of one shape: arrays of ids, expected states (joined
    with commas), new states, reasons, the columns' values, then the guards' values."""
    columns, worker, lease, live = shape
    arrays = ["%s::text[]", "%s::text[]", "%s::text[]", "%s::text[]"]
    names = ["id", "expected", "state", "reason"]
    sets = ["state = v.state", "status_reason = v.reason"]
    for number, column in enumerate(columns):
        kind = _TYPES[column]
        arrays.append(f"%s::{'text' if kind == 'jsonb' else kind}[]")
        names.append(f"c{number}")
        sets.append(f"{column} = v.c{number}" + ("::jsonb" if kind == "jsonb" else ""))
    where = ["jobs.id = v.id", "jobs.state = ANY(string_to_array(v.expected, ','))"]
    for present, name, kind, condition in (
        (worker, "worker", "text", "jobs.worker_id = v.worker"),
        (lease, "lease_before", "timestamptz", "jobs.lease_expires_at < v.lease_before"),
        (
            live,
            "live_at",
            "timestamptz",
            "(jobs.lease_expires_at IS NULL OR jobs.lease_expires_at < v.live_at)",
        ),
    ):
        if present:
            arrays.append(f"%s::{kind}[]")
            names.append(name)
            where.append(condition)
    return (
        f"UPDATE jobs SET {', '.join(sets)}"
        f" FROM unnest({', '.join(arrays)}) AS v({', '.join(names)})"
        f" WHERE {' AND '.join(where)} RETURNING jobs.id"
    )


def _value(column: str, value: object) -> object:
    return json.dumps(value) if _TYPES[column] == "jsonb" and value is not None else value


def _update_args(shape: Shape, members: Sequence[Transition]) -> list[list[Any]]:
    columns, worker, lease, live = shape
    args: list[list[Any]] = [
        [t.job_id for t in members],
        [",".join(sorted(t.expected_from)) for t in members],
        [t.to.value for t in members],
        [t.reason for t in members],
    ]
    args += [[_value(column, t.updates[column]) for t in members] for column in columns]
    if worker:
        args.append([t.expected_worker for t in members])
    if lease:
        args.append([t.lease_expired_before for t in members])
    if live:
        args.append([t.no_live_lease_at for t in members])
    return args


async def apply_all(conn: Conn, transitions: Sequence[Transition]) -> list[bool]:
    """Every transition's guarded write, in the caller's transaction; False where its guard
    did not hold."""
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
        shapes: dict[Shape, list[int]] = {}
        for index in indexes:
            shapes.setdefault(_shape(transitions[index]), []).append(index)
        for shape, members in shapes.items():
            batch = [transitions[i] for i in members]
            cursor = await conn.execute(_update_sql(shape), _update_args(shape, batch))
            done = {row["id"] for row in await cursor.fetchall()}
            for index in members:
                applied[index] = transitions[index].job_id in done
        applying = [transitions[i] for i in indexes if applied[i]]
        await _attempts(conn, applying)
    return applied


async def _attempts(conn: Conn, applied: Sequence[Transition]) -> None:
    """Close the attempts the applied transitions end (one statement), start those they start."""
    ends = [t for t in applied if t.attempt_end is not None]
    unstarted = [{"job_id": t.job_id} for t in ends if t.attempt_end and t.attempt_end.unstarted]
    if unstarted:  # before the close: it compares the job's start with its attempt's
        await conn.cursor().executemany(_UNSTART_JOB, unstarted)
    if ends:
        closing = [t.attempt_end for t in ends]
        await conn.execute(
            _CLOSE_ATTEMPTS,
            {
                "job_ids": [t.job_id for t in ends],
                "stopped_at": [end.stopped_at for end in closing if end],
                "exit_codes": [end.exit_code for end in closing if end],
                "reasons": [end.reason for end in closing if end],
                "status_reasons": [end.status_reason for end in closing if end],
                "counted": [end.counted for end in closing if end],
                "images": [end.image for end in closing if end],
                "outputs": [outputs_json(end.outputs) for end in closing if end],
                "unstarted": [end.unstarted for end in closing if end],
            },
        )
    starts = [
        {"started_at": t.attempt_started_at, "job_id": t.job_id}
        for t in applied
        if t.attempt_started_at is not None
    ]
    if starts:
        await conn.cursor().executemany(_START_ATTEMPT, starts)
