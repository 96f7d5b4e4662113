"""The plans of a worker's claim on each backend, for tests that a claim walks its indexes.

Each backend's claim is planned for three queue filters (every queue, one, two), the ones a
worker may be given, so that a plan that holds for one filter only is caught.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import LiteralString

import psycopg

from dockyard.storage import ClaimRequest
from dockyard.storage.postgres import PostgresStorage
from dockyard.storage.postgres.jobs import CLAIM_SETTING, claim_sql
from dockyard.storage.sqlite import SQLiteStorage


def postgres_claim_plans(
    url: str,
    inserts: Sequence[LiteralString],
    *,
    limit: int,
    executors: tuple[str, ...] | None = None,
) -> list[str]:
    """``EXPLAIN`` of the claim on the migrated store at ``url``, once ``inserts`` have run and
    the jobs are analyzed: one plan for each queue filter."""

    async def plans() -> list[str]:
        storage = PostgresStorage(url)
        await storage.migrate()
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        async with conn:
            for insert in inserts:
                await conn.execute(insert)
            await conn.execute("ANALYZE jobs")
            now = datetime.now(UTC)
            found = []
            for queues in (None, ("default",), ("default", "other")):
                request = ClaimRequest(
                    worker_id="w",
                    queues=queues,
                    limit=limit,
                    now=now,
                    lease_until=now,
                    executors=executors,
                )
                sql, args = claim_sql(request)
                async with conn.transaction(force_rollback=True):  # as the claim runs
                    await conn.execute(CLAIM_SETTING)
                    rows = await (await conn.execute("EXPLAIN " + sql, args)).fetchall()
                found.append("\n".join(row[0] for row in rows))
        await storage.close()
        return found

    return asyncio.run(plans())


def sqlite_claim_plans(
    path: Path, executors: tuple[str, ...] | None = None
) -> list[tuple[str, str]]:
    """``(statement, EXPLAIN QUERY PLAN)`` of each claim statement (the update of the claim, the
    selects of its candidates and of the next runnable time) that a claim and
    ``next_runnable_at`` ran on a new store at ``path``, for each queue filter."""

    async def plans() -> list[tuple[str, str]]:
        storage = SQLiteStorage(path)
        await storage.migrate()
        statements: list[str] = []
        await storage.database.run(lambda db: db.set_trace_callback(statements.append))
        now = datetime.now(UTC)
        for queues in (None, ("a",), ("a", "b")):
            request = ClaimRequest(
                worker_id="w", queues=queues, limit=4, now=now, lease_until=now, executors=executors
            )
            await storage.jobs.claim(request)
            await storage.jobs.next_runnable_at(queues, executors)
        # Each statement opens with the comment lines that document it in sql/jobs.sql.
        code = [
            "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
            for sql in statements
        ]
        hot = [sql for sql in code if sql.startswith(("UPDATE jobs SET state", "SELECT j."))]
        steps = await storage.database.run(
            lambda db: [
                (sql, " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")))
                for sql in hot
            ]
        )
        await storage.close()
        return steps

    return asyncio.run(plans())
