"""pgqueuer on PostgreSQL (run with bench/.venvs/pgqueuer/bin/python).

Set up as its docs say (``pgq install``, then ``pgq autovac`` from the performance checklist;
durability left at "durable"), on asyncpg (the faster driver in its own benchmark), with one
direct connection for the queue manager (the tuning guide's advice). Worker: ``pgq run
bench.peers.pgqueuer_driver:create_pgqueuer`` with the default ``--batch-size 10``, or 50 for
variant ``batch50``. Bulk enqueue: ``Queries.enqueue`` with lists (one ``UNNEST`` insert).

pgqueuer deletes a job from its queue table when it finishes and keeps the history in
``pgqueuer_log`` (a ``queued``, a ``picked`` and a ``successful`` row per job), which each
dequeue also writes to: (d) puts the million finished jobs there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg  # type: ignore[import-not-found, unused-ignore]
from pgqueuer import PgQueuer, Queries  # type: ignore[import-not-found, unused-ignore]
from pgqueuer.ports.repository import (  # type: ignore[import-not-found, unused-ignore]
    EntrypointExecutionParameter,
)

from bench.peers import harness

DSN = os.environ.get("PEERS_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BATCH = {"default": 10, "batch50": 50}


async def noop(job: Any) -> None:
    harness.record(int(job.payload))


@contextlib.asynccontextmanager
async def create_pgqueuer() -> AsyncIterator[Any]:
    """The factory ``pgq run`` calls: one asyncpg connection, one entrypoint."""
    connection = await asyncpg.connect(DSN)
    try:
        pgq = PgQueuer.from_asyncpg_connection(connection)
        pgq.entrypoint("noop")(noop)
        yield pgq
    finally:
        await connection.close()


def _pgq() -> str:
    return os.path.join(os.path.dirname(sys.executable), "pgq")


def worker_argv(variant: str) -> list[list[str]]:
    batch = str(BATCH[variant])
    return [
        [
            _pgq(),
            "run",
            "bench.peers.pgqueuer_driver:create_pgqueuer",
            "--batch-size",
            batch,
            # Not --log-level: in pgqueuer 1.6.0 any value of it crashes ``pgq run``
            # (AttributeError: 'str' object has no attribute 'name', in setup_fancy_logger).
        ]
    ]


def install() -> None:
    for command in ("install", "autovac"):
        subprocess.run(
            [_pgq(), "--pg-dsn", DSN, command], check=True, capture_output=True, timeout=120
        )


# Finished jobs as pgqueuer leaves them: gone from its queue table, three log rows each.
HISTORY_SQL = """
INSERT INTO pgqueuer_log (created, job_id, status, priority, entrypoint, traceback, aggregated)
SELECT now() - interval '2 days' - ($3::bigint - i) * interval '100 ms' + e.shift,
       i, e.status::pgqueuer_status, 0, 'noop', NULL, true
FROM generate_series($1::bigint, $2::bigint) AS i,
     (VALUES ('queued', interval '0'), ('picked', interval '5 ms'),
             ('successful', interval '9 ms')) AS e(status, shift)
ORDER BY i
"""
CHUNK = 200_000


async def fill_history(connection: Any, rows: int) -> float:
    start = time.perf_counter()
    for lo in range(1, rows + 1, CHUNK):
        async with connection.transaction():
            await connection.execute(HISTORY_SQL, lo, min(lo + CHUNK - 1, rows), rows)
    # New jobs get ids after the finished ones, as they would have.
    await connection.execute("SELECT setval('pgqueuer_id_seq', $1::bigint)", rows)
    return time.perf_counter() - start


async def claim_measure(args: Any, connection: Any, queries: Any) -> dict[str, Any]:
    fill_seconds = await fill_history(connection, args.history) if args.history else 0.0
    await submit_all(queries, args.backlog)
    await connection.execute("ANALYZE pgqueuer, pgqueuer_log")
    await connection.execute("CHECKPOINT")
    log_rows = await connection.fetchval("SELECT count(*) FROM pgqueuer_log")
    entrypoints = {"noop": EntrypointExecutionParameter(concurrency_limit=0)}
    manager = uuid.uuid4()

    async def claim() -> int:
        jobs = await queries.dequeue(
            batch_size=args.limit,
            entrypoints=entrypoints,
            queue_manager_id=manager,
            global_concurrency_limit=None,
            heartbeat_timeout=timedelta(seconds=30),
        )
        return len(jobs)

    result = await harness.timed_claims_async(claim, args.claims)
    return result | {
        "history": args.history,
        "history_where": "pgqueuer_log (3 rows per finished job; the queue table holds none)",
        "rows_in_log_table": log_rows,
        "backlog": args.backlog,
        "fill_seconds": fill_seconds,
    }


async def submit_all(queries: Any, n: int) -> None:
    await queries.enqueue(["noop"] * n, [str(i).encode() for i in range(n)], [0] * n)


async def measure(args: Any, records: harness.Records) -> dict[str, Any]:
    from pgqueuer.db import AsyncpgDriver  # type: ignore[import-not-found, unused-ignore]

    connection = await asyncpg.connect(DSN)
    queries = Queries(AsyncpgDriver(connection))

    async def submit(i: int) -> None:
        await queries.enqueue("noop", str(i).encode())

    async def bulk(n: int) -> None:
        await submit_all(queries, n)

    try:
        if args.measure == "enqueue":
            if args.mode == "bulk":
                return await harness.timed_bulk_async(bulk, args.n)
            return await harness.timed_single_async(submit, args.n)
        if args.measure == "process":
            return {"submit": await harness.timed_bulk_async(bulk, args.n)}
        if args.measure == "claim":
            return await claim_measure(args, connection, queries)
        with harness.started(worker_argv(args.variant), {"PEERS_PG_DSN": DSN}) as workers:
            return await harness.paced_single_async(
                submit, records, args.n, args.interval_ms / 1000, workers.dead
            )
    finally:
        await connection.close()


def main() -> None:
    args = harness.parse_args()
    if args.measure == "info":
        harness.emit(harness.versions(["pgqueuer", "asyncpg", "uvloop"]))
        return
    install()
    with harness.records_folder() as records:
        result = asyncio.run(measure(args, records))
        if args.measure == "process":
            argv = worker_argv(args.variant)
            result = harness.run_process(records, argv, {"PEERS_PG_DSN": DSN}, args.n) | result
    harness.emit(result)


if __name__ == "__main__":
    main()
