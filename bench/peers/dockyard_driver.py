"""Dockyard on SQLite or PostgreSQL (run with the project's own interpreter).

Built from bench/postgres.py's machinery: a fresh store per run (``fresh_store``: a schema of
its own on PostgreSQL, a file in a temporary folder on SQLite), the real CLI worker
(``Workers``: ``python -m dockyard worker --concurrency 16``), its idle check
(``_wait_until_idle``: registered, and LISTENing on PostgreSQL), and its claim scenario for (d)
(``scenario_claim``: ``Storage.claim`` of 16 from a backlog, with and without a history of
finished jobs). The job is a ``python`` definition calling ``bench.peers.harness:dockyard_job``
(a plain function, run through ``asyncio.to_thread`` like ``bench.functions:noop``), the body
every peer runs. Figures as the store recorded them (bench.postgres's own method) are kept next
to the harness's, under ``store_*``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from bench import postgres as pg
from bench.common import spread
from bench.peers import harness

DEFINITION = {"executor": "python", "function": "bench.peers.harness:dockyard_job"}
#: worker processes × concurrency; "1x16" is the README's ``dockyard worker --concurrency 16``,
#: "1x64" its advice for many short jobs.
VARIANTS = {"1x16": (1, 16), "2x16": (2, 16), "1x64": (1, 64)}


def _dead(workers: pg.Workers) -> Callable[[], str | None]:
    def dead() -> str | None:
        for proc in workers.procs:
            if proc.poll() is not None:
                return f"exit {proc.returncode}:\n{workers.output()}"
        return None

    return dead


def _submit_all(client: Any, n: int) -> None:
    from dockyard import SubmitRequest

    for offset in range(0, n, pg.MAX_BATCH):  # the most one call accepts
        stop = min(offset + pg.MAX_BATCH, n)
        client.submit_requests(
            [SubmitRequest(definition="bench", payload=i) for i in range(offset, stop)]
        )


def measure_enqueue(args: Any) -> dict[str, Any]:
    import dockyard

    with (
        pg.fresh_store(args.backend, args.dsn) as store,
        dockyard.connect(store.url, home=store.home) as client,
    ):
        client.register(DEFINITION, name="bench")
        if args.mode == "bulk":
            return harness.timed_bulk(lambda n: _submit_all(client, n), args.n)
        return harness.timed_single(lambda i: client.submit("bench", payload=i), args.n)


def measure_process(args: Any) -> dict[str, Any]:
    import dockyard

    count, concurrency = VARIANTS[args.variant]
    with harness.records_folder() as records, pg.fresh_store(args.backend, args.dsn) as store:
        with dockyard.connect(store.url, home=store.home) as client:
            client.register(DEFINITION, name="bench")
            submitted = harness.timed_bulk(lambda n: _submit_all(client, n), args.n)
        spawned = time.time()
        with (
            pg.Workers(store, count, concurrency, burst=False) as workers,
            harness.TreeSampler([p.pid for p in workers.procs]) as sampler,
        ):
            records.wait(args.n, 900, _dead(workers))
            time.sleep(0.2)
            memory = sampler.result()
        result = harness.process_result(records, spawned, args.n, memory)
        states = pg._states(store)
        ((first, last),) = pg.sql_rows(
            store,
            f"SELECT {pg._epoch(store, 'MIN(started_at)')}, {pg._epoch(store, 'MAX(stopped_at)')}"
            " FROM jobs",
        )
    if states.get("SUCCEEDED", 0) != args.n:
        raise RuntimeError(f"expected {args.n} SUCCEEDED jobs, found {states}")
    seconds = float(last) - float(first)
    return result | {
        "submit": submitted,
        "workers": f"{count} × dockyard worker --concurrency {concurrency}",
        "store_first_start_to_last_stop_seconds": seconds,
        "store_jobs_per_s": args.n / seconds,
        "states": states,
    }


def measure_latency(args: Any) -> dict[str, Any]:
    import dockyard

    _, concurrency = VARIANTS[args.variant]  # one worker: the idle check watches one
    ids: dict[int, str] = {}

    with (
        harness.records_folder() as records,
        pg.fresh_store(args.backend, args.dsn) as store,
        dockyard.connect(store.url, home=store.home) as client,
    ):
        client.register(DEFINITION, name="bench")

        def submit(i: int) -> None:
            ids[i] = client.submit("bench", payload=i).id

        with pg.Workers(store, 1, concurrency, burst=False) as workers:
            listening = pg._wait_until_idle(store, client, workers)
            result = harness.paced_single(
                submit, records, args.n, args.interval_ms / 1000, _dead(workers)
            )
        # Dockyard's own view (bench.postgres (a)): the attempt's started_at − created_at.
        own = []
        for i in range(args.n):
            job = client.get(ids[i])
            first = job.attempts[0] if job.attempts else None
            started = first.started_at if first and first.started_at else job.started_at
            assert started is not None
            own.append((started - job.created_at).total_seconds() * 1000)
    return result | {
        "listener_seen": listening,
        "store_latency_ms": spread(own),
        "workers": f"1 × dockyard worker --concurrency {concurrency}",
    }


def measure_claim(args: Any) -> dict[str, Any]:
    result = pg.scenario_claim(
        pg.ScenarioArgs(
            backend=args.backend,
            server_url=args.dsn,
            n=0,
            concurrency=0,
            processes=0,
            interval=0.0,
            history=args.history,
            backlog=args.backlog,
            claims=args.claims,
            limit=args.limit,
            profile=None,
        )
    )
    result.pop("plan", None)
    return result | {
        "jobs_per_claim": float(args.limit),
        "history_where": "jobs (SUCCEEDED) + one attempts row each",
    }


def main() -> None:
    args = harness.parse_args()
    if args.dsn is None:
        args.dsn = os.environ.get("DOCKYARD_BENCH_POSTGRES_URL", pg.DEFAULT_POSTGRES_URL)
    if args.measure == "info":
        import sqlite3

        import dockyard

        info = harness.versions(["dockyard", "psycopg", "psycopg-binary", "psycopg-pool"])
        harness.emit(info | {"sqlite": sqlite3.sqlite_version, "dockyard_file": dockyard.__file__})
        return
    measures = {
        "enqueue": measure_enqueue,
        "process": measure_process,
        "latency": measure_latency,
        "claim": measure_claim,
    }
    harness.emit(measures[args.measure](args))


if __name__ == "__main__":
    main()
