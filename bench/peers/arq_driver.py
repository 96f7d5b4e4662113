"""arq (run with bench/.venvs/arq/bin/python).

Worker: ``arq bench.peers.arq_driver.WorkerSettings`` with arq's defaults (one process,
``max_jobs`` 10, ``poll_delay`` 0.5 s, results kept an hour); variant ``poll10ms`` (not a
default) polls every 10 ms. arq has no bulk-enqueue API:
``enqueue_job`` one job at a time.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, ClassVar

from arq import create_pool  # type: ignore[import-not-found, unused-ignore]
from arq.connections import RedisSettings  # type: ignore[import-not-found, unused-ignore]

from bench.peers import harness

URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/12")


async def noop(ctx: Any, i: int) -> None:
    harness.record(i)


class WorkerSettings:
    functions: ClassVar[list[Any]] = [noop]
    redis_settings: ClassVar[Any] = RedisSettings.from_dsn(URL)


class FastPollSettings:
    """Not a default: polls every 10 ms instead of 0.5 s (a default worker starts at most
    ``queue_read_limit`` = 100 jobs per poll, so about 200 jobs/s). arq reads the settings from
    the class's own ``__dict__``, so they are repeated rather than inherited."""

    functions: ClassVar[list[Any]] = [noop]
    redis_settings: ClassVar[Any] = RedisSettings.from_dsn(URL)
    poll_delay: ClassVar[float] = 0.01


def worker_argv(variant: str) -> list[list[str]]:
    arq = os.path.join(os.path.dirname(sys.executable), "arq")
    settings = "FastPollSettings" if variant == "poll10ms" else "WorkerSettings"
    return [[arq, f"bench.peers.arq_driver.{settings}"]]


async def _pool() -> Any:
    return await create_pool(RedisSettings.from_dsn(URL))


async def measure(args: Any, env: dict[str, str]) -> dict[str, Any]:
    pool = await _pool()

    async def submit(i: int) -> None:
        await pool.enqueue_job("noop", i)

    try:
        if args.measure == "enqueue":
            if args.mode == "bulk":
                return {"mode": "bulk", "unsupported": True}
            return await harness.timed_single_async(submit, args.n)
        if args.measure == "process":
            return {"submit": await harness.timed_single_async(submit, args.n)}
        with harness.started(worker_argv(args.variant), env) as workers:
            return await harness.paced_single_async(
                submit, RECORDS, args.n, args.interval_ms / 1000, workers.dead
            )
    finally:
        await pool.aclose()


RECORDS: Any = None


def main() -> None:
    global RECORDS
    args = harness.parse_args()
    env = {"PEERS_REDIS_URL": URL}
    if args.measure == "info":
        harness.emit(harness.versions(["arq", "redis", "hiredis"]))
        return
    if args.measure not in ("enqueue", "process", "latency"):
        raise SystemExit(f"arq: no {args.measure} measurement")
    with harness.records_folder() as records:
        RECORDS = records
        result = asyncio.run(measure(args, env))
        if args.measure == "process":
            result = harness.run_process(records, worker_argv(args.variant), env, args.n) | result
    harness.emit(result)


if __name__ == "__main__":
    main()
