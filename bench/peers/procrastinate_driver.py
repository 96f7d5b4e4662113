"""procrastinate on PostgreSQL (run with bench/.venvs/procrastinate/bin/python).

Worker: ``procrastinate --app=bench.peers.procrastinate_driver.app worker --concurrency 10``
(an ``async`` task, so sub-workers share one process, as the concurrency how-to describes) on
the psycopg connector; finished jobs are kept (``delete_jobs`` "never", the default). Bulk
enqueue: ``Task.batch_defer_async``. The claim (d) is ``JobManager.fetch_job``, which takes one
job per call (``procrastinate_fetch_job_v2``, ``LIMIT 1``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import procrastinate  # type: ignore[import-not-found, unused-ignore]
import psycopg  # type: ignore[import-not-found, unused-ignore]

from bench.peers import harness

DSN = os.environ.get("PEERS_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
CONCURRENCY = 10

app: Any = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=DSN))


async def noop(i: int) -> None:
    harness.record(i)


noop_task: Any = app.task(name="noop")(noop)


def worker_argv(variant: str) -> list[list[str]]:
    exe = os.path.join(os.path.dirname(sys.executable), "procrastinate")
    return [
        [
            exe,
            "--app=bench.peers.procrastinate_driver.app",
            "--log-level=warning",
            "worker",
            "--concurrency",
            str(CONCURRENCY),
        ]
    ]


async def submit(i: int) -> None:
    await noop_task.defer_async(i=i)


async def submit_all(n: int) -> None:
    await noop_task.batch_defer_async(*({"i": i} for i in range(n)))


# Finished jobs as procrastinate leaves them: succeeded, with their three events.
HISTORY_SQL = """
WITH filled AS (
    INSERT INTO procrastinate_jobs (queue_name, task_name, priority, args, status, attempts)
    SELECT 'default', 'noop', 0, jsonb_build_object('i', i), 'succeeded', 1
    FROM generate_series(%(lo)s, %(hi)s) AS i
    ORDER BY i
    RETURNING id
)
INSERT INTO procrastinate_events (job_id, type, at)
SELECT id, e.type::procrastinate_job_event_type, now() - interval '2 days' + e.shift
FROM filled, (VALUES ('deferred', interval '0'), ('started', interval '5 ms'),
                     ('succeeded', interval '9 ms')) AS e(type, shift)
"""
CHUNK = 200_000


async def fill_history(rows: int) -> float:
    start = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        for lo in range(1, rows + 1, CHUNK):
            async with conn.transaction():
                await conn.execute(HISTORY_SQL, {"lo": lo, "hi": min(lo + CHUNK - 1, rows)})
        await conn.execute("ANALYZE procrastinate_jobs, procrastinate_events")
        await conn.execute("CHECKPOINT")
    return time.perf_counter() - start


async def claim_measure(args: Any) -> dict[str, Any]:
    fill_seconds = await fill_history(args.history) if args.history else 0.0
    await submit_all(args.backlog)
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute("ANALYZE procrastinate_jobs, procrastinate_events")
        await conn.execute("CHECKPOINT")
        row = await (await conn.execute("SELECT count(*) FROM procrastinate_jobs")).fetchone()
    worker_id = await app.job_manager.register_worker()

    async def claim() -> int:
        job = await app.job_manager.fetch_job(queues=None, worker_id=worker_id)
        return 0 if job is None else 1

    result = await harness.timed_claims_async(claim, args.claims)
    return result | {
        "history": args.history,
        "history_where": "procrastinate_jobs (status succeeded) + 3 procrastinate_events each",
        "rows_in_jobs_table": row[0] if row else None,
        "backlog": args.backlog,
        "fill_seconds": fill_seconds,
    }


async def measure(args: Any, records: harness.Records) -> dict[str, Any]:
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        if args.measure == "enqueue":
            if args.mode == "bulk":
                return await harness.timed_bulk_async(submit_all, args.n)
            return await harness.timed_single_async(submit, args.n)
        if args.measure == "process":
            return {"submit": await harness.timed_bulk_async(submit_all, args.n)}
        if args.measure == "claim":
            return await claim_measure(args)
        with harness.started(worker_argv(args.variant), {"PEERS_PG_DSN": DSN}) as workers:
            return await harness.paced_single_async(
                submit, records, args.n, args.interval_ms / 1000, workers.dead
            )


def main() -> None:
    args = harness.parse_args()
    if args.measure == "info":
        harness.emit(harness.versions(["procrastinate", "psycopg", "psycopg-pool"]))
        return
    with harness.records_folder() as records:
        result = asyncio.run(measure(args, records))
        if args.measure == "process":
            argv = worker_argv(args.variant)
            result = harness.run_process(records, argv, {"PEERS_PG_DSN": DSN}, args.n) | result
    harness.emit(result)


if __name__ == "__main__":
    main()
