"""Dockyard on SQLite and PostgreSQL against Celery, RQ, Dramatiq, arq, procrastinate, pgqueuer.

Run from the repository root::

    python -m bench.peers            # full run: 3 rounds, medians, tables, bench/results/peers-*.json
    python -m bench.peers --quick    # smoke run: small N, 1 round

Each peer is installed at a pinned version in a virtual environment of its own
(``bench/.venvs/<peer>``, made on first use and again when its pins change) and measured by a
small driver (``bench/peers/<peer>_driver.py``) run with that environment's interpreter, one
process per measurement, on a fresh store: a new PostgreSQL database (dropped afterwards) for
procrastinate and pgqueuer, a flushed Redis database for Celery, RQ, Dramatiq and arq, and
bench/postgres.py's fresh schema or SQLite file for Dockyard. Every system runs the same job
body, ``bench.peers.harness.record``, and its workers are real processes started with the
system's own CLI. See bench/README.md ("Peer comparison") for what each part measures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.common import REPO, apply_defaults, median, names, run_meta, save

VENVS = REPO / "bench" / ".venvs"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
DATABASE_PREFIX = "peers_"
MEASURES = ("a", "b", "c", "d", "e")


# -- the systems ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    key: str  # the driver's --variant
    label: str  # how its workers run, in the tables


@dataclass(frozen=True, slots=True)
class System:
    key: str
    name: str
    #: bench/.venvs/<venv>; None: this interpreter (Dockyard).
    venv: str | None
    requirements: tuple[str, ...]
    driver: str
    #: "redis", "postgres" (a database per run) or "dockyard" (bench.postgres's fresh_store).
    store: str
    bulk: str | None  # the bulk-enqueue API, None where there is none
    variants: tuple[Variant, ...]
    claims: bool = False  # (d) applies (PostgreSQL systems)
    backend: str | None = None  # Dockyard's
    #: Shown next to the system's name; what it is measured on.
    on: str = ""

    @property
    def dockyard(self) -> bool:
        return self.store == "dockyard"

    @property
    def uses_postgres(self) -> bool:
        return self.store == "postgres" or self.backend == "postgres"

    @property
    def python(self) -> str:
        return sys.executable if self.venv is None else str(VENVS / self.venv / "bin" / "python")


DOCKYARD_VARIANTS = (
    Variant("1x16", "1 × `worker --concurrency 16`"),
    Variant("2x16", "2 × `worker --concurrency 16`"),
    # The README's advice for many short jobs (functions, HTTP calls): raise it to 64.
    Variant("1x64", "1 × `worker --concurrency 64`"),
)

SYSTEMS: tuple[System, ...] = (
    System(
        "dockyard-sqlite",
        "Dockyard",
        None,
        (),
        "bench.peers.dockyard_driver",
        "dockyard",
        "`submit_requests` (10,000 a call)",
        DOCKYARD_VARIANTS,
        backend="sqlite",
        on="SQLite",
    ),
    System(
        "dockyard-postgres",
        "Dockyard",
        None,
        (),
        "bench.peers.dockyard_driver",
        "dockyard",
        "`submit_requests` (10,000 a call)",
        DOCKYARD_VARIANTS,
        claims=True,
        backend="postgres",
        on="PostgreSQL",
    ),
    System(
        "celery",
        "Celery",
        "celery",
        ("celery[redis]==5.7.0", "redis[hiredis]==8.1.0"),
        "bench.peers.celery_driver",
        "redis",
        None,
        (Variant("default", "prefork c=2, prefetch ×64"),),
        on="Redis",
    ),
    System(
        "rq",
        "RQ",
        "rq",
        ("rq==2.12.0", "redis[hiredis]==8.1.0"),
        "bench.peers.rq_driver",
        "redis",
        "`enqueue_many` (one pipeline)",
        (Variant("default", "`worker-pool` 2 × SimpleWorker"),),
        on="Redis",
    ),
    System(
        "dramatiq",
        "Dramatiq",
        "dramatiq",
        ("dramatiq[redis]==2.2.1", "redis[hiredis]==8.1.0"),
        "bench.peers.dramatiq_driver",
        "redis",
        None,
        (Variant("default", "2 processes × 8 threads (default)"),),
        on="Redis",
    ),
    System(
        "arq",
        "arq",
        "arq",
        ("arq==0.28.0", "redis[hiredis]==5.3.1"),
        "bench.peers.arq_driver",
        "redis",
        None,
        (
            Variant("default", "defaults (max_jobs 10, poll 0.5 s)"),
            Variant("poll10ms", "poll 10 ms (not a default)"),
        ),
        on="Redis",
    ),
    System(
        "procrastinate",
        "procrastinate",
        "procrastinate",
        ("procrastinate==3.10.0", "psycopg[binary]==3.3.9"),
        "bench.peers.procrastinate_driver",
        "postgres",
        "`batch_defer_async`",
        (Variant("default", "`worker --concurrency 10`"),),
        claims=True,
        on="PostgreSQL",
    ),
    System(
        "pgqueuer",
        "pgqueuer",
        "pgqueuer",
        # typer: pgqueuer 1.6.0's `pgq run` crashes with typer 0.29 (its --log-level default
        # reaches setup_fancy_logger as a str); 0.28.0 is the newest release that works.
        ("pgqueuer==1.6.0", "asyncpg==0.32.0", "typer==0.28.0"),
        "bench.peers.pgqueuer_driver",
        "postgres",
        "`enqueue` of lists (one UNNEST insert)",
        (Variant("default", "`pgq run`, batch 10 (default)"), Variant("batch50", "batch 50")),
        claims=True,
        on="PostgreSQL",
    ),
)

#: The figures the issue quotes (an earlier run on a 2-core machine like this one, 20,000 jobs).
REFERENCE: dict[str, dict[Any, float]] = {
    "b": {
        ("pgqueuer", "batch50"): 22_300,
        ("pgqueuer", "default"): 10_200,
        ("dramatiq", "default"): 4_200,
        ("celery", "default"): 3_200,
        ("arq", "default"): 2_200,
        ("procrastinate", "default"): 900,
        ("rq", "default"): 700,
    },
    "a_bulk": {"pgqueuer": 80_000, "procrastinate": 25_000},
    "c_p50": {"celery": 2.3, "rq": 2.6, "pgqueuer": 3.4},
}


def label(system: System) -> str:
    return f"{system.name} ({system.on})" if system.on else system.name


# -- virtual environments ------------------------------------------------------------------------


def ensure_venv(system: System, reinstall: bool = False) -> None:
    """bench/.venvs/<venv> with the pinned requirements (remade when the pins change)."""
    if system.venv is None:
        return
    path = VENVS / system.venv
    marker = path / "bench-requirements.json"
    wanted = {"python": platform.python_version(), "requirements": list(system.requirements)}
    if not reinstall and marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    print(f"installing {system.venv}: {' '.join(system.requirements)}", file=sys.stderr)
    if path.exists():
        shutil.rmtree(path)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    done = subprocess.run(
        [
            str(path / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            *system.requirements,
        ],
        capture_output=True,
        text=True,
    )
    (path / "install.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"pip install for {system.venv} failed:\n{done.stderr[-3000:]}")
    marker.write_text(json.dumps(wanted, indent=2) + "\n")


# -- Redis (a few commands over a socket: the project has no Redis client) -----------------------


def _redis_reply(stream: Any) -> Any:
    line = stream.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else stream.read(size + 2)[:-2].decode()
    if kind == b"*":
        return [_redis_reply(stream) for _ in range(int(rest))]
    raise RuntimeError(f"unexpected Redis reply {line!r}")


def redis_command(url: str, *args: str) -> Any:
    parts = urlsplit(url)
    db = (parts.path or "/0").lstrip("/") or "0"
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 10) as conn:
        stream = conn.makefile("rwb")
        for command in (("SELECT", db), args):
            stream.write(f"*{len(command)}\r\n".encode())
            for arg in command:
                data = arg.encode()
                stream.write(b"$%d\r\n%s\r\n" % (len(data), data))
            stream.flush()
            reply = _redis_reply(stream)
        return reply


def ensure_redis(url: str) -> None:
    try:
        redis_command(url, "PING")
        return
    except OSError:
        pass
    print("starting redis-server --daemonize yes", file=sys.stderr)
    subprocess.run(["redis-server", "--daemonize", "yes"], check=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            redis_command(url, "PING")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def redis_meta(url: str) -> dict[str, Any]:
    try:
        info = dict(
            line.split(":", 1)
            for line in redis_command(url, "INFO", "server").splitlines()
            if ":" in line
        )
        config: dict[str, str] = {}
        for name in ("save", "appendonly", "appendfsync"):
            reply = redis_command(url, "CONFIG", "GET", name)
            config[name] = reply[1] if len(reply) > 1 else "?"
    except (OSError, RuntimeError) as error:
        return {"error": str(error)}
    return {"version": info.get("redis_version"), "run_id": info.get("run_id"), "config": config}


# -- PostgreSQL ----------------------------------------------------------------------------------


def _database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _admin(server_url: str, sql: str) -> None:
    import psycopg

    for attempt in range(5):  # the shared server may be restarting
        try:
            with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(sql)
            return
        except psycopg.OperationalError as error:
            if attempt == 4:
                raise
            print(f"{sql.split(' WITH')[0]}: {error}; retrying", file=sys.stderr)
            from bench.postgres import postmaster_start

            postmaster_start(server_url)


@contextlib.contextmanager
def fresh_database(server_url: str, system: str) -> Iterator[str]:
    """A new database for one run (its name carries our pid: see drop_stale_databases)."""
    name = f"{DATABASE_PREFIX}{system}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _admin(server_url, f"CREATE DATABASE {name}")
    try:
        yield _database_url(server_url, name)
    finally:
        _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def drop_stale_databases(server_url: str) -> list[str]:
    """Drop the databases of earlier runs whose process is gone."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        names = [
            str(row[0])
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                (DATABASE_PREFIX.replace("_", r"\_") + "%",),
            )
        ]
    dropped = []
    for name in names:
        try:
            pid = int(name.rsplit("_", 2)[-2])
        except (IndexError, ValueError):
            continue
        try:
            os.kill(pid, 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        dropped.append(name)
    return dropped


# -- running a driver ----------------------------------------------------------------------------


@dataclass
class Options:
    runs: int
    claim_runs: int
    jobs: int
    latency_jobs: int
    interval_ms: float
    history: int
    backlog: int
    claims: int
    claim_limit: int
    attempts: int
    postgres_url: str
    redis_url: str
    measures: tuple[str, ...]
    systems: tuple[System, ...]
    argv: list[str] = field(default_factory=list)
    #: Dockyard's code for the whole run (a copy of src/ taken at the start; see dockyard_tree).
    dockyard_src: str | None = None


def _marker(system: System, options: Options) -> str | None:
    """What changes when the system's server restarts: the postmaster's or Redis's start."""
    if system.uses_postgres:
        from bench.postgres import postmaster_start

        return postmaster_start(options.postgres_url)
    if system.store == "redis":
        return str(redis_meta(options.redis_url).get("run_id"))
    return None


@contextlib.contextmanager
def _store(
    system: System, options: Options, fresh: bool = True
) -> Iterator[tuple[list[str], dict[str, str]]]:
    """A fresh store for one driver run: its arguments and environment."""
    if not fresh:
        yield [], {}
    elif system.store == "postgres":
        with fresh_database(options.postgres_url, system.key) as dsn:
            yield ["--dsn", dsn], {"PEERS_PG_DSN": dsn}
    elif system.store == "redis":
        redis_command(options.redis_url, "FLUSHDB")
        try:
            yield ["--redis-url", options.redis_url], {"PEERS_REDIS_URL": options.redis_url}
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                redis_command(options.redis_url, "FLUSHDB")
    else:
        assert system.backend is not None
        yield ["--backend", system.backend, "--dsn", options.postgres_url], {}


def _error_line(stderr: str) -> str:
    for line in reversed(stderr.splitlines()):
        head, sep, _ = line.partition(": ")
        if sep and head and not head[0].isspace() and " " not in head:
            return line
    return stderr.strip().splitlines()[-1] if stderr.strip() else "?"


def _run(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """Run a driver in a session of its own; on a timeout, end it and its workers (its group)."""
    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return -1, out, err + f"\nTimeoutError: no answer within {timeout:.0f} s"
    return proc.returncode, out, err


def run_driver(
    system: System,
    tail: Sequence[str],
    options: Options,
    timeout: float = 1800,
    store: bool = True,
) -> dict[str, Any]:
    """One measurement in a fresh process on a fresh store; again (up to --attempts times) when
    it fails or its server restarted meanwhile. Returns {"failed": why} when no attempt worked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    paths = [str(REPO), os.environ.get("PYTHONPATH")]
    if system.dockyard and options.dockyard_src:
        paths.insert(0, options.dockyard_src)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    discarded: list[dict[str, Any]] = []
    for attempt in range(1, options.attempts + 1):
        with _store(system, options, fresh=store) as (store_args, store_env):
            before = _marker(system, options)
            argv = [system.python, "-m", system.driver, *tail, *store_args]
            code, out, err = _run(argv, env | store_env, timeout)
            after = _marker(system, options)
        if code != 0:
            reason = _error_line(err)
            print(
                f"  {system.key} {' '.join(tail)}: attempt {attempt} failed: {reason}",
                file=sys.stderr,
            )
            discarded.append({"failed": err[-3000:]})
            continue
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        restarted = before != after or bool(result.get("postgres_restarted"))
        if restarted and attempt < options.attempts:
            print(
                f"  {system.key}: its server restarted during attempt {attempt}; again",
                file=sys.stderr,
            )
            discarded.append({"restarted": True})
            continue
        result["server_restarted"] = restarted
        result["attempt"] = attempt
        result["discarded"] = discarded
        return result
    return {"failed": _error_line(discarded[-1].get("failed", "?")), "discarded": discarded}


# -- the plan ------------------------------------------------------------------------------------


def _progress(text: str) -> None:
    load = os.getloadavg()[0]
    print(f"{text}  (load {load:.1f})", file=sys.stderr, flush=True)


def _shown(measure: str, result: dict[str, Any]) -> str:
    if "failed" in result:
        return f"FAILED: {result['failed']}"
    if measure == "process":
        mib = result["memory"]["peak_rss_mib"]
        return (
            f"{result['jobs_per_s']:,.0f} jobs/s spawn→done, {result['steady_jobs_per_s']:,.0f}"
            f" first→last, {mib:.0f} MiB; submit {result['submit']['jobs_per_s']:,.0f}/s"
        )
    if measure == "enqueue":
        return "n/a" if result.get("unsupported") else f"{result['jobs_per_s']:,.0f} jobs/s"
    if measure == "latency":
        lat = result["latency_ms"]
        return f"p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f}, p99 {lat['p99']:.1f}"
    return f"claim p50 {result['claim_ms']['p50']:.2f} ms ({result['jobs_per_claim']:g} jobs)"


Runs = dict[str, dict[str, list[dict[str, Any]]]]


def _record(runs: Runs, system: System, key: str, result: dict[str, Any]) -> None:
    runs.setdefault(system.key, {}).setdefault(key, []).append(result)


def _round(options: Options, round_: int, runs: Runs) -> None:
    tag = f"round {round_}/{options.runs}"
    measures = set(options.measures)
    n = str(options.jobs)
    processed: set[str] = set()
    if measures & {"b", "e"}:
        for system in options.systems:
            for variant in system.variants:
                tail = ["--measure", "process", "--n", n, "--variant", variant.key]
                result = run_driver(system, tail, options)
                _record(runs, system, f"process:{variant.key}", result)
                _progress(f"{tag}  (b) {system.key} {variant.key}: {_shown('process', result)}")
                if variant is system.variants[0] and "submit" in result:
                    mode = result["submit"]["mode"]
                    _record(runs, system, f"enqueue:{mode}", result["submit"])
                    processed.add(f"{system.key}:{mode}")
    if "a" in measures:
        for system in options.systems:
            for mode in ("single", "bulk"):
                if f"{system.key}:{mode}" in processed:
                    continue
                if mode == "bulk" and system.bulk is None:
                    _record(runs, system, "enqueue:bulk", {"mode": "bulk", "unsupported": True})
                    continue
                tail = ["--measure", "enqueue", "--mode", mode, "--n", n]
                result = run_driver(system, tail, options)
                _record(runs, system, f"enqueue:{mode}", result)
                _progress(f"{tag}  (a) {system.key} {mode}: {_shown('enqueue', result)}")
    if "c" in measures:
        for system in options.systems:
            tail = [
                "--measure",
                "latency",
                "--n",
                str(options.latency_jobs),
                "--interval-ms",
                str(options.interval_ms),
                "--variant",
                system.variants[0].key,
            ]
            result = run_driver(system, tail, options)
            _record(runs, system, "latency", result)
            _progress(f"{tag}  (c) {system.key}: {_shown('latency', result)}")


def _claims(options: Options, runs: Runs) -> None:
    for round_ in range(1, options.claim_runs + 1):
        for system in options.systems:
            if not system.claims:
                continue
            for history in (0, options.history):
                tail = [
                    "--measure",
                    "claim",
                    "--history",
                    str(history),
                    "--backlog",
                    str(options.backlog),
                    "--claims",
                    str(options.claims),
                    "--limit",
                    str(options.claim_limit),
                ]
                result = run_driver(system, tail, options)
                _record(runs, system, f"claim:{history}", result)
                _progress(
                    f"claims {round_}/{options.claim_runs}  (d) {system.key} {history:,} finished:"
                    f" {_shown('claim', result)}"
                )


# -- summaries -----------------------------------------------------------------------------------


def _ok(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs that worked; those whose server restarted count only when no other did."""
    worked = [r for r in results if "failed" not in r and not r.get("unsupported")]
    clean = [r for r in worked if not r.get("server_restarted")]
    return clean or worked


def _med(results: Sequence[dict[str, Any]], *path: str) -> float | None:
    values = []
    for result in results:
        value: Any = result
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return median(values)


def summarise(system: System, raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"label": label(system), "enqueue": {}, "process": {}}
    for mode in ("single", "bulk"):
        results = raw.get(f"enqueue:{mode}", [])
        ok = _ok(results)
        failures = [r["failed"] for r in results if "failed" in r]
        summary["enqueue"][mode] = {
            "jobs_per_s": _med(ok, "jobs_per_s"),
            "runs": len(ok),
            "unsupported": bool(results) and all(r.get("unsupported") for r in results),
            "failed": failures[-1] if failures and not ok else None,
        }
    for variant in system.variants:
        results = raw.get(f"process:{variant.key}", [])
        ok = _ok(results)
        summary["process"][variant.key] = {
            "label": variant.label,
            "runs": len(ok),
            "failed": None if ok or not results else results[-1].get("failed"),
            "jobs_per_s": _med(ok, "jobs_per_s"),
            "min_jobs_per_s": min((r["jobs_per_s"] for r in ok), default=None),
            "max_jobs_per_s": max((r["jobs_per_s"] for r in ok), default=None),
            "steady_jobs_per_s": _med(ok, "steady_jobs_per_s"),
            "spawn_to_first_seconds": _med(ok, "spawn_to_first_seconds"),
            "cpu_seconds": _med(ok, "memory", "cpu_seconds"),
            "peak_rss_mib": _med(ok, "memory", "peak_rss_mib"),
            "processes": _med(ok, "memory", "processes"),
            "store_jobs_per_s": _med(ok, "store_jobs_per_s"),
            "extra_runs": sum(r.get("extra_runs", 0) for r in ok),
        }
    latency = raw.get("latency", [])
    ok = _ok(latency)
    if latency:
        pooled = [v for r in ok for v in r.get("latencies_ms", [])]
        summary["latency"] = {
            "runs": len(ok),
            "failed": None if ok else latency[-1].get("failed"),
            **{s: _med(ok, "latency_ms", s) for s in ("p50", "p95", "p99", "max")},
            "submit_call_p50": _med(ok, "submit_call_ms", "p50"),
            "store_p50": _med(ok, "store_latency_ms", "p50"),
            "pooled": _pooled(pooled),
        }
    claims = {key: value for key, value in raw.items() if key.startswith("claim:")}
    if claims:
        summary["claim"] = {}
        for key, results in claims.items():
            ok = _ok(results)
            summary["claim"][key.split(":")[1]] = {
                "runs": len(ok),
                "failed": None if ok else results[-1].get("failed"),
                "p50_ms": _med(ok, "claim_ms", "p50"),
                "p95_ms": _med(ok, "claim_ms", "p95"),
                "jobs_per_claim": _med(ok, "jobs_per_claim"),
                "history_where": ok[0].get("history_where") if ok else None,
                "fill_seconds": _med(ok, "fill_seconds"),
            }
    return summary


def _pooled(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def rank(fraction: float) -> float:
        return ordered[max(1, min(len(ordered), round(fraction * len(ordered) + 0.5))) - 1]

    return {"p50": rank(0.5), "p95": rank(0.95), "p99": rank(0.99), "max": ordered[-1]}


# -- tables --------------------------------------------------------------------------------------


def _num(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def _ratio(value: float | None, best: float | None) -> str:
    if value is None or not best:
        return "—"
    return f"{value / best:.2f}×"


def _best(values: Sequence[float | None], higher: bool) -> float | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return max(present) if higher else min(present)


def _cell(entry: dict[str, Any], value: float | None, spec: str = ",.0f") -> str:
    if entry.get("unsupported"):
        return "n/a"
    if value is None and entry.get("failed"):
        return "failed"
    return _num(value, spec)


def table_a(systems: Sequence[System], summaries: dict[str, Any], n: int) -> str:
    peers = [s for s in systems if not s.dockyard]
    best = {
        mode: _best([summaries[s.key]["enqueue"][mode]["jobs_per_s"] for s in peers], True)
        for mode in ("single", "bulk")
    }
    lines = [
        f"| (a) submit {n:,} jobs | one at a time, jobs/s | ÷ best peer | bulk, jobs/s"
        " | ÷ best peer | bulk API | issue's reference, bulk |",
        "|---|--:|--:|--:|--:|---|--:|",
    ]
    for system in systems:
        single = summaries[system.key]["enqueue"]["single"]
        bulk = summaries[system.key]["enqueue"]["bulk"]
        ref = REFERENCE["a_bulk"].get(system.key)
        lines.append(
            f"| {label(system)} | {_cell(single, single['jobs_per_s'])}"
            f" | {_ratio(single['jobs_per_s'], best['single'])}"
            f" | {_cell(bulk, bulk['jobs_per_s'])} | {_ratio(bulk['jobs_per_s'], best['bulk'])}"
            f" | {system.bulk or 'none'} | {_num(ref)} |"
        )
    return "\n".join(lines)


def _process_rows(systems: Sequence[System], summaries: dict[str, Any]) -> list[Any]:
    return [
        (system, variant, summaries[system.key]["process"][variant.key])
        for system in systems
        for variant in system.variants
    ]


def table_b(systems: Sequence[System], summaries: dict[str, Any], n: int) -> str:
    rows = _process_rows(systems, summaries)
    best = _best([e["jobs_per_s"] for s, _, e in rows if not s.dockyard], True)
    best_steady = _best([e["steady_jobs_per_s"] for s, _, e in rows if not s.dockyard], True)
    lines = [
        f"| (b) run {n:,} queued no-op jobs | workers | jobs/s, spawn → last job | ÷ best peer"
        " | min–max | jobs/s, first → last job | ÷ best peer | start-up s"
        " | worker CPU ms / job | issue's reference |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for system, variant, e in rows:
        ref = REFERENCE["b"].get((system.key, variant.key))
        cpu = None if e["cpu_seconds"] is None else e["cpu_seconds"] * 1000 / n
        spread = (
            "—"
            if e["min_jobs_per_s"] is None
            else f"{e['min_jobs_per_s']:,.0f}–{e['max_jobs_per_s']:,.0f}"
        )
        lines.append(
            f"| {label(system)} | {variant.label} | {_cell(e, e['jobs_per_s'])}"
            f" | {_ratio(e['jobs_per_s'], best)} | {spread} | {_cell(e, e['steady_jobs_per_s'])}"
            f" | {_ratio(e['steady_jobs_per_s'], best_steady)}"
            f" | {_num(e['spawn_to_first_seconds'], '.2f')} | {_num(cpu, '.2f')} | {_num(ref)} |"
        )
    return "\n".join(lines)


def table_c(systems: Sequence[System], summaries: dict[str, Any], options: Options) -> str:
    present = [s for s in systems if "latency" in summaries[s.key]]
    best = _best([summaries[s.key]["latency"]["p50"] for s in present if not s.dockyard], False)
    lines = [
        f"| (c) submit → start, {options.latency_jobs} jobs {options.interval_ms:g} ms apart,"
        " idle worker | p50 ms | p95 ms | p99 ms | max ms | p50 ÷ best peer"
        " | submit call p50 ms | issue's reference p50 |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for system in present:
        e = summaries[system.key]["latency"]
        lines.append(
            f"| {label(system)} | {_cell(e, e['p50'], '.1f')} | {_num(e['p95'], '.1f')}"
            f" | {_num(e['p99'], '.1f')} | {_num(e['max'], '.1f')} | {_ratio(e['p50'], best)}"
            f" | {_num(e['submit_call_p50'], '.2f')}"
            f" | {_num(REFERENCE['c_p50'].get(system.key), '.1f')} |"
        )
    return "\n".join(lines)


def table_d(systems: Sequence[System], summaries: dict[str, Any], options: Options) -> str:
    present = [s for s in systems if "claim" in summaries[s.key]]
    h = str(options.history)
    lines = [
        "| (d) claim from a backlog of"
        f" {options.backlog:,} | finished rows (where) | jobs per claim | claim p50 ms, empty"
        f" | claim p50 ms, {options.history:,} finished | × empty | p95 ms, {options.history:,}"
        f" | ms per job, {options.history:,} |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for system in present:
        claims = summaries[system.key]["claim"]
        empty, full = claims.get("0", {}), claims.get(h, {})
        per_job = (
            None
            if full.get("p50_ms") is None or not full.get("jobs_per_claim")
            else full["p50_ms"] / full["jobs_per_claim"]
        )
        lines.append(
            f"| {label(system)} | {full.get('history_where') or '—'}"
            f" | {_num(full.get('jobs_per_claim'), 'g')} | {_cell(empty, empty.get('p50_ms'), '.2f')}"
            f" | {_cell(full, full.get('p50_ms'), '.2f')}"
            f" | {_ratio(full.get('p50_ms'), empty.get('p50_ms'))}"
            f" | {_num(full.get('p95_ms'), '.2f')} | {_num(per_job, '.3f')} |"
        )
    return "\n".join(lines)


def table_e(systems: Sequence[System], summaries: dict[str, Any]) -> str:
    rows = _process_rows(systems, summaries)
    best = _best([e["peak_rss_mib"] for s, _, e in rows if not s.dockyard], False)
    lines = [
        "| (e) peak RSS of the workers during (b) | workers | MiB (sum over processes)"
        " | processes | ÷ best peer |",
        "|---|---|--:|--:|--:|",
    ]
    for system, variant, e in rows:
        lines.append(
            f"| {label(system)} | {variant.label} | {_cell(e, e['peak_rss_mib'], '.1f')}"
            f" | {_num(e['processes'], 'g')} | {_ratio(e['peak_rss_mib'], best)} |"
        )
    return "\n".join(lines)


def _peer_value(summary: dict[str, Any], metric: str, system: System) -> float | None:
    """A peer's figure for the Dockyard ÷ peer table (its fastest (b) configuration)."""
    if metric == "single" or metric == "bulk":
        value: float | None = summary["enqueue"][metric]["jobs_per_s"]
        return value
    if metric == "b":
        return _best([v["jobs_per_s"] for v in summary["process"].values()], True)
    found: float | None
    if metric == "c":
        found = summary.get("latency", {}).get("p50")
    else:  # e: its default configuration
        found = summary["process"][system.variants[0].key]["peak_rss_mib"]
    return found


def table_vs(systems: Sequence[System], summaries: dict[str, Any], measures: set[str]) -> str:
    peers = [s for s in systems if not s.dockyard]
    ours = [s for s in systems if s.dockyard]
    if not peers or not ours:
        return ""
    metrics = []
    if "a" in measures:
        metrics += [("single", "(a) one at a time, jobs/s ↑"), ("bulk", "(a) bulk, jobs/s ↑")]
    if "b" in measures:
        metrics.append(("b", "(b) jobs/s ↑"))
    if "c" in measures:
        metrics.append(("c", "(c) p50 latency ↓"))
    if "e" in measures:
        metrics.append(("e", "(e) peak RSS ↓"))
    lines = [
        "| Dockyard ÷ peer | " + " | ".join(s.name for s in peers) + " |",
        "|---|" + "--:|" * len(peers),
    ]
    for metric, name in metrics:
        for system in ours:
            lines.extend(_vs_rows(system, metric, name, peers, summaries))
    if "d" in measures:
        pg = next((s for s in ours if s.claims and "claim" in summaries[s.key]), None)
        if pg is not None:
            lines.append(_claim_vs_row(pg, peers, summaries))
    return "\n".join(lines)


def _vs_rows(
    system: System, metric: str, name: str, peers: Sequence[System], summaries: dict[str, Any]
) -> list[str]:
    rows = []
    mine = summaries[system.key]
    variants = system.variants if metric in ("b", "e") else system.variants[:1]
    for variant in variants:
        if metric in ("single", "bulk"):
            value = mine["enqueue"][metric]["jobs_per_s"]
            row = f"{name}, {system.on}"
        elif metric == "c":
            value = mine.get("latency", {}).get("p50")
            row = f"{name}, {system.on}"
        else:
            entry = mine["process"][variant.key]
            value = entry["jobs_per_s" if metric == "b" else "peak_rss_mib"]
            row = f"{name}, {system.on}, {variant.label}"
        cells = [_ratio(value, _peer_value(summaries[p.key], metric, p)) for p in peers]
        rows.append(f"| {row} | " + " | ".join(cells) + " |")
    return rows


def _claim_vs_row(pg: System, peers: Sequence[System], summaries: dict[str, Any]) -> str:
    def per_job(key: str) -> float | None:
        claim = summaries[key].get("claim")
        if not claim:
            return None
        full = claim[max(claim, key=int)]
        if full.get("p50_ms") is None or not full.get("jobs_per_claim"):
            return None
        value: float = full["p50_ms"] / full["jobs_per_claim"]
        return value

    mine = per_job(pg.key)
    cells = [_ratio(mine, per_job(p.key)) if p.claims else "—" for p in peers]
    return "| (d) claim ms per job with the history ↓, PostgreSQL | " + " | ".join(cells) + " |"


def render(report: dict[str, Any], options: Options) -> str:
    systems = options.systems
    summaries = report["summaries"]
    measures = set(options.measures)
    n = options.jobs
    parts = []
    if "a" in measures:
        parts.append(table_a(systems, summaries, n))
    if "b" in measures:
        parts.append(table_b(systems, summaries, n))
    if "c" in measures:
        parts.append(table_c(systems, summaries, options))
    if "d" in measures and any(s.claims for s in systems):
        parts.append(table_d(systems, summaries, options))
    if "e" in measures:
        parts.append(table_e(systems, summaries))
    vs = table_vs(systems, summaries, measures)
    if vs:
        parts.append(vs)
    return "\n\n".join(parts)


def render_header(meta: dict[str, Any]) -> str:
    pg = meta.get("postgres", {})
    settings = pg.get("settings", {})
    knobs = ", ".join(f"{k}={settings[k]}" for k in sorted(settings))
    restarted = ""
    end = meta.get("postgres_at_end", {}).get("postmaster_start")
    if end and end != pg.get("postmaster_start"):
        seen = meta.get("restarted_runs", 0)
        restarted = " — PostgreSQL restarted during the run, " + (
            f"{seen} measurement(s) saw it and ran again" if seen else "between measurements"
        )
    tree = meta.get("dockyard_tree", {})
    dockyard = f"Dockyard {tree.get('commit', '?')}" + (
        "+dirty-src" if tree.get("dirty_src") else ""
    )
    if tree.get("snapshot"):
        dockyard += " (a copy of src/ taken at the start"
        end_src = meta.get("src_at_end", {})
        moved = any(end_src.get(k) != tree.get(k) for k in ("src_tree", "dirty_src"))
        if end_src and moved:
            dockyard += f"; src/ changed meanwhile (now {end_src.get('commit')}), not in this run"
        dockyard += ")"
    else:
        dockyard += f" (PYTHONPATH={tree.get('src')})"
    redis = meta.get("redis", {})
    config = redis.get("config", {})
    persistence = ", ".join(f"{k}={v!r}" for k, v in config.items())
    load = f"{meta['loadavg_at_start'][0]:.1f}→{meta['loadavg_at_end'][0]:.1f}"
    pins = "; ".join(
        f"{key}: " + ", ".join(f"{k} {v}" for k, v in info.get("benchmarked", {}).items() if v)
        for key, info in meta["versions"].items()
        if "benchmarked" in info
    )
    return (
        f"\n{meta['command']}  ({meta['git_commit']}; {meta['runs']} round(s), medians; (d)"
        f" {meta['claim_runs']} round(s); {meta['cpus']} CPUs, load {load}; Python"
        f" {meta['python']}; {meta['seconds']:.0f} s)\n"
        f"{pg.get('version', '?').split(' on ')[0]} ({knobs}){restarted}\n"
        f"Redis {redis.get('version', '?')} ({persistence})\n{dockyard}; {pins}\n"
    )


# -- command line --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Options]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small N, 1 round (a smoke run)")
    parser.add_argument("--runs", type=int, help="rounds of (a), (b), (c), (e) [3]")
    parser.add_argument("--claim-runs", type=int, help="rounds of (d) [1]")
    parser.add_argument("--jobs", type=int, help="N for (a) and (b) [20000]")
    parser.add_argument("--latency-jobs", type=int, help="(c) jobs [200]")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="(c) between submits [20]")
    parser.add_argument("--history", type=int, help="(d) finished jobs [1000000]")
    parser.add_argument("--backlog", type=int, help="(d) runnable jobs [5000]")
    parser.add_argument("--claims", type=int, help="(d) timed claims [200]")
    parser.add_argument("--claim-limit", type=int, default=16, help="(d) jobs per claim [16]")
    parser.add_argument(
        "--only",
        type=names,
        help="systems whose key starts with one of these, e.g. dockyard,pgqueuer [all: "
        + ", ".join(s.key for s in SYSTEMS)
        + "]",
    )
    parser.add_argument("--measure", type=names, default=list(MEASURES), help="a,b,c,d,e [all]")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("DOCKYARD_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help=f"a server; each run makes (and drops) a database or schema [{DEFAULT_POSTGRES_URL}]",
    )
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS_URL,
        help=f"a Redis database this benchmark may flush [{DEFAULT_REDIS_URL}]",
    )
    parser.add_argument("--attempts", type=int, default=3, help="runs of a failing measurement [3]")
    parser.add_argument("--reinstall", action="store_true", help="remake bench/.venvs/*")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)
    unknown = set(args.measure) - set(MEASURES)
    if unknown:
        parser.error(f"unknown measurement {', '.join(sorted(unknown))}")
    systems = tuple(s for s in SYSTEMS if not args.only or s.key.startswith(tuple(args.only)))
    if not systems:
        parser.error(f"no system matches {args.only}")
    quick = args.quick
    apply_defaults(
        args,
        {
            "runs": 1 if quick else 3,
            "claim_runs": 1,
            "jobs": 2000 if quick else 20_000,
            "latency_jobs": 50 if quick else 200,
            "history": 50_000 if quick else 1_000_000,
            "backlog": 2000 if quick else 5000,
            "claims": 50 if quick else 200,
        },
    )
    options = Options(
        runs=args.runs,
        claim_runs=args.claim_runs,
        jobs=args.jobs,
        latency_jobs=args.latency_jobs,
        interval_ms=args.interval_ms,
        history=args.history,
        backlog=args.backlog,
        claims=args.claims,
        claim_limit=args.claim_limit,
        attempts=args.attempts,
        postgres_url=args.postgres_url,
        redis_url=args.redis_url,
        measures=tuple(m for m in MEASURES if m in args.measure),
        systems=systems,
        argv=list(sys.argv[1:] if argv is None else argv),
    )
    return args, options


def _src_state() -> dict[str, Any]:
    from bench.common import git

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_tree": git("rev-parse", "HEAD:src"),
        "dirty_src": git("status", "--porcelain", "--", "src").splitlines(),
    }


@contextlib.contextmanager
def dockyard_tree() -> Iterator[dict[str, Any]]:
    """Dockyard's code for the whole run, so that commits made meanwhile (the tree is shared)
    do not change it halfway: a copy of ``src/`` as it is at the start, first on the Dockyard
    drivers' ``PYTHONPATH``. A ``PYTHONPATH`` given by the caller (another tree) is used as is."""
    state = _src_state()
    if os.environ.get("PYTHONPATH"):
        yield state | {"src": os.environ["PYTHONPATH"], "snapshot": False}
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="peers-dockyard-") as folder:
        src = Path(folder) / "src"
        shutil.copytree(
            REPO / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
        yield state | {"src": str(src), "snapshot": True}


def _postgres_meta(url: str) -> dict[str, Any]:
    from bench.postgres import _postgres_meta as meta

    return meta(url)


def main(argv: Sequence[str] | None = None) -> None:
    args, options = parse_args(argv)
    with dockyard_tree() as tree:
        if tree["snapshot"]:
            options.dockyard_src = tree["src"]
        report, tables = run(args, options, tree)
    print(render_header(report["meta"]))
    print(tables)
    failed = [
        f"{key} {what}"
        for key, raw in report["runs"].items()
        for what, results in raw.items()
        if results and all("failed" in r for r in results)
    ]
    if failed:
        print(f"\nFAILED (every attempt): {', '.join(failed)}")
    if not args.no_save:
        path = save("peers", {**report, "table": tables})
        print(f"\nsaved {path.relative_to(REPO)}")


def _setup(args: argparse.Namespace, options: Options) -> None:
    for system in options.systems:
        ensure_venv(system, args.reinstall)
    if any(s.store == "redis" for s in options.systems):
        ensure_redis(options.redis_url)
    if any(s.uses_postgres for s in options.systems):
        from bench.postgres import drop_stale_schemas

        dropped = drop_stale_databases(options.postgres_url) + drop_stale_schemas(
            options.postgres_url
        )
        if dropped:
            print(f"dropped stale databases and schemas: {', '.join(dropped)}", file=sys.stderr)


def _restarts(runs: Runs) -> int:
    """Runs repeated, or kept, because their server restarted while they ran."""
    count = 0
    for raw in runs.values():
        for results in raw.values():
            for result in results:
                count += sum(1 for d in result.get("discarded", []) if d.get("restarted"))
                count += bool(result.get("server_restarted"))
    return count


def run(
    args: argparse.Namespace, options: Options, tree: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    started = time.perf_counter()
    meta = run_meta("bench.peers", options.argv)
    _setup(args, options)
    meta["dockyard_tree"] = tree
    meta["versions"] = {}
    for system in options.systems:
        if system.venv is None and "dockyard" in meta["versions"]:
            continue
        info = run_driver(system, ["--measure", "info"], options, timeout=120, store=False)
        meta["versions"]["dockyard" if system.dockyard else system.key] = info | {
            "pinned": list(system.requirements)
        }
    meta.update(
        runs=options.runs,
        claim_runs=options.claim_runs,
        postgres=_postgres_meta(options.postgres_url),
        redis=redis_meta(options.redis_url),
        options={k: v for k, v in vars(args).items() if k not in ("only", "measure")}
        | {"systems": [s.key for s in options.systems], "measures": list(options.measures)},
    )
    runs: Runs = {}
    for round_ in range(1, options.runs + 1):
        if set(options.measures) & {"a", "b", "c", "e"}:
            _round(options, round_, runs)
    if "d" in options.measures:
        _claims(options, runs)
    meta["loadavg_at_end"] = os.getloadavg()
    meta["seconds"] = time.perf_counter() - started
    meta["postgres_at_end"] = _postgres_meta(options.postgres_url)
    meta["src_at_end"] = _src_state()
    meta["restarted_runs"] = _restarts(runs)
    summaries = {s.key: summarise(s, runs.get(s.key, {})) for s in options.systems}
    report: dict[str, Any] = {
        "meta": meta,
        "systems": {
            s.key: {
                "name": s.name,
                "on": s.on,
                "driver": s.driver,
                "requirements": list(s.requirements),
                "bulk_api": s.bulk,
                "variants": {v.key: v.label for v in s.variants},
            }
            for s in options.systems
        },
        "reference": {k: {str(kk): vv for kk, vv in v.items()} for k, v in REFERENCE.items()},
        "summaries": summaries,
        "runs": runs,
    }
    return report, render(report, options)
