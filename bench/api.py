"""Dockyard's HTTP API benchmark: submissions/s (single and batch) and GET latency under load.

Run from the repository root::

    python -m bench.api            # full run: 3 rounds, prints a table, saves bench/results/api-*.json
    python -m bench.api --quick    # smoke run: small N, 1 round

Every case of every round starts a real ``python -m dockyard server --port P`` (uvicorn, one
process) on a fresh Dockyard home (SQLite) in a temporary folder and a free port of 127.0.0.1,
waits for ``/healthz``, reads the admin token the first start wrote to ``<home>/token``, registers
a ``process`` definition running ``true``, drives the API from this process (a minimal raw
HTTP/1.1 client, which measures the server, and ``httpx.AsyncClient``, which measures what a
Python client gets), stops the server and checks the store. No worker runs: the jobs stay
RUNNABLE. See bench/API.md.

To see where the server spends its time, ``--profile-server DIR`` runs the same server under
cProfile (every thread, CPU clock) and writes one pstats file per case and round to DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    REPO,
    ThreadProfiler,
    apply_defaults,
    int_list,
    median,
    run_meta,
    save,
)

DEFINITION = {"name": "bench", "executor": "process", "command": ["true"]}
JOB_BODY = json.dumps({"definition": "bench"}).encode()
JSON = {"content-type": "application/json"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of a process (all its threads, dead ones too) or of one thread."""
    where = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    stat = Path(where).read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


class Server:
    """``python -m dockyard server`` on a fresh home and a free port; a context manager."""

    def __init__(self, home: Path, profile: Path | None = None) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.profile = profile
        self.log_path = home.parent / "server.log"

    def __enter__(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env["DOCKYARD_HOME"] = str(self.home)
        if self.profile is None:
            argv = [sys.executable, "-m", "dockyard", "server", "--port", str(self.port)]
        else:
            argv = [
                sys.executable,
                "-m",
                "bench.api",
                "--serve-profiled",
                str(self.profile),
                "--port",
                str(self.port),
            ]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"server did not answer /healthz: {self.output()}")
            time.sleep(0.05)
        self.token = (self.home / "token").read_text().strip()
        self.headers = {"authorization": f"Bearer {self.token}"}
        return self

    def cpu(self) -> tuple[float, float]:
        """CPU seconds of the whole server and of its main thread (the event loop)."""
        pid = self.proc.pid
        return cpu_seconds(pid), cpu_seconds(pid, pid)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


def store_states(home: Path) -> dict[str, int]:
    """Jobs per state, read straight from the SQLite file (after the server is gone)."""
    db = sqlite3.connect(home / "dockyard.db")
    try:
        rows = db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
    finally:
        db.close()
    return {state: count for state, count in rows}


# -- the load ------------------------------------------------------------------------------------


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client on one asyncio stream: the cheapest load generator.

    It writes a request and reads the status line, the headers and a ``content-length`` (or
    chunked) body; nothing else. With it the client process stays at a few % CPU, so the figures
    are the server's; httpx's ``AsyncClient`` costs more CPU per request than the server does.
    """

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self._head = f"host: 127.0.0.1:{port}\r\nauthorization: Bearer {token}\r\n"

    async def open(self) -> RawConnection:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\n{self._head}"
        if body is not None:
            head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        self._writer.write(head.encode() + b"\r\n" + (body or b""))
        reader = self._reader
        lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(b":") for line in lines[1:] if line)
        )
        if b"content-length" in headers:
            return status, await reader.readexactly(int(headers[b"content-length"]))
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readuntil(b"\r\n")
            return status, b"".join(chunks)
        raise RuntimeError(f"response without a length: {lines[:1]}")

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


class HttpxSession:
    """An ``httpx.AsyncClient`` behind the same ``request`` call as :class:`RawConnection`."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        response = await self.client.request(
            method, path, content=body, headers=None if body is None else JSON
        )
        return response.status_code, response.content

    async def close(self) -> None:
        await self.client.aclose()


Session = RawConnection | HttpxSession
#: The load generators: ``--clients raw,httpx,httpx-per-conn``.
CLIENTS = {
    "raw": "raw HTTP/1.1",
    "httpx": "httpx, 1 AsyncClient",
    "httpx-per-conn": "httpx, 1 AsyncClient/conn",
}


async def open_sessions(kind: str, server: Server, concurrency: int) -> list[Session]:
    """``concurrency`` sessions, one per task. ``httpx``: one shared client with a pool that size."""
    if kind == "raw":
        return [await RawConnection(server.port, server.token).open() for _ in range(concurrency)]

    def client(connections: int) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(
            base_url=server.url, headers=server.headers, limits=limits, timeout=120
        )

    if kind == "httpx":
        shared = HttpxSession(client(concurrency))
        return [shared] * concurrency
    if kind == "httpx-per-conn":
        return [HttpxSession(client(1)) for _ in range(concurrency)]
    raise ValueError(f"unknown client {kind}")


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: Callable[[int], str]
    body: Callable[[int], bytes | None]
    expect: int


@dataclass(frozen=True, slots=True)
class Load:
    """What one closed-loop drive measured: ``concurrency`` tasks, one request in flight each."""

    requests: int
    warmup_requests: int
    seconds: float
    latencies: list[float]
    server_cpu: float
    #: The server's main thread: the event loop (uvicorn, FastAPI, the routes, the facade).
    loop_cpu: float
    client_cpu: float


async def drive(
    server: Server,
    client: str,
    request: Request,
    total: int,
    concurrency: int,
    warmup: int,
) -> Load:
    """``total`` requests from ``concurrency`` tasks, each with one request in flight at a time.

    First every task sends ``ceil(warmup / concurrency)`` untimed requests (index < 0), which opens
    the connections and warms the server's lazy paths. A timed latency runs from the call until
    the whole response body is read.
    """
    sessions = await open_sessions(client, server, concurrency)
    try:

        async def send(session: Session, index: int) -> None:
            status, body = await session.request(
                request.method, request.path(index), request.body(index)
            )
            if status != request.expect:
                raise RuntimeError(
                    f"{request.method} {request.path(index)}: {status} {body[:500]!r}"
                )

        rounds = -(-warmup // concurrency)
        for round_ in range(rounds):
            await asyncio.gather(
                *(send(s, -1 - (round_ * concurrency + i)) for i, s in enumerate(sessions))
            )

        latencies: list[float] = []
        issued = 0

        async def task(session: Session) -> None:
            nonlocal issued
            while issued < total:
                index = issued
                issued += 1
                began = time.perf_counter()
                await send(session, index)
                latencies.append(time.perf_counter() - began)

        (server_cpu, loop_cpu), client_cpu = server.cpu(), time.process_time()
        began = time.perf_counter()
        await asyncio.gather(*(task(session) for session in sessions))
        seconds = time.perf_counter() - began
        server_end, loop_end = server.cpu()
        client_cpu = time.process_time() - client_cpu
    finally:
        for session in {id(s): s for s in sessions}.values():
            await session.close()
    return Load(
        requests=total,
        warmup_requests=rounds * concurrency,
        seconds=seconds,
        latencies=latencies,
        server_cpu=server_end - server_cpu,
        loop_cpu=loop_end - loop_cpu,
        client_cpu=client_cpu,
    )


def _percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


# -- cases -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    key: str
    label: str
    kind: str  # "single", "batch" or "get"
    client: str  # a key of CLIENTS
    jobs: int  # jobs submitted in the timed part (0 for get)
    requests: int
    concurrency: int
    batch_size: int = 1
    seed_jobs: int = 0  # get: jobs in the store before the timed part
    ids: int = 0  # get: how many distinct ids the requests cycle over


def build_cases(options: argparse.Namespace) -> list[Case]:
    cases = []
    for c in options.concurrency:
        for client in options.clients:
            cases.append(
                Case(
                    f"a_single_c{c}-{client}",
                    f"(a) POST /v1/jobs, 1 job/request, {c} conn",
                    "single",
                    client,
                    options.single_jobs,
                    options.single_jobs,
                    c,
                )
            )
    batches = -(-options.batch_jobs // options.batch_size)
    for client in options.clients:
        cases.append(
            Case(
                f"b_batch-{client}",
                f"(b) POST /v1/jobs/batch, {options.batch_size:,} jobs/request, 1 conn",
                "batch",
                client,
                options.batch_jobs,
                batches,
                1,
                batch_size=options.batch_size,
            )
        )
    for client in options.clients:
        cases.append(
            Case(
                f"c_get-{client}",
                f"(c) GET /v1/jobs/{{id}}, {options.get_clients} conn",
                "get",
                client,
                0,
                options.get_requests,
                options.get_clients,
                seed_jobs=options.get_seed_jobs,
                ids=min(options.get_ids, options.get_seed_jobs),
            )
        )
    if options.only:
        cases = [case for case in cases if case.key.startswith(tuple(options.only))]
    return cases


async def _register(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as client:
        response = await client.post("/v1/definitions", json=DEFINITION)
        if response.status_code != 201:
            raise RuntimeError(f"register: {response.status_code} {response.text}")


async def _seed(server: Server, jobs: int, batch_size: int) -> list[str]:
    """Submit ``jobs`` jobs in batches (untimed) and return their ids."""
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=120) as c:
        while len(ids) < jobs:
            count = min(batch_size, jobs - len(ids))
            body = {"jobs": [{"definition": "bench"}] * count}
            response = await c.post("/v1/jobs/batch", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"seed: {response.status_code} {response.text[:500]}")
            ids.extend(job["id"] for job in response.json()["jobs"])
    return ids


def _batch_body(size: int) -> bytes:
    return json.dumps({"jobs": [{"definition": "bench"}] * size}).encode()


async def run_case(case: Case, server: Server, warmup: int) -> dict[str, Any]:
    await _register(server)
    seeded = 0
    if case.kind == "single":
        request = Request("POST", lambda i: "/v1/jobs", lambda i: JOB_BODY, 201)
        warm = max(warmup, 2 * case.concurrency)
        warm_jobs = 1  # per warm-up request
    elif case.kind == "batch":
        sizes = [
            min(case.batch_size, case.jobs - start)
            for start in range(0, case.jobs, case.batch_size)
        ]
        bodies = {size: _batch_body(size) for size in {*sizes, 10}}
        # Warm-up: one batch of 10.
        request = Request(
            "POST", lambda i: "/v1/jobs/batch", lambda i: bodies[10 if i < 0 else sizes[i]], 201
        )
        warm, warm_jobs = 1, 10
    else:
        ids = await _seed(server, case.seed_jobs, 1000)
        seeded = case.seed_jobs
        paths = [f"/v1/jobs/{job_id}" for job_id in random.Random(42).sample(ids, case.ids)]
        request = Request("GET", lambda i: paths[i % len(paths)], lambda i: None, 200)
        warm, warm_jobs = max(warmup, 2 * case.concurrency), 0
    load = await drive(server, case.client, request, case.requests, case.concurrency, warm)
    return {
        "seconds": load.seconds,
        "requests": load.requests,
        "jobs": case.jobs,
        "jobs_per_s": case.jobs / load.seconds if case.jobs else None,
        "requests_per_s": load.requests / load.seconds,
        "p50_ms": _percentile(load.latencies, 0.50) * 1000,
        "p90_ms": _percentile(load.latencies, 0.90) * 1000,
        "p99_ms": _percentile(load.latencies, 0.99) * 1000,
        "max_ms": max(load.latencies) * 1000,
        "server_cpu_s": load.server_cpu,
        "client_cpu_s": load.client_cpu,
        "server_loop_cpu_s": load.loop_cpu,
        "server_cpu_pct": 100 * load.server_cpu / load.seconds,
        "server_loop_cpu_pct": 100 * load.loop_cpu / load.seconds,
        # Per request, whatever the wall clock did: steadier than rates on a busy machine.
        "server_cpu_ms_per_request": 1000 * load.server_cpu / load.requests,
        "server_loop_cpu_ms_per_request": 1000 * load.loop_cpu / load.requests,
        "client_cpu_pct": 100 * load.client_cpu / load.seconds,
        "warmup_requests": load.warmup_requests,
        "expected_jobs": seeded + case.jobs + load.warmup_requests * warm_jobs,
    }


def run_case_fresh(case: Case, warmup: int, profile: Path | None) -> dict[str, Any]:
    """One case on a fresh home and a fresh server; the store is checked once the server is gone."""
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-api-") as folder:
        home = Path(folder) / "home"
        home.mkdir()
        with Server(home, profile) as server:
            result = asyncio.run(run_case(case, server, warmup))
        states = store_states(home)
        if states != {"RUNNABLE": result["expected_jobs"]}:
            raise RuntimeError(f"{case.key}: expected {result['expected_jobs']} RUNNABLE, {states}")
        result["states"] = states
        if server.proc.returncode not in (0, -signal.SIGTERM):
            raise RuntimeError(f"server exited {server.proc.returncode}: {server.output()}")
    return result


# -- the report ------------------------------------------------------------------------------------


def summarise(case: Case, runs: list[dict[str, Any]]) -> dict[str, Any]:
    rate_key = "requests_per_s" if case.kind == "get" else "jobs_per_s"
    rates = [run[rate_key] for run in runs]
    summary: dict[str, Any] = {**asdict(case), "rate_unit": rate_key, "runs": runs}
    summary["median_rate"] = statistics.median(rates)
    summary["min_rate"], summary["max_rate"] = min(rates), max(rates)
    for key in (
        "seconds",
        "requests_per_s",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "server_cpu_pct",
        "server_loop_cpu_pct",
        "server_cpu_ms_per_request",
        "server_loop_cpu_ms_per_request",
        "client_cpu_pct",
    ):
        summary[f"median_{key}"] = median([run[key] for run in runs])
    summary["min_p99_ms"] = min(run["p99_ms"] for run in runs)
    summary["max_p99_ms"] = max(run["p99_ms"] for run in runs)
    return summary


def render_table(summaries: dict[str, dict[str, Any]]) -> str:
    """A Markdown table (it pastes into bench/API.md as it is)."""
    lines = [
        "| case | client | requests | rate (median) | min–max | p50 ms | p99 ms"
        " | server CPU (loop) | server CPU ms/req (loop) | client CPU |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in summaries.values():
        unit = "req/s" if s["kind"] == "get" else "jobs/s"
        lines.append(
            f"| {s['label']} | {CLIENTS[s['client']]} | {s['requests']:,}"
            f" | {s['median_rate']:,.0f} {unit} | {s['min_rate']:,.0f}–{s['max_rate']:,.0f}"
            f" | {s['median_p50_ms']:.1f} | {s['median_p99_ms']:.1f}"
            f" | {s['median_server_cpu_pct']:.0f} % ({s['median_server_loop_cpu_pct']:.0f} %)"
            f" | {_ms(s['median_server_cpu_ms_per_request'])}"
            f" ({_ms(s['median_server_loop_cpu_ms_per_request'])})"
            f" | {s['median_client_cpu_pct']:.0f} % |"
        )
    return "\n".join(lines)


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2f}"


def render_header(meta: dict[str, Any]) -> str:
    start, end = meta["loadavg_at_start"][0], meta["loadavg_at_end"][0]
    return (
        f"\n{meta['command']}  ({meta['git_commit']}; {meta['runs']} round(s), medians;"
        f" {meta['cpus']} CPUs, load {start:.1f}→{end:.1f}; Python {meta['python']};"
        f" {meta['server']})\n"
    )


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _meta(options: argparse.Namespace) -> dict[str, Any]:

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return {
        **run_meta("bench.api", sys.argv[1:]),
        "runs": options.runs,
        # What `dockyard server` runs: uvicorn.Config defaults (loop="auto", http="auto").
        "server": f"uvicorn {_version('uvicorn')}, 1 process, {loop} loop, {parser}",
        "versions": {
            name: _version(name)
            for name in ("fastapi", "starlette", "pydantic", "uvicorn", "h11", "httpx")
        },
        "options": {k: v for k, v in vars(options).items() if k != "serve_profiled"},
    }


def orchestrate(options: argparse.Namespace) -> dict[str, Any]:
    cases = build_cases(options)
    meta = _meta(options)
    profiles = Path(options.profile_server) if options.profile_server else None
    if profiles:
        profiles.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict[str, Any]]] = {case.key: [] for case in cases}
    for round_ in range(1, options.runs + 1):
        for case in cases:
            profile = None if profiles is None else profiles / f"{case.key}-r{round_}.prof"
            result = run_case_fresh(case, options.warmup, profile)
            runs[case.key].append(result)
            rate = result["requests_per_s"] if case.kind == "get" else result["jobs_per_s"]
            unit = "req/s" if case.kind == "get" else "jobs/s"
            print(
                f"round {round_}/{options.runs}  {case.key:<20} {rate:>9,.0f} {unit:<6}"
                f" p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms"
                f"  server CPU {result['server_cpu_pct']:3.0f} %"
                f" ({result['server_cpu_ms_per_request']:.2f} ms/req)"
                f"  client CPU {result['client_cpu_pct']:3.0f} %",
                file=sys.stderr,
            )
    meta["loadavg_at_end"] = os.getloadavg()
    summaries = {case.key: summarise(case, runs[case.key]) for case in cases}
    return {"meta": meta, "cases": summaries}


# -- profiling the server ------------------------------------------------------------------------


def serve_profiled(path: Path, port: int) -> None:
    """``dockyard server --port PORT`` in this process, under the profiler (``--profile-server``)."""
    from dockyard.cli import main as dockyard_main

    profiler = ThreadProfiler("cpu")
    sys.argv = ["dockyard", "server", "--port", str(port)]
    try:
        with profiler, contextlib.suppress(SystemExit):
            dockyard_main()
    finally:
        profiler.dump(path)


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N and 1 round (a smoke run)")
    parser.add_argument("--runs", type=int, help="rounds; the table shows medians [3]")
    parser.add_argument("--single-jobs", type=int, help="(a) jobs, one per request [2000]")
    parser.add_argument(
        "--concurrency", type=int_list, default=[1, 8], help="(a) connections, e.g. 1,8 [1,8]"
    )
    parser.add_argument("--batch-jobs", type=int, help="(b) jobs [20000]")
    parser.add_argument("--batch-size", type=int, default=1000, help="(b) jobs per request [1000]")
    parser.add_argument("--get-requests", type=int, help="(c) GET requests [10000]")
    parser.add_argument("--get-clients", type=int, default=50, help="(c) concurrent clients [50]")
    parser.add_argument("--get-seed-jobs", type=int, help="(c) jobs in the store [10000]")
    parser.add_argument("--get-ids", type=int, default=1000, help="(c) distinct ids read [1000]")
    parser.add_argument(
        "--clients",
        type=lambda text: [part for part in text.split(",") if part],
        default=["raw", "httpx"],
        help=f"load generators, of {', '.join(CLIENTS)} [raw,httpx]",
    )
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per case [20]")
    parser.add_argument(
        "--only",
        type=lambda text: [part for part in text.split(",") if part],
        help="cases whose key starts with one of these: a, a_single_c8, b, c_get-raw [all]",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    parser.add_argument(
        "--profile-server", metavar="DIR", help="profile the server; one pstats file per case"
    )
    parser.add_argument("--serve-profiled", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    unknown = set(options.clients) - CLIENTS.keys()
    if unknown:
        parser.error(f"unknown --clients {', '.join(sorted(unknown))}; use {', '.join(CLIENTS)}")
    quick = options.quick
    defaults = {
        "runs": 1 if quick else 3,
        "single_jobs": 200 if quick else 2000,
        "batch_jobs": 2000 if quick else 20_000,
        "get_requests": 1000 if quick else 10_000,
        "get_seed_jobs": 1000 if quick else 10_000,
    }
    apply_defaults(options, defaults)
    return options


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    if options.serve_profiled:
        serve_profiled(Path(options.serve_profiled), options.port)
        return
    report = orchestrate(options)
    table = render_table(report["cases"])
    print(render_header(report["meta"]))
    print(table)
    if not options.no_save:
        path = save("api", {**report, "table": table})
        print(f"\nsaved {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
