"""The rules port on PostgreSQL: rules, the invocations of their targets, and the causation depth
of the jobs they submit.

Invocations are recorded by the events port when it routes events (:func:`insert_invocations`,
in the transaction that marks the events routed) and pruned with them
(:func:`prune_delivered`); the rules leader then delivers them and records how each try ended.
A job a target submits is inserted by the jobs port's :func:`insert_jobs` with its depth in
``job_causation``, in one transaction (:meth:`PostgresRules.submit_job`); routing reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from psycopg.types.json import Jsonb

from dockyard.domain.records import NewJob
from dockyard.domain.rules import Invocation, InvocationState, Rule, spec_document
from dockyard.storage.ports import InsertedJob, InvocationUpdate, NewInvocation
from dockyard.storage.postgres.database import ROWS, Conn, Database
from dockyard.storage.postgres.jobs import insert_jobs
from dockyard.storage.queries import Queries

__all__ = ["PostgresRules", "insert_invocations", "prune_delivered"]

_SQL = Queries.load("dockyard.storage.postgres", "rules.sql")
_INSERT = _SQL["insert"]
_GET = _SQL["get"]
_ALL = _SQL["all"]
_ALL_ENABLED = _SQL["all_enabled"]
_REPLACE = _SQL["replace"]
_DELETE = _SQL["delete"]
_INSERT_INVOCATIONS = _SQL["insert_invocations"]
_DUE_INVOCATIONS = _SQL["due_invocations"]
_NEXT_INVOCATION_AT = _SQL["next_invocation_at"]
_UPDATE_INVOCATIONS = _SQL["update_invocations"]
_INVOCATIONS = _SQL["invocations"]
_INVOCATIONS_IN_STATE = _SQL["invocations_in_state"]
_RETRY_INVOCATIONS = _SQL["retry_invocations"]
_PRUNE_DELIVERED = _SQL["prune_delivered"]
_RECORD_CAUSATION = _SQL["record_causation"]


class PostgresRules:
    """Rules in ``rules`` (the spec as a JSON document), invocations in ``invocations``."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, rule: Rule) -> bool:
        args = _rule_args(rule)

        async def insert(conn: Conn) -> bool:
            return (await conn.execute(_INSERT, args)).rowcount == 1

        return await self._database.run(insert)

    async def get(self, name: str) -> Rule | None:
        row = await self._database.fetchone(_GET, {"name": name})
        return None if row is None else ROWS.rule(row)

    async def all(self, enabled_only: bool = False) -> list[Rule]:
        rows = await self._database.fetchall(_ALL_ENABLED if enabled_only else _ALL)
        return [ROWS.rule(row) for row in rows]

    async def replace(self, rule: Rule) -> bool:
        args = _rule_args(rule)
        del args["created_at"]

        async def replace(conn: Conn) -> bool:
            return (await conn.execute(_REPLACE, args)).rowcount == 1

        return await self._database.run(replace)

    async def delete(self, name: str) -> bool:
        async def delete(conn: Conn) -> bool:
            return (await conn.execute(_DELETE, {"name": name})).rowcount == 1

        return await self._database.run(delete)

    async def due_invocations(self, now: datetime, limit: int) -> list[Invocation]:
        rows = await self._database.fetchall(_DUE_INVOCATIONS, {"now": now, "limit": limit})
        return [ROWS.invocation(row) for row in rows]

    async def next_invocation_at(self) -> datetime | None:
        row = await self._database.fetchone(_NEXT_INVOCATION_AT)
        return None if row is None else row["at"]

    async def update_invocations(self, updates: Sequence[InvocationUpdate]) -> None:
        args = {
            "ids": [u.id for u in updates],
            "states": [u.state.value for u in updates],
            "attempts": [u.attempts for u in updates],
            "next_attempt_at": [u.next_attempt_at for u in updates],
            "results": [u.result for u in updates],
            "errors": [u.error for u in updates],
            "now": [u.now for u in updates],
        }

        async def update(conn: Conn) -> None:
            await conn.execute(_UPDATE_INVOCATIONS, args)

        await self._database.run(update)

    async def invocations(
        self, rule: str, state: InvocationState | None, limit: int
    ) -> list[Invocation]:
        if state is None:
            rows = await self._database.fetchall(_INVOCATIONS, {"rule": rule, "limit": limit})
        else:
            args = {"rule": rule, "state": state.value, "limit": limit}
            rows = await self._database.fetchall(_INVOCATIONS_IN_STATE, args)
        return [ROWS.invocation(row) for row in rows]

    async def retry_invocations(self, rule: str, ids: Sequence[str] | None, now: datetime) -> int:
        args = {"now": now, "rule": rule, "ids": None if ids is None else list(ids)}

        async def retry(conn: Conn) -> int:
            return (await conn.execute(_RETRY_INVOCATIONS, args)).rowcount

        return await self._database.run(retry)

    async def submit_job(self, job: NewJob, depth: int) -> InsertedJob:
        async def submit(conn: Conn) -> InsertedJob:
            (inserted,) = await insert_jobs(self._database, conn, [job])
            await conn.execute(_RECORD_CAUSATION, {"job_id": inserted.job.id, "depth": depth})
            return inserted

        return await self._database.run(submit)


async def insert_invocations(
    conn: Conn, invocations: Sequence[NewInvocation], now: datetime
) -> int:
    """Record invocations in the caller's transaction (the events port's route); return how
    many were new."""
    if not invocations:
        return 0
    cursor = await conn.execute(
        _INSERT_INVOCATIONS,
        {
            "now": now,
            "ids": [item.id for item in invocations],
            "rules": [item.rule for item in invocations],
            "targets": [item.target for item in invocations],
            "events": [Jsonb(item.event) for item in invocations],
            "states": [item.state.value for item in invocations],
            "errors": [item.error for item in invocations],
            "depths": [item.depth for item in invocations],
        },
    )
    return cursor.rowcount


async def prune_delivered(conn: Conn, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` invocations DELIVERED (or never made) before ``before``, in the
    caller's transaction (the events port's prune); return how many."""
    cursor = await conn.execute(_PRUNE_DELIVERED, {"before": before, "limit": limit})
    return cursor.rowcount


def _rule_args(rule: Rule) -> dict[str, object]:
    return {
        "name": rule.name,
        "spec": Jsonb(spec_document(rule.spec)),
        "enabled": rule.enabled,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }
