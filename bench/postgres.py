"""Dockyard on PostgreSQL, next to SQLite: wake-up latency, no-op jobs/s, claim cost vs history.

Run from the repository root (PostgreSQL at ``postgresql://postgres@127.0.0.1:5432/test`` unless
``--postgres-url`` says otherwise)::

    python -m bench.postgres            # full run: ~4 minutes, prints tables, saves bench/results/
    python -m bench.postgres --quick    # smoke run: small N, 1 round, ~1 minute

Three parts, each on PostgreSQL and on SQLite in the same run:

(a) submit-to-start latency: an idle ``python -m dockyard worker`` and 200 jobs submitted one at a
    time, 20 ms apart, through the SDK; latency = the attempt's ``started_at`` minus the job's
    ``created_at``, both as Dockyard recorded them.
(b) no-op Python-function jobs/s: N jobs submitted in bulk, then 1 or 2 ``dockyard worker
    --burst --concurrency 16`` processes, timed from the first start to the last finish as the
    store recorded them.
(c) claim time with a long history: ``Storage.claim`` of 16 jobs from a backlog of runnable jobs,
    on a store with no finished jobs and on one with 1,000,000 finished jobs (filled in SQL).

Every case runs in a fresh process (``python -m bench.postgres --scenario X --backend Y``) on a
fresh store: a new PostgreSQL schema, dropped at the end, or a SQLite file in a temporary folder.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from bench.common import (
    REPO,
    ThreadProfiler,
    apply_defaults,
    int_list,
    median,
    names,
    run_meta,
    save,
    spread,
)
from dockyard.storage.postgres import listen_channel, with_search_path

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA_PREFIX = "dockyard_bench_"
BACKENDS = ("postgres", "sqlite")
DEFINITION = {"executor": "python", "function": "bench.functions:noop"}
MAX_BATCH = 10_000  # the most one submit call accepts

TARGET_P50_MS = 5.0
TARGET_P99_MS = 25.0
TARGET_CLAIM_RATIO = 1.5


# -- stores --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Store:
    backend: str
    url: str
    home: Path
    #: The PostgreSQL schema (None on SQLite).
    schema: str | None

    @property
    def sqlite_path(self) -> Path:
        return self.home / "dockyard.db"


def _drop_schema(server_url: str, schema: str) -> None:
    import psycopg

    for attempt in range(5):  # PostgreSQL may be restarting under another user of it
        try:
            with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute("SET lock_timeout = '30s'")
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            return
        except psycopg.OperationalError as error:
            print(f"dropping {schema}: {error}; retrying", file=sys.stderr)
            time.sleep(1 + attempt)


@contextlib.contextmanager
def fresh_store(backend: str, server_url: str) -> Iterator[Store]:
    """A new, empty store: a PostgreSQL schema (dropped afterwards) or a SQLite file."""
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-pg-") as folder:
        home = Path(folder) / "home"
        home.mkdir()
        if backend == "sqlite":
            yield Store(backend, f"sqlite:///{home / 'dockyard.db'}", home, None)
            return
        import psycopg

        # The pid lets a later run drop what a killed run left (see drop_stale_schemas).
        schema = f"{SCHEMA_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        try:
            yield Store(backend, with_search_path(server_url, schema), home, schema)
        finally:
            _drop_schema(server_url, schema)


def drop_stale_schemas(server_url: str) -> list[str]:
    """Drop the schemas of earlier runs whose process is gone (killed before its cleanup)."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                (SCHEMA_PREFIX.replace("_", r"\_") + "%",),
            )
        ]
    dropped = []
    for name in names:
        found = re.fullmatch(rf"{SCHEMA_PREFIX}(\d+)_[0-9a-f]+", name)
        if found is None:
            continue
        try:
            os.kill(int(found.group(1)), 0)  # signal 0: only asks whether the process exists
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        _drop_schema(server_url, name)
        dropped.append(name)
    return dropped


def postmaster_start(server_url: str, wait: float = 180.0) -> str:
    """When the PostgreSQL server last started (waiting up to ``wait`` s for it to answer): a
    change between two calls means it restarted in between."""
    import psycopg

    deadline = time.monotonic() + wait
    while True:
        try:
            with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute("SELECT pg_postmaster_start_time()::text").fetchone()
                assert row is not None
                return str(row[0])
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def sql_rows(store: Store, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on a connection of its own; PostgreSQL takes %s, SQLite ? placeholders."""
    if store.backend == "postgres":
        import psycopg

        with psycopg.connect(store.url, autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(sql, args)
            return cursor.fetchall() if cursor.description else []
    db = sqlite3.connect(store.sqlite_path, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout = 30000")
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def _epoch(store: Store, column: str) -> str:
    """A time column as seconds since the epoch (PostgreSQL keeps timestamptz, SQLite REAL)."""
    return f"extract(epoch FROM {column})" if store.backend == "postgres" else column


def _states(store: Store) -> dict[str, int]:
    rows = sql_rows(store, "SELECT state, COUNT(*) FROM jobs GROUP BY state")
    return {str(state): int(count) for state, count in rows}


# -- worker processes ----------------------------------------------------------------------------


class Workers:
    """``python -m dockyard worker`` processes on ``store``, their output in the store's home."""

    def __init__(self, store: Store, count: int, concurrency: int, *, burst: bool) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env["DOCKYARD_HOME"] = str(store.home)
        env["DOCKYARD_URL"] = store.url
        # A PostgreSQL store offers docker, http and lambda by default (dockyard/policy.py): the
        # bench's jobs are python functions, so its workers opt in.
        env["DOCKYARD_EXECUTORS"] = "process,python,docker,http,lambda"
        argv = [sys.executable, "-m", "dockyard", "worker", "--concurrency", str(concurrency)]
        if burst:
            argv.append("--burst")
        self.logs = [store.home / f"worker-{i}.log" for i in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = time.perf_counter()
        for log in self.logs:
            with log.open("wb") as out:
                # cwd=REPO: the workers import bench.functions.
                self.procs.append(subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=out))

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-2000:] for log in self.logs)

    def wait(self, timeout: float) -> float:
        """Wait for every worker to exit (burst mode); return the seconds since the spawn."""
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        seconds = time.perf_counter() - self.started
        failed = [proc.returncode for proc in self.procs if proc.returncode != 0]
        if failed:
            raise RuntimeError(f"worker exited {failed}:\n{self.output()}")
        return seconds

    def stop(self) -> None:
        """SIGTERM each worker this object started, then kill the ones still running after 15 s."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- (a) submit-to-start latency -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScenarioArgs:
    backend: str
    server_url: str
    n: int
    concurrency: int
    processes: int
    interval: float
    history: int
    backlog: int
    claims: int
    limit: int
    profile: str | None


def _wait_until_idle(store: Store, client: Any, workers: Workers, timeout: float = 60.0) -> bool:
    """Wait for the worker to register and (PostgreSQL) to LISTEN; True once the listener is seen."""
    deadline = time.monotonic() + timeout
    pid = workers.procs[0].pid
    while not any(w.pid == pid and w.stopped_at is None for w in client.workers()):
        if workers.procs[0].poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start:\n{workers.output()}")
        time.sleep(0.05)
    if store.schema is None:
        time.sleep(0.5)  # past its first claim, asleep
        return False
    listen = f"LISTEN {listen_channel(store.schema)}"
    while not sql_rows(store, "SELECT 1 FROM pg_stat_activity WHERE query = %s", (listen,)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker never ran {listen!r}:\n{workers.output()}")
        time.sleep(0.05)
    time.sleep(0.3)
    return True


def _submit_paced(client: Any, n: int, interval: float) -> tuple[list[str], list[float]]:
    """Submit ``n`` jobs one call each, on a fixed ``interval`` schedule; (ids, call seconds)."""
    ids, calls = [], []
    start = time.perf_counter()
    for i in range(n):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        before = time.perf_counter()
        ids.append(client.submit("bench").id)
        calls.append(time.perf_counter() - before)
    return ids, calls


def _claim_breakdown(store: Store, ids: Sequence[str]) -> dict[str, list[float]]:
    """Per job, from the store: created → claim request (wake-up) and claim → started (ms)."""
    created, claimed, started = (
        _epoch(store, "j.created_at"),
        _epoch(store, "a.claimed_at"),
        _epoch(store, "a.started_at"),
    )
    mark = "%s" if store.backend == "postgres" else "?"
    rows = {
        str(row[0]): row[1:]
        for row in sql_rows(
            store,
            f"SELECT j.id, {created}, {claimed}, {started} FROM jobs j"
            " JOIN attempts a ON a.job_id = j.id AND a.number = 1"
            f" WHERE j.seq >= (SELECT seq FROM jobs WHERE id = {mark})",
            (ids[0],),
        )
    }
    wake, claim = [], []
    for job_id in ids:
        c, k, s = (float(v) for v in rows[job_id])
        wake.append((k - c) * 1000)
        claim.append((s - k) * 1000)
    return {"created_to_claim_ms": wake, "claim_to_started_ms": claim}


def scenario_latency(args: ScenarioArgs) -> dict[str, Any]:
    """(a): an idle CLI worker; ``n`` jobs submitted one at a time, ``interval`` apart."""
    import dockyard
    from dockyard.runtime import WorkerConfig
    from dockyard.storage.sqlite import changes as sqlite_changes

    with (
        fresh_store(args.backend, args.server_url) as store,
        dockyard.connect(store.url, home=store.home) as client,
    ):
        client.register(DEFINITION, name="bench")
        with Workers(store, 1, args.concurrency, burst=False) as workers:
            listening = _wait_until_idle(store, client, workers)
            # A few jobs first: imports of the job function, caches and pooled connections warm.
            warm, _ = _submit_paced(client, 5, args.interval)
            for job_id in warm:
                client.wait(job_id, timeout=60)
            time.sleep(0.2)
            ids, calls = _submit_paced(client, args.n, args.interval)
            jobs = [client.wait(job_id, timeout=60) for job_id in ids]
        latencies = []
        for job in jobs:
            if job.state != dockyard.JobState.SUCCEEDED:
                raise RuntimeError(f"job {job.id} ended {job.state}")
            first = job.attempts[0] if job.attempts else None
            started = first.started_at if first and first.started_at else job.started_at
            assert started is not None
            latencies.append((started - job.created_at).total_seconds() * 1000)
        breakdown = _claim_breakdown(store, ids)
        return {
            "latency_ms": spread(latencies),
            "submit_call_ms": spread([c * 1000 for c in calls]),
            "created_to_claim_ms": spread(breakdown["created_to_claim_ms"]),
            "claim_to_started_ms": spread(breakdown["claim_to_started_ms"]),
            # The idle worker's longest sleep without a wake-up (the CLI has no option for it).
            "worker_poll_seconds": WorkerConfig().poll_seconds,
            # How often an idle SQLite store looks for other processes' commits (data_version).
            "sqlite_poll_seconds": (
                sqlite_changes.POLL_INTERVAL if store.backend == "sqlite" else None
            ),
            "listener_seen": listening,
            "latencies_ms": latencies,
            "states": _states(store),
        }


# -- (b) no-op jobs per second -------------------------------------------------------------------


def _submit_bulk(client: Any, n: int) -> float:
    from dockyard import SubmitRequest

    start = time.perf_counter()
    for offset in range(0, n, MAX_BATCH):
        size = min(MAX_BATCH, n - offset)
        client.submit_requests([SubmitRequest(definition="bench") for _ in range(size)])
    return time.perf_counter() - start


def scenario_throughput(args: ScenarioArgs) -> dict[str, Any]:
    """(b): ``n`` no-op Python jobs in bulk, then ``processes`` burst workers of ``concurrency``."""
    import dockyard

    with fresh_store(args.backend, args.server_url) as store:
        with dockyard.connect(store.url, home=store.home) as client:
            client.register(DEFINITION, name="bench")
            submit_seconds = _submit_bulk(client, args.n)
        before = _table_writes(store)
        with Workers(store, args.processes, args.concurrency, burst=True) as workers:
            wall = workers.wait(timeout=900)
        states = _states(store)
        writes = _writes_per_job(before, _table_writes(store, settle=before), args.n)
        if states.get("SUCCEEDED", 0) != args.n:
            raise RuntimeError(f"expected {args.n} SUCCEEDED jobs, found {states}")
        ((first, last),) = sql_rows(
            store,
            f"SELECT {_epoch(store, 'MIN(started_at)')}, {_epoch(store, 'MAX(stopped_at)')}"
            " FROM jobs",
        )
        per_worker = sql_rows(
            store, "SELECT worker_id, COUNT(*) FROM attempts GROUP BY worker_id ORDER BY 2 DESC"
        )
        seconds = float(last) - float(first)
        return {
            "seconds": seconds,
            "jobs_per_s": args.n / seconds,
            "spawn_to_exit_seconds": wall,
            "submit_seconds": submit_seconds,
            "jobs_per_worker": [int(count) for _, count in per_worker],
            "states": states,
            "writes_per_job": writes,
        }


_WRITE_COUNTERS = ("n_tup_ins", "n_tup_upd", "n_tup_hot_upd", "n_tup_del")


def _table_writes(
    store: Store, settle: dict[str, dict[str, int]] | None = None
) -> dict[str, dict[str, int]]:
    """PostgreSQL's row-write counters of ``jobs`` and ``attempts`` in the store's schema.

    A backend reports its counters at most once a second, and at its exit: with ``settle`` (the
    counters before the drain), read until they moved and then held still for a moment."""
    if store.backend != "postgres":
        return {}
    sql = (
        f"SELECT relname, {', '.join(_WRITE_COUNTERS)} FROM pg_stat_user_tables"
        " WHERE schemaname = %s AND relname IN ('jobs', 'attempts')"
    )

    def read() -> dict[str, dict[str, int]]:
        rows = sql_rows(store, sql, (store.schema,))
        return {
            str(row[0]): dict(zip(_WRITE_COUNTERS, map(int, row[1:]), strict=True)) for row in rows
        }

    current = read()
    deadline = time.monotonic() + 5.0
    while settle is not None and time.monotonic() < deadline:
        time.sleep(0.5)  # a bench, not a test: the counters have no event to wait for
        again = read()
        if again == current and again != settle:
            break
        current = again
    return current


def _writes_per_job(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], n: int
) -> dict[str, float]:
    """Row writes per job during the drain, by table and counter (``jobs.n_tup_upd``…)."""
    return {
        f"{table}.{counter}": (after[table][counter] - before.get(table, {}).get(counter, 0)) / n
        for table in sorted(after)
        for counter in _WRITE_COUNTERS
    }


# -- (c) claim time vs history -------------------------------------------------------------------

# Finished jobs as Dockyard leaves them (SUCCEEDED, no worker, no lease), one a 100 ms apart
# ending two days ago (inside the default retention), each with its one closed attempt.
_JOB_COLUMNS = (
    "id, name, definition_name, definition_revision, state, status_reason, queue, group_key,"
    " priority, idempotency_key, payload, overrides, parameters, max_attempts, attempt_count,"
    " attempts_used, created_at, not_before, started_at, stopped_at, worker_id,"
    " lease_expires_at, exit_code, result"
)
#: One chunk of the history, rows lo..hi of n, with their attempts, in one statement.
_PG_HISTORY = (
    f"WITH filled AS (INSERT INTO jobs ({_JOB_COLUMNS})"
    " SELECT gen_random_uuid()::text, 'bench', 'bench', 1, 'SUCCEEDED', NULL, 'default', NULL,"
    " 0, NULL, NULL, '{}', '{}', 1, 1, 1, t, t, t + interval '5 ms', t + interval '9 ms',"
    " NULL, NULL, NULL, NULL"
    " FROM generate_series(%(lo)s, %(hi)s) AS i,"
    " LATERAL (SELECT now() - interval '2 days' - (%(n)s - i) * interval '100 ms' AS t) AS x"
    " ORDER BY i RETURNING id, started_at, stopped_at)"
    " INSERT INTO attempts (job_id, number, worker_id, claimed_at, started_at, stopped_at,"
    " exit_code, reason, status_reason, counted)"
    " SELECT id, 1, 'bench-history', started_at - interval '1 ms', started_at, stopped_at,"
    " NULL, NULL, NULL, true FROM filled"
)
PG_FILL_CHUNK = 200_000
_SQLITE_HISTORY = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
    f" INSERT INTO jobs ({_JOB_COLUMNS})"
    " SELECT lower(substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-'"
    " || substr(h, 17, 4) || '-' || substr(h, 21, 12)), 'bench', 'bench', 1, 'SUCCEEDED', NULL,"
    " 'default', NULL, 0, NULL, NULL, '{}', '{}', 1, 1, 1, t, t, t + 0.005, t + 0.009,"
    " NULL, NULL, NULL, NULL"
    " FROM (SELECT hex(randomblob(16)) AS h, ? - (? - i) * 0.1 AS t FROM n)"
)
_SQLITE_HISTORY_ATTEMPTS = (
    "INSERT INTO attempts (job_id, number, worker_id, claimed_at, started_at, stopped_at,"
    " exit_code, reason, status_reason, counted)"
    " SELECT id, 1, 'bench-history', started_at - 0.001, started_at, stopped_at,"
    " NULL, NULL, NULL, 1 FROM jobs WHERE state = 'SUCCEEDED'"
)


def _fill_postgres(store: Store, rows: int) -> None:
    """In chunks of their own transaction, each retried when the server restarts under it."""
    import psycopg

    for lo in range(1, rows + 1, PG_FILL_CHUNK):
        chunk = {"lo": lo, "hi": min(lo + PG_FILL_CHUNK - 1, rows), "n": rows}
        for attempt in range(5):
            try:
                with psycopg.connect(store.url, autocommit=True, connect_timeout=10) as conn:
                    with conn.transaction():
                        conn.execute(_PG_HISTORY, chunk)
                break
            except psycopg.OperationalError as error:
                print(f"history chunk {lo}: {error}; retrying", file=sys.stderr)
                postmaster_start(store.url)
                if attempt == 4:
                    raise


def fill_history(store: Store, rows: int) -> float:
    """Insert ``rows`` finished jobs (and their attempts) straight in SQL; return the seconds."""
    start = time.perf_counter()
    if store.backend == "postgres":
        _fill_postgres(store, rows)
    else:
        db = sqlite3.connect(store.sqlite_path, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout = 30000")
            # The random ids land all over the id index: a large page cache keeps the fill fast.
            db.execute("PRAGMA cache_size = -262144")
            db.execute("BEGIN IMMEDIATE")
            db.execute(_SQLITE_HISTORY, (rows, time.time() - 2 * 86400, rows))
            db.execute(_SQLITE_HISTORY_ATTEMPTS)
            db.execute("COMMIT")
        finally:
            db.close()
    found = sql_rows(store, "SELECT COUNT(*) FROM jobs WHERE state = 'SUCCEEDED'")[0][0]
    if found != rows:
        raise RuntimeError(f"history: {found} finished jobs, not {rows}")
    return time.perf_counter() - start


class _Captured(Exception):
    """Raised by a connection stand-in once it ran the claim statement: rolls the claim back."""


class _StatementProbe:
    """Stands in for the connection of a backend's claim function: runs only its first statement
    (the claim proper), optionally under EXPLAIN, times it and raises :class:`_Captured`."""

    def __init__(self, conn: Any, prefix: str = "") -> None:
        self._conn = conn
        self._prefix = prefix
        self.seconds = 0.0
        self.rows: list[Any] = []

    async def execute(self, sql: str, args: Any = None) -> Any:  # psycopg's AsyncConnection
        start = time.perf_counter()
        cursor = await self._conn.execute(self._prefix + sql, args)
        self.rows = await cursor.fetchall()
        self.seconds = time.perf_counter() - start
        raise _Captured

    def sqlite_execute(self, sql: str, args: Any = ()) -> Any:  # sqlite3.Connection.execute
        start = time.perf_counter()
        self.rows = self._conn.execute(self._prefix + sql, args).fetchall()
        self.seconds = time.perf_counter() - start
        raise _Captured


class _SqliteProbe:
    def __init__(self, probe: _StatementProbe) -> None:
        self.execute = probe.sqlite_execute


async def _probe_postgres(store: Store, request: Any, runs: int) -> dict[str, Any]:
    """The claim statement alone: once under EXPLAIN (ANALYZE, BUFFERS, WAL) for its plan and
    the pages and WAL it writes, then ``runs`` times timed; each in a transaction rolled back."""
    import psycopg

    from dockyard.storage.postgres.jobs import _claim

    timings: list[float] = []
    plan: list[str] = []
    async with await psycopg.AsyncConnection.connect(store.url, autocommit=True) as conn:
        await conn.execute("SET TIME ZONE 'UTC'")
        for i in range(runs + 1):
            explain = i == 0
            probe = _StatementProbe(conn, "EXPLAIN (ANALYZE, BUFFERS, WAL) " if explain else "")
            with contextlib.suppress(_Captured):
                async with conn.transaction():
                    await _claim(cast(Any, probe), request)
            if explain:
                plan = [row[0] for row in probe.rows]
            else:
                timings.append(probe.seconds)

    def first(prefix: str) -> str | None:
        found = [line.strip() for line in plan if line.strip().startswith(prefix)]
        return found[0] if found else None

    executed = first("Execution Time")
    return {
        "statement_ms": statistics.median(timings) * 1000,
        "plan": plan,
        "explain_execution_ms": None if executed is None else float(executed.split()[2]),
        # The top node's figures: every page the claim touched and the WAL it wrote.
        "explain_buffers": first("Buffers:"),
        "explain_wal": first("WAL:"),
    }


def _probe_sqlite(store: Store, request: Any, runs: int) -> dict[str, Any]:
    from dockyard.storage.sqlite.jobs import claim_jobs as _claim

    timings: list[float] = []
    plan: list[str] = []
    db = sqlite3.connect(store.sqlite_path, isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        for i in range(runs + 1):
            explain = i == runs
            probe = _StatementProbe(db, "EXPLAIN QUERY PLAN " if explain else "")
            db.execute("BEGIN IMMEDIATE")
            try:
                _claim(cast(Any, _SqliteProbe(probe)), request)
            except _Captured:
                pass
            finally:
                db.execute("ROLLBACK")
            if explain:
                plan = [str(row["detail"]) for row in probe.rows]
            else:
                timings.append(probe.seconds)
    finally:
        db.close()
    return {"statement_ms": statistics.median(timings) * 1000, "plan": plan}


def _claim_request(limit: int) -> Any:
    from dockyard.storage import ClaimRequest

    now = datetime.now(UTC)
    return ClaimRequest(
        worker_id="bench-claim",
        queues=None,
        limit=limit,
        now=now,
        lease_until=now + timedelta(minutes=10),
    )


async def _submit_backlog(app: Any, jobs: int) -> None:
    from dockyard import SubmitRequest

    for offset in range(0, jobs, MAX_BATCH):
        size = min(MAX_BATCH, jobs - offset)
        await app.jobs.submit_many([SubmitRequest(definition="bench") for _ in range(size)])


async def _timed_claims(app: Any, count: int, limit: int) -> list[float]:
    timings = []
    for i in range(count):
        request = _claim_request(limit)
        start = time.perf_counter()
        claimed = await app.storage.jobs.claim(request)
        timings.append(time.perf_counter() - start)
        if len(claimed) != limit:
            raise RuntimeError(f"claim {i} took {len(claimed)} jobs, not {limit}")
    return timings


CLAIM_WARMUP = 10


async def _claim_case(store: Store, args: ScenarioArgs) -> dict[str, Any]:
    from dockyard.app import Dockyard
    from dockyard.settings import Settings

    app = await Dockyard.open(Settings.resolve(home=store.home, url=store.url, environ={}))
    restarts = 0
    try:
        await app.definitions.register(DEFINITION, "bench")
        # History first, as in life: the finished jobs are older than the backlog.
        fill_seconds = 0.0
        if args.history:
            fill_seconds = await asyncio.to_thread(fill_history, store, args.history)
        await _submit_backlog(app, args.backlog)
        analyze = "ANALYZE" if store.backend == "sqlite" else "ANALYZE jobs, attempts"
        await asyncio.to_thread(sql_rows, store, analyze)
        if store.backend == "postgres":
            # Both cases start right after a checkpoint, so that the full-page images the
            # claims write (the first change of a page after a checkpoint) count alike;
            # otherwise whether the fill's WAL happened to trigger one decides.
            await asyncio.to_thread(sql_rows, store, "CHECKPOINT")
        for attempt in range(4):
            epoch = None
            if store.backend == "postgres":
                epoch = await asyncio.to_thread(postmaster_start, store.url)
            timings = await _timed_claims(app, CLAIM_WARMUP + args.claims, args.limit)
            timings = timings[CLAIM_WARMUP:]
            if epoch is None or epoch == await asyncio.to_thread(postmaster_start, store.url):
                break
            # PostgreSQL restarted during the claims (another user of the server): again, on a
            # fresh backlog as large as what these claims took.
            restarts += 1
            print("PostgreSQL restarted during the claims; measuring again", file=sys.stderr)
            if attempt < 3:
                await _submit_backlog(app, (CLAIM_WARMUP + args.claims) * args.limit)
    finally:
        await app.close()
    request = _claim_request(args.limit)
    for attempt in range(4):
        try:
            if store.backend == "postgres":
                probe = await _probe_postgres(store, request, runs=50)
            else:
                probe = await asyncio.to_thread(_probe_sqlite, store, request, 50)
            break
        except Exception as error:  # a restart of the shared server: wait for it, try again
            if store.backend != "postgres" or attempt == 3:
                raise
            print(f"statement probe: {error}; retrying", file=sys.stderr)
            await asyncio.to_thread(postmaster_start, store.url)
    ms = [t * 1000 for t in timings]
    quarter = max(len(ms) // 4, 1)
    return {
        "claim_ms": spread(ms),
        "first_quarter_p50_ms": statistics.median(ms[:quarter]),
        "last_quarter_p50_ms": statistics.median(ms[-quarter:]),
        "fill_seconds": fill_seconds,
        "restarts_during_claims": restarts,
        # Only a restart inside the last measurement taints the result.
        "postgres_restarted": restarts == 4,
        **probe,
    }


def scenario_claim(args: ScenarioArgs) -> dict[str, Any]:
    """(c): ``claims`` claims of ``limit`` jobs from a backlog, over ``history`` finished jobs."""
    with fresh_store(args.backend, args.server_url) as store:
        profiler = ThreadProfiler("cpu") if args.profile else None
        with profiler if profiler is not None else contextlib.nullcontext():
            result = asyncio.run(_claim_case(store, args))
        if profiler is not None and args.profile:
            profiler.dump(Path(args.profile))
        result["states"] = _states(store)
        result["history"] = args.history
        result["backlog"] = args.backlog
        return result


SCENARIOS: dict[str, Callable[[ScenarioArgs], dict[str, Any]]] = {
    "latency": scenario_latency,
    "throughput": scenario_throughput,
    "claim": scenario_claim,
}


# -- the orchestrator ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    key: str
    part: str  # "a", "b" or "c"
    label: str
    scenario: str
    backend: str
    n: int = 0
    concurrency: int = 4
    processes: int = 1
    history: int = 0


def build_cases(options: argparse.Namespace) -> list[Case]:
    cases: list[Case] = []
    for backend in options.backends:
        cases.append(
            Case(f"a_{backend}", "a", f"(a) {backend}", "latency", backend, options.latency_jobs)
        )
    for processes in options.processes:
        for backend in options.backends:
            c = options.concurrency
            cases.append(
                Case(
                    f"b_{backend}_c{c}x{processes}",
                    "b",
                    f"(b) {backend}, {processes} × c={c}",
                    "throughput",
                    backend,
                    options.python_jobs,
                    c,
                    processes,
                )
            )
    for backend in options.backends:
        for history in (0, options.history):
            cases.append(
                Case(
                    f"c_{backend}_{'history' if history else 'empty'}",
                    "c",
                    f"(c) {backend}, {history:,} finished",
                    "claim",
                    backend,
                    history=history,
                )
            )
    if options.only:
        cases = [case for case in cases if case.key.startswith(tuple(options.only))]
    return cases


def _error_line(stderr: str) -> str:
    """The last ``SomeError: message`` line of a traceback (worker logs may follow it)."""
    for line in reversed(stderr.splitlines()):
        head, sep, _ = line.partition(": ")
        if sep and head and not head[0].isspace() and " " not in head:
            return line
    return stderr.strip().splitlines()[-1] if stderr.strip() else "?"


def _spawn(case: Case, options: argparse.Namespace) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "bench.postgres",
        "--scenario",
        case.scenario,
        "--backend",
        case.backend,
        "--postgres-url",
        options.postgres_url,
        "--n",
        str(case.n),
        "--worker-concurrency",
        str(case.concurrency),
        "--worker-processes",
        str(case.processes),
        "--interval-ms",
        str(options.interval_ms),
        "--history-rows",
        str(case.history),
        "--backlog",
        str(options.backlog),
        "--claims",
        str(options.claims),
        "--claim-limit",
        str(options.claim_limit),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    discarded: list[dict[str, Any]] = []
    for attempt in range(1, options.attempts + 1):
        # PostgreSQL is shared: another user may restart it under a case. A case that failed, or
        # saw the server restart while it measured, runs again (up to --attempts times).
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            reason = _error_line(done.stderr)
            print(f"{case.key}: attempt {attempt} failed: {reason}", file=sys.stderr)
            discarded.append({"failed": done.stderr[-3000:]})
            if attempt == options.attempts:
                raise RuntimeError(f"{case.key} failed:\n{done.stderr[-3000:]}")
            if case.backend == "postgres":
                postmaster_start(options.postgres_url)
            continue
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        if result.get("postgres_restarted") and attempt < options.attempts:
            print(f"{case.key}: PostgreSQL restarted during attempt {attempt}", file=sys.stderr)
            discarded.append({"restarted": True})
            continue
        result["attempt"] = attempt
        result["discarded"] = discarded
        return result
    raise AssertionError("unreachable")


def _summarise(case: Case, all_runs: list[dict[str, Any]]) -> dict[str, Any]:
    # A run that saw PostgreSQL restart on its last attempt counts only when no run is clean.
    clean = [run for run in all_runs if not run.get("postgres_restarted")]
    runs = clean or all_runs
    summary: dict[str, Any] = {
        **asdict(case),
        "runs": all_runs,
        "restarted_runs": len(all_runs) - len(clean),
        "counted_runs": len(runs),
    }
    if case.part == "a":
        for key in ("latency_ms", "submit_call_ms", "created_to_claim_ms", "claim_to_started_ms"):
            summary[key] = {stat: median([run[key][stat] for run in runs]) for stat in runs[0][key]}
        pooled = [value for run in runs for value in run["latencies_ms"]]
        summary["pooled_latency_ms"] = spread(pooled)
        summary["worker_poll_seconds"] = runs[0]["worker_poll_seconds"]
        summary["sqlite_poll_seconds"] = runs[0].get("sqlite_poll_seconds")
        summary["listener_seen"] = all(run["listener_seen"] for run in runs)
        for run in all_runs:
            del run["latencies_ms"]  # the pooled spread keeps what matters; the JSON stays small
    elif case.part == "b":
        rates = [run["jobs_per_s"] for run in runs]
        summary["median_jobs_per_s"] = median(rates)
        summary["min_jobs_per_s"] = min(rates)
        summary["max_jobs_per_s"] = max(rates)
        summary["median_seconds"] = median([run["seconds"] for run in runs])
        summary["median_spawn_to_exit_seconds"] = median(
            [run["spawn_to_exit_seconds"] for run in runs]
        )
        writes = [run["writes_per_job"] for run in runs if run.get("writes_per_job")]
        if writes:
            summary["writes_per_job"] = {key: median([w[key] for w in writes]) for key in writes[0]}
    else:
        summary["median_claim_ms"] = median([run["claim_ms"]["p50"] for run in runs])
        summary["p95_claim_ms"] = median([run["claim_ms"]["p95"] for run in runs])
        summary["statement_ms"] = median([run["statement_ms"] for run in runs])
        summary["fill_seconds"] = median([run["fill_seconds"] for run in runs])
        summary["explain_wal"] = runs[-1].get("explain_wal")
        summary["explain_buffers"] = runs[-1].get("explain_buffers")
    return summary


def _claim_ratios(summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ratios = {}
    for backend in BACKENDS:
        empty, full = summaries.get(f"c_{backend}_empty"), summaries.get(f"c_{backend}_history")
        if not empty or not full:
            continue
        per_round = [
            b["claim_ms"]["p50"] / a["claim_ms"]["p50"]
            for a, b in zip(empty["runs"], full["runs"], strict=True)
        ]
        ratios[backend] = {
            "claim": statistics.median(per_round),
            "per_round": per_round,
            "statement": full["statement_ms"] / empty["statement_ms"],
        }
    return ratios


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _wal(line: str | None) -> str:
    """``WAL: records=52 fpi=3 bytes=31000`` as ``3 FPI, 30 KiB``."""
    if not line:
        return "—"
    fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
    return f"{fields.get('fpi', '0')} FPI, {int(fields.get('bytes', '0')) / 1024:.0f} KiB"


def render_tables(summaries: dict[str, dict[str, Any]], ratios: dict[str, Any]) -> str:
    """Markdown tables, one per part (they paste into the README as they are)."""
    parts: list[str] = []
    a = [s for s in summaries.values() if s["part"] == "a"]
    if a:
        lines = [
            "| (a) submit → start, idle worker | jobs | p50 ms | p95 ms | p99 ms | max ms"
            " | created → claim p50 | claim → start p50 | submit call p50 | worker poll |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for s in a:
            lat = s["latency_ms"]
            wake = "LISTEN/NOTIFY"
            if s["backend"] == "sqlite":
                every = s["sqlite_poll_seconds"]
                wake = "data_version" + (f" every {every * 1000:g} ms" if every else " polling")
            lines.append(
                f"| {s['backend']} ({wake}) | {s['n']} | {lat['p50']:.1f} | {lat['p95']:.1f}"
                f" | {lat['p99']:.1f} | {lat['max']:.1f}"
                f" | {s['created_to_claim_ms']['p50']:.1f} | {s['claim_to_started_ms']['p50']:.1f}"
                f" | {s['submit_call_ms']['p50']:.1f} | {s['worker_poll_seconds']:g} s |"
            )
        parts.append("\n".join(lines))
    b = [s for s in summaries.values() if s["part"] == "b"]
    if b:
        lines = [
            "| (b) no-op Python jobs | N | jobs/s (median) | min–max jobs/s"
            " | first start → last finish s | spawn → exit s"
            " | per job: jobs upd (HOT) | attempts ins / upd (HOT) |",
            "|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for s in b:
            w = s.get("writes_per_job") or {}
            jobs = attempts = "—"
            if w:
                jobs = f"{w['jobs.n_tup_upd']:.2f} ({w['jobs.n_tup_hot_upd']:.2f})"
                attempts = (
                    f"{w['attempts.n_tup_ins']:.2f} / {w['attempts.n_tup_upd']:.2f}"
                    f" ({w['attempts.n_tup_hot_upd']:.2f})"
                )
            lines.append(
                f"| {s['backend']}, {s['processes']} process(es) × c={s['concurrency']}"
                f" | {s['n']:,} | {s['median_jobs_per_s']:,.0f}"
                f" | {s['min_jobs_per_s']:,.0f}–{s['max_jobs_per_s']:,.0f}"
                f" | {s['median_seconds']:.2f} | {s['median_spawn_to_exit_seconds']:.2f}"
                f" | {jobs} | {attempts} |"
            )
        parts.append("\n".join(lines))
    c = [s for s in summaries.values() if s["part"] == "c"]
    if c:
        lines = [
            "| (c) claim of 16 from the backlog | finished rows | claim() p50 ms | claim() p95 ms"
            " | statement ms | × empty (claim) | × empty (statement) | one statement's WAL |",
            "|---|--:|--:|--:|--:|--:|--:|---|",
        ]
        for s in c:
            ratio = ratios.get(s["backend"]) if s["history"] else None
            lines.append(
                f"| {s['backend']} | {s['history']:,} | {s['median_claim_ms']:.2f}"
                f" | {s['p95_claim_ms']:.2f} | {s['statement_ms']:.2f}"
                f" | {'—' if ratio is None else format(ratio['claim'], '.2f') + '×'}"
                f" | {'—' if ratio is None else format(ratio['statement'], '.2f') + '×'}"
                f" | {_wal(s.get('explain_wal'))} |"
            )
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def render_verdict(summaries: dict[str, dict[str, Any]], ratios: dict[str, Any]) -> str:
    lines = []
    a = summaries.get("a_postgres")
    if a:
        lat = a["latency_ms"]
        ok = lat["p50"] <= TARGET_P50_MS and lat["p99"] <= TARGET_P99_MS
        lines.append(
            f"(a) PostgreSQL p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms (medians of rounds;"
            f" pooled p99 {a['pooled_latency_ms']['p99']:.1f} ms):"
            f" {'meets' if ok else 'MISSES'} the ≤ {TARGET_P50_MS:g} / ≤ {TARGET_P99_MS:g} ms"
            f" target. The slowest of {a['n']} × {a['counted_runs']} starts took"
            f" {a['pooled_latency_ms']['max']:.1f} ms while the worker polls every"
            f" {a['worker_poll_seconds']:g} s: NOTIFY woke it (its LISTEN"
            f" {'seen' if a['listener_seen'] else 'NOT seen'} in pg_stat_activity)"
        )
    tainted = [
        f"{key} {s['restarted_runs']}/{len(s['runs'])}"
        for key, s in summaries.items()
        if s["restarted_runs"]
    ]
    if tainted:
        lines.append(
            "Runs that saw PostgreSQL restart on every attempt (counted only where no run was"
            f" clean): {', '.join(tainted)}"
        )
    for backend, ratio in ratios.items():
        verdict = "meets" if ratio["claim"] <= TARGET_CLAIM_RATIO else "MISSES"
        target = f"; {verdict} the ≤ {TARGET_CLAIM_RATIO}× target" if backend == "postgres" else ""
        lines.append(
            f"(c) {backend}: claim with history / empty = {ratio['claim']:.2f}× (per round"
            f" {', '.join(f'{r:.2f}' for r in ratio['per_round'])}), statement alone"
            f" {ratio['statement']:.2f}×{target}"
        )
    return "\n".join(lines)


def _postgres_meta(url: str) -> dict[str, Any]:
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            settings: dict[str, str] = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                    (
                        [
                            "fsync",
                            "synchronous_commit",
                            "autovacuum",
                            "shared_buffers",
                            "wal_sync_method",
                            "max_wal_size",
                        ],
                    ),
                ).fetchall()
            )
            row = conn.execute("SELECT version(), pg_postmaster_start_time()").fetchone()
    except psycopg.Error as error:
        return {"error": str(error)}
    assert row is not None
    return {"version": row[0], "postmaster_start": row[1].isoformat(), "settings": settings}


def _meta(options: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    return {
        **run_meta("bench.postgres", sys.argv[1:]),
        "psycopg": psycopg.__version__,
        "sqlite": sqlite3.sqlite_version,
        "runs": options.runs,
        "claim_runs": options.claim_runs,
        "postgres_url": options.postgres_url,
        "postgres": _postgres_meta(options.postgres_url),
        "options": {k: v for k, v in vars(options).items() if k not in ("scenario", "profile")},
    }


def _progress(case: Case, round_: int, rounds: int, result: dict[str, Any]) -> None:
    if case.part == "a":
        lat = result["latency_ms"]
        shown = f"p50 {lat['p50']:.1f} ms  p95 {lat['p95']:.1f} ms  p99 {lat['p99']:.1f} ms"
    elif case.part == "b":
        shown = f"{result['jobs_per_s']:,.0f} jobs/s ({result['seconds']:.2f} s)"
    else:
        shown = (
            f"claim p50 {result['claim_ms']['p50']:.2f} ms, statement"
            f" {result['statement_ms']:.2f} ms (fill {result['fill_seconds']:.1f} s)"
        )
    load = result.get("load", [0.0])[0]
    print(f"round {round_}/{rounds}  {case.key:<26} {shown}  (load {load:.1f})", file=sys.stderr)


def orchestrate(options: argparse.Namespace) -> dict[str, Any]:
    cases = build_cases(options)
    meta = _meta(options)
    if "postgres" in options.backends:
        dropped = drop_stale_schemas(options.postgres_url)
        if dropped:
            print(f"dropped stale schemas: {', '.join(dropped)}", file=sys.stderr)
    runs: dict[str, list[dict[str, Any]]] = {case.key: [] for case in cases}
    started = time.perf_counter()
    rounds = max(options.runs, options.claim_runs)
    for round_ in range(1, rounds + 1):
        for case in cases:
            if round_ > (options.claim_runs if case.part == "c" else options.runs):
                continue
            result = _spawn(case, options)
            runs[case.key].append(result)
            limit = options.claim_runs if case.part == "c" else options.runs
            _progress(case, round_, limit, result)
    summaries = {case.key: _summarise(case, runs[case.key]) for case in cases}
    meta["loadavg_at_end"] = os.getloadavg()
    meta["seconds"] = time.perf_counter() - started
    meta["postgres_at_end"] = _postgres_meta(options.postgres_url)
    return {
        "meta": meta,
        "targets": {
            "latency_p50_ms": TARGET_P50_MS,
            "latency_p99_ms": TARGET_P99_MS,
            "claim_ratio": TARGET_CLAIM_RATIO,
        },
        "cases": summaries,
        "claim_ratios": _claim_ratios(summaries),
    }


def render_header(meta: dict[str, Any]) -> str:
    start, end = meta["loadavg_at_start"][0], meta["loadavg_at_end"][0]
    pg = meta["postgres"]
    server = pg.get("version", "?").split(" on ")[0]
    settings = pg.get("settings", {})
    knobs = ", ".join(f"{k}={settings[k]}" for k in sorted(settings))
    restarted = ""
    end_start = meta["postgres_at_end"].get("postmaster_start")
    if end_start and end_start != pg.get("postmaster_start"):
        restarted = " — PostgreSQL RESTARTED during the run"
    return (
        f"\n{meta['command']}  ({meta['git_commit']}; {meta['runs']} round(s) of (a) and (b),"
        f" {meta['claim_runs']} of (c), medians; {meta['cpus']} CPUs, load {start:.1f}→{end:.1f};"
        f" Python {meta['python']}; {meta['seconds']:.0f} s)\n{server} ({knobs}){restarted};"
        f" SQLite {meta['sqlite']} (WAL, synchronous=NORMAL)\n"
    )


# -- command line --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.postgres", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small N and 1 round (a smoke run)")
    parser.add_argument("--runs", type=int, help="rounds of (a) and (b) [3]")
    parser.add_argument("--claim-runs", type=int, help="rounds of (c) [1]")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("DOCKYARD_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help=f"a server URL; each case makes (and drops) its own schema [{DEFAULT_POSTGRES_URL}]",
    )
    parser.add_argument(
        "--backends", type=names, default=list(BACKENDS), help="postgres,sqlite [both]"
    )
    parser.add_argument("--latency-jobs", type=int, help="(a) jobs submitted one by one [200]")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="(a) between submits [20]")
    parser.add_argument("--python-jobs", type=int, help="(b) N [20000]")
    parser.add_argument("--concurrency", type=int, default=16, help="(b) per worker [16]")
    parser.add_argument(
        "--processes",
        type=int_list,
        default=[1, 2],
        help="(b) worker processes, e.g. 1,2 [1,2]",
    )
    parser.add_argument("--history", type=int, help="(c) finished jobs [1000000]")
    parser.add_argument("--backlog", type=int, help="(c) runnable jobs [5000]")
    parser.add_argument("--claims", type=int, help="(c) timed claims per case [200]")
    parser.add_argument("--claim-limit", type=int, default=16, help="(c) jobs per claim [16]")
    parser.add_argument(
        "--only",
        type=names,
        help="cases whose key starts with one of these: a, b_postgres, c_sqlite_history [all]",
    )
    parser.add_argument(
        "--attempts",
        type=int,
        default=4,
        help="runs of a case that fails or sees PostgreSQL restart, before giving up [4]",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    one = parser.add_argument_group("one scenario (what the orchestrator spawns)")
    one.add_argument("--scenario", choices=sorted(SCENARIOS))
    one.add_argument("--backend", choices=BACKENDS, default="postgres")
    one.add_argument("--n", type=int, default=200)
    one.add_argument("--worker-concurrency", type=int, default=4)
    one.add_argument("--worker-processes", type=int, default=1)
    one.add_argument("--history-rows", type=int, default=0)
    one.add_argument("--profile", help="(c) write a pstats file of the claims (all threads, CPU)")
    options = parser.parse_args(argv)
    unknown = set(options.backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend {', '.join(sorted(unknown))}")
    quick = options.quick
    apply_defaults(
        options,
        {
            "runs": 1 if quick else 3,
            "claim_runs": 1,
            "latency_jobs": 100 if quick else 200,
            "python_jobs": 2000 if quick else 20_000,
            "history": 100_000 if quick else 1_000_000,
            "backlog": 2000 if quick else 5000,
            "claims": 50 if quick else 200,
        },
    )
    return options


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    if options.scenario:
        args = ScenarioArgs(
            backend=options.backend,
            server_url=options.postgres_url,
            n=options.n,
            concurrency=options.worker_concurrency,
            processes=options.worker_processes,
            interval=options.interval_ms / 1000,
            history=options.history_rows,
            backlog=options.backlog,
            claims=options.claims,
            limit=options.claim_limit,
            profile=options.profile,
        )
        before = postmaster_start(args.server_url) if args.backend == "postgres" else None
        load = os.getloadavg()[0]
        result = SCENARIOS[options.scenario](args)
        # The 1-minute load average around the case: on a shared machine, it explains outliers.
        result["load"] = [load, os.getloadavg()[0]]
        if before is not None and "postgres_restarted" not in result:
            result["postgres_restarted"] = postmaster_start(args.server_url) != before
        print(json.dumps(result))
        return
    report = orchestrate(options)
    tables = render_tables(report["cases"], report["claim_ratios"])
    verdict = render_verdict(report["cases"], report["claim_ratios"])
    print(render_header(report["meta"]))
    print(tables)
    print()
    print(verdict)
    if not options.no_save:
        path = save("postgres", {**report, "table": tables, "verdict": verdict})
        print(f"\nsaved {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
