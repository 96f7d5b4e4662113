"""What the ``job_state_change`` trigger costs a batch of state changes on PostgreSQL (issue 22).

On a scratch schema migrated by the tree on ``PYTHONPATH``, with ``--rows`` RUNNABLE jobs, it
times ``--batch`` state changes (RUNNABLE → RUNNING and back is never committed: each sample is
rolled back) two ways: one ``UPDATE … WHERE seq = ANY(…)`` for the batch, and one guarded
``UPDATE`` per job sent as ``executemany`` (a pipeline, as the worker's end of a batch was).
Each is measured with the trigger as migrated and with it dropped, with no rule enabled, and
once more with a rule enabled (the events then written are part of the cost). Prints µs per
row, medians of ``--samples``.

    python -m bench.trigger_cost                       # this tree
    PYTHONPATH=/other/tree/src python -m bench.trigger_cost
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

import psycopg

from bench.postgres import DEFAULT_POSTGRES_URL
from dockyard.storage.postgres import with_search_path
from dockyard.storage.postgres.migrator import apply_migrations

_FILL = (
    "INSERT INTO jobs (id, name, definition_name, definition_revision, state, queue,"
    " max_attempts, created_at, not_before, executor)"
    " SELECT gen_random_uuid()::text, 'bench', 'bench', 1, 'RUNNABLE', 'default', 1, now(),"
    " now(), 'python' FROM generate_series(1, %s)"
)
_RULE = (
    "INSERT INTO rules (name, spec, enabled, created_at, updated_at)"
    " VALUES ('watch', '{}'::jsonb, true, now(), now())"
)


async def _time_batch(conn: Any, seqs: list[int], one_statement: bool) -> float:
    started = time.perf_counter()
    async with conn.transaction(force_rollback=True):
        if one_statement:
            await conn.execute(
                "UPDATE jobs SET state = 'RUNNING' WHERE seq = ANY(%s) AND state = 'RUNNABLE'",
                [seqs],
            )
        else:
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "UPDATE jobs SET state = 'RUNNING' WHERE seq = %s AND state = 'RUNNABLE'",
                    [[seq] for seq in seqs],
                )
    return (time.perf_counter() - started) / len(seqs) * 1e6


async def _measure(conn: Any, seqs: list[int], batch: int, samples: int) -> dict[str, float]:
    found = {}
    for label, one in (("one statement", True), ("executemany", False)):
        times = []
        for i in range(samples):
            start = (i * batch) % (len(seqs) - batch)
            times.append(await _time_batch(conn, seqs[start : start + batch], one))
        found[label] = statistics.median(times)
    return found


async def main(url: str, rows: int, batch: int, samples: int) -> None:
    schema = f"dy_trigger_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute(f"CREATE SCHEMA {schema}")
        try:
            scoped = with_search_path(url, schema)
            async with await psycopg.AsyncConnection.connect(scoped, autocommit=True) as conn:
                await apply_migrations(conn)
                await conn.execute(_FILL, [rows])
                await conn.execute("ANALYZE jobs")
                cursor = await conn.execute("SELECT seq FROM jobs ORDER BY seq")
                seqs = [row[0] for row in await cursor.fetchall()]
                results = {"trigger as migrated": await _measure(conn, seqs, batch, samples)}
                await conn.execute(_RULE)
                results["… with a rule enabled"] = await _measure(conn, seqs, batch, samples)
                await conn.execute("DELETE FROM rules")
                await conn.execute("DROP TRIGGER job_state_change ON jobs")
                results["no trigger at all"] = await _measure(conn, seqs, batch, samples)
        finally:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    print(f"µs per row, batch {batch}, median of {samples} (rolled back), {rows:,} jobs")
    print("| case | one statement | executemany |\n|---|--:|--:|")
    for label, found in results.items():
        print(f"| {label} | {found['one statement']:.1f} | {found['executemany']:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--samples", type=int, default=200)
    options = parser.parse_args()
    asyncio.run(main(options.postgres_url, options.rows, options.batch, options.samples))
