"""The rules port on SQLite: rules, the invocations of their targets, and the causation depth of
the jobs they submit.

The invocations table belongs here: the events port records invocations
(:func:`record_invocations`) and prunes delivered ones (:func:`prune_delivered`) in its own
transactions, with these functions. So does ``job_causation``, which :meth:`SQLiteRules.submit_job`
writes with the job (inserted by the jobs port's :func:`insert_jobs`) and the events port reads
when it routes. The statements are in ``sql/rules.sql``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dockyard.domain.records import NewJob
from dockyard.domain.rules import Invocation, InvocationState, Rule, spec_document
from dockyard.storage.ports import InsertedJob, InvocationUpdate, NewInvocation
from dockyard.storage.sqlite.database import ROWS, Database, epoch, load_queries, marks, moment
from dockyard.storage.sqlite.jobs import insert_jobs

__all__ = ["SQLiteRules", "prune_delivered", "record_invocations"]

_SQL = load_queries("rules.sql")


class SQLiteRules:
    """Rules and invocations, on the store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, rule: Rule) -> bool:
        def insert(db: sqlite3.Connection) -> bool:
            with self._database.write(db):
                return db.execute(_SQL["insert"], _rule_row(rule)).rowcount == 1

        return await self._database.run(insert)

    async def get(self, name: str) -> Rule | None:
        row = await self._database.run(lambda db: db.execute(_SQL["get"], (name,)).fetchone())
        return None if row is None else ROWS.rule(row)

    async def all(self, enabled_only: bool = False) -> list[Rule]:
        sql = _SQL["enabled"] if enabled_only else _SQL["all"]
        rows = await self._database.run(lambda db: db.execute(sql).fetchall())
        return [ROWS.rule(row) for row in rows]

    async def replace(self, rule: Rule) -> bool:
        name, spec, enabled, _, updated_at = _rule_row(rule)

        def replace(db: sqlite3.Connection) -> bool:
            with self._database.write(db):
                return db.execute(_SQL["replace"], (spec, enabled, updated_at, name)).rowcount == 1

        return await self._database.run(replace)

    async def delete(self, name: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            with self._database.write(db):
                db.execute(_SQL["delete_invocations"], (name,))
                return db.execute(_SQL["delete"], (name,)).rowcount == 1

        return await self._database.run(delete)

    async def due_invocations(self, now: datetime, limit: int) -> list[Invocation]:
        rows = await self._database.run(
            lambda db: db.execute(_SQL["due_invocations"], (now.timestamp(), limit)).fetchall()
        )
        return [ROWS.invocation(row) for row in rows]

    async def next_invocation_at(self) -> datetime | None:
        row = await self._database.run(lambda db: db.execute(_SQL["next_invocation_at"]).fetchone())
        return None if row is None or row[0] is None else moment(row[0])

    async def update_invocations(self, updates: Sequence[InvocationUpdate]) -> None:
        rows = [
            (
                u.state.value,
                u.attempts,
                epoch(u.next_attempt_at),
                u.result,
                u.error,
                u.now.timestamp(),
                u.id,
            )
            for u in updates
        ]

        def update(db: sqlite3.Connection) -> None:
            with self._database.write(db):
                db.executemany(_SQL["update_invocation"], rows)

        await self._database.run(update)

    async def invocations(
        self, rule: str, state: InvocationState | None, limit: int
    ) -> list[Invocation]:
        args: tuple[Any, ...]
        if state is None:
            sql, args = _SQL["invocations"], (rule, limit)
        else:
            sql, args = _SQL["invocations_in_state"], (rule, state.value, limit)
        rows = await self._database.run(lambda db: db.execute(sql, args).fetchall())
        return [ROWS.invocation(row) for row in rows]

    async def retry_invocations(self, rule: str, ids: Sequence[str] | None, now: datetime) -> int:
        args: tuple[Any, ...] = (now.timestamp(), now.timestamp(), rule)
        if ids is None:
            sql = _SQL["retry_dead"]
        else:
            sql, args = _SQL["retry_dead_ids"].format(ids=marks(len(ids))), (*args, *ids)

        def retry(db: sqlite3.Connection) -> int:
            with self._database.write(db):
                return db.execute(sql, args).rowcount

        return await self._database.run(retry)

    async def submit_job(self, job: NewJob, depth: int) -> InsertedJob:
        def submit(db: sqlite3.Connection) -> InsertedJob:
            with self._database.write(db):
                (inserted,) = insert_jobs(db, [job])
                db.execute(_SQL["record_causation"], (inserted.job.id, depth))
                return inserted

        return await self._database.run(submit)


def record_invocations(
    db: sqlite3.Connection, invocations: Sequence[NewInvocation], now: datetime
) -> int:
    """Record ``invocations`` in the caller's transaction (a repeat, or one whose rule is gone,
    is dropped); return how many were recorded."""
    at = now.timestamp()
    recorded = 0
    for item in invocations:
        due = at if item.state is InvocationState.PENDING else None
        recorded += db.execute(
            _SQL["record_invocation"],
            (
                item.id,
                item.rule,
                item.target,
                item.event["id"],
                json.dumps(item.event),
                item.state.value,
                due,
                item.error,
                item.depth,
                at,
                at,
                item.rule,
            ),
        ).rowcount
    return recorded


def prune_delivered(db: sqlite3.Connection, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` invocations DELIVERED (or never made) before ``before``, in the
    caller's transaction; return how many."""
    return db.execute(_SQL["prune_delivered"], (before.timestamp(), limit)).rowcount


def _rule_row(rule: Rule) -> tuple[Any, ...]:
    return (
        rule.name,
        json.dumps(spec_document(rule.spec)),
        int(rule.enabled),
        rule.created_at.timestamp(),
        rule.updated_at.timestamp(),
    )
