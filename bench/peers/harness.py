"""What every peer driver shares: the job body, its records, worker processes and their memory.

Standard library only: the drivers import this module from each peer's own virtual environment.

The job body of every system is :func:`record`: it appends 16 bytes (the job's index and
``time.time()`` when the body started) to a file of the process that runs it, in the folder named
by ``PEERS_RECORD_DIR``. That is the only thing a job does, and it costs every system the same
(one ``os.write`` of 16 bytes, about 2 µs); the harness reads the files to learn when each job
ran, which works the same whether a system keeps results or not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.common import spread

REPO = Path(__file__).resolve().parent.parent.parent
RECORDS_ENV = "PEERS_RECORD_DIR"
RECORD = struct.Struct("<qd")  # job index, time.time() when the job body started

# -- the job body --------------------------------------------------------------------------------

_fd: int | None = None
_fd_pid = -1
_fd_lock = threading.Lock()


def record(index: int) -> None:
    """The no-op job: note that job ``index`` ran, and when (one 16-byte append)."""
    global _fd, _fd_pid
    now = time.time()
    pid = os.getpid()
    if _fd is None or _fd_pid != pid:  # first job of this process (or of a forked child)
        with _fd_lock:
            if _fd is None or _fd_pid != pid:
                path = os.path.join(os.environ[RECORDS_ENV], f"{pid}.rec")
                _fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                _fd_pid = pid
    os.write(_fd, RECORD.pack(index, now))


def dockyard_job(payload: Any) -> None:
    """The same body as a Dockyard ``python`` definition (``bench.peers.harness:dockyard_job``)."""
    record(int(payload))


class Records:
    """The records that jobs left in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def count(self) -> int:
        total = 0
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.name.endswith(".rec"):
                    total += entry.stat().st_size
        return total // RECORD.size

    def read(self) -> list[tuple[int, float]]:
        rows: list[tuple[int, float]] = []
        for path in sorted(self.folder.glob("*.rec")):
            data = path.read_bytes()
            usable = len(data) - len(data) % RECORD.size
            rows.extend(RECORD.iter_unpack(data[:usable]))
        return rows

    def _check(self, n: int, deadline: float, alive: Callable[[], str | None]) -> bool:
        if self.count() >= n:
            return True
        dead = alive()
        if dead is not None:
            raise RuntimeError(f"a worker exited before {n} jobs ran: {dead}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{self.count()} of {n} jobs ran within the time limit")
        return False

    def wait(self, n: int, timeout: float, alive: Callable[[], str | None]) -> None:
        """Poll until ``n`` records exist; ``alive`` returns why a worker died, or None."""
        deadline = time.monotonic() + timeout
        while not self._check(n, deadline, alive):
            time.sleep(0.01)

    async def wait_async(self, n: int, timeout: float, alive: Callable[[], str | None]) -> None:
        deadline = time.monotonic() + timeout
        while not self._check(n, deadline, alive):
            await asyncio.sleep(0.005)


@contextlib.contextmanager
def records_folder() -> Iterator[Records]:
    """A fresh folder for job records, exported as ``PEERS_RECORD_DIR`` to the workers."""
    with tempfile.TemporaryDirectory(prefix="peers-records-") as folder:
        os.environ[RECORDS_ENV] = folder
        yield Records(Path(folder))


# -- worker processes and their memory -----------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                found.extend(int(part) for part in text.split())
    except OSError:
        pass
    return found


def process_tree(roots: Sequence[int]) -> list[int]:
    """``roots`` and all their descendants that are alive."""
    seen: list[int] = []
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen or not os.path.exists(f"/proc/{pid}"):
            continue
        seen.append(pid)
        stack.extend(_children(pid))
    return seen


def _status_kib(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                values[name] = int(rest.split()[0])
    return values


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after ``(comm)``: index 0 is field 3 (state)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])  # field 22, starttime


def _cpu_seconds(pid: int) -> float | None:
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # utime and stime: fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TreeSampler:
    """Samples the worker processes (``roots`` and descendants) every ``period`` seconds.

    Peak RSS is the sum over processes of each one's ``VmHWM`` (its own peak, kept by the
    kernel, so no sample misses it), read last just before the workers are stopped. The peak of
    the summed ``VmRSS`` samples is kept as well (at most the first figure).
    """

    def __init__(self, roots: Sequence[int], period: float = 0.1) -> None:
        self.roots = list(roots)
        self.period = period
        self.hwm_kib: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        self.peak_sum_rss_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        total = 0
        for pid in process_tree(self.roots):
            status = _status_kib(pid)
            if "VmHWM" in status:
                self.hwm_kib[pid] = max(self.hwm_kib.get(pid, 0), status["VmHWM"])
            total += status.get("VmRSS", 0)
            cpu = _cpu_seconds(pid)
            if cpu is not None:
                self.cpu[pid] = cpu
        self.peak_sum_rss_kib = max(self.peak_sum_rss_kib, total)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def __enter__(self) -> TreeSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def result(self) -> dict[str, Any]:
        self.sample()
        return {
            "peak_rss_mib": sum(self.hwm_kib.values()) / 1024,
            "peak_sampled_rss_mib": self.peak_sum_rss_kib / 1024,
            "processes": len(self.hwm_kib),
            "per_process_peak_mib": sorted(
                (kib / 1024 for kib in self.hwm_kib.values()), reverse=True
            ),
            "cpu_seconds": sum(self.cpu.values()),
        }


class Workers:
    """Worker processes started as their users start them (a CLI).

    They stay in the driver's process group, so the orchestrator can end a driver it gave up on
    together with its workers; :meth:`stop` ends them (and their children) by pid.
    """

    def __init__(self, argvs: Sequence[Sequence[str]], env: dict[str, str], logs: Path) -> None:
        self.logs = [logs / f"worker-{i}.log" for i in range(len(argvs))]
        self.procs: list[subprocess.Popen[bytes]] = []
        full = {**os.environ, **env, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.started = time.time()
        for argv, log in zip(argvs, self.logs, strict=True):
            with log.open("wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        list(argv), cwd=REPO, env=full, stdout=out, stderr=subprocess.STDOUT
                    )
                )

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-3000:] for log in self.logs)

    def dead(self) -> str | None:
        for proc in self.procs:
            if proc.poll() is not None:
                return f"exit {proc.returncode}:\n{self.output()}"
        return None

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM (a graceful stop); SIGKILL to whatever of the tree is left after ``grace``."""
        tree = {pid: _start_ticks(pid) for pid in process_tree(self.pids)}
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
        # Children of a worker that exited, or of one that did not stop in time.
        # (pid and start time: the same process, not a later one that reused the pid)
        for pid in process_tree(self.pids):
            tree.setdefault(pid, _start_ticks(pid))
        for pid, ticks in tree.items():
            if ticks is not None and _start_ticks(pid) == ticks:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- measuring -----------------------------------------------------------------------------------


def timed_single(submit: Callable[[int], object], n: int) -> dict[str, Any]:
    """(a) ``n`` jobs submitted one call each."""
    start = time.perf_counter()
    for i in range(n):
        submit(i)
    seconds = time.perf_counter() - start
    return {"mode": "single", "n": n, "seconds": seconds, "jobs_per_s": n / seconds}


async def timed_single_async(submit: Callable[[int], Awaitable[object]], n: int) -> dict[str, Any]:
    start = time.perf_counter()
    for i in range(n):
        await submit(i)
    seconds = time.perf_counter() - start
    return {"mode": "single", "n": n, "seconds": seconds, "jobs_per_s": n / seconds}


def timed_bulk(submit_all: Callable[[int], object], n: int) -> dict[str, Any]:
    """(a) ``n`` jobs submitted through the system's bulk API (``submit_all(n)``)."""
    start = time.perf_counter()
    submit_all(n)
    seconds = time.perf_counter() - start
    return {"mode": "bulk", "n": n, "seconds": seconds, "jobs_per_s": n / seconds}


async def timed_bulk_async(
    submit_all: Callable[[int], Awaitable[object]], n: int
) -> dict[str, Any]:
    start = time.perf_counter()
    await submit_all(n)
    seconds = time.perf_counter() - start
    return {"mode": "bulk", "n": n, "seconds": seconds, "jobs_per_s": n / seconds}


def process_result(
    records: Records, workers_started: float, n: int, memory: dict[str, Any]
) -> dict[str, Any]:
    """(b) and (e) from the records of ``n`` jobs run by workers spawned at ``workers_started``."""
    rows = records.read()
    indexes = {index for index, _ in rows}
    if len(indexes & set(range(n))) != n:
        raise RuntimeError(f"{len(indexes)} distinct jobs of {n} ran")
    times = [at for _, at in rows]
    first, last = min(times), max(times)
    return {
        "n": n,
        "jobs_per_s": n / (last - workers_started),
        "seconds": last - workers_started,
        "steady_jobs_per_s": n / (last - first) if last > first else None,
        "first_to_last_seconds": last - first,
        "spawn_to_first_seconds": first - workers_started,
        "extra_runs": len(rows) - n,  # jobs that ran twice (at-least-once redelivery)
        "memory": memory,
    }


@contextlib.contextmanager
def started(argvs: Sequence[Sequence[str]], env: dict[str, str]) -> Iterator[Workers]:
    """Worker processes running for the ``with`` block (their logs in a temporary folder)."""
    with (
        tempfile.TemporaryDirectory(prefix="peers-logs-") as logs,
        Workers(argvs, env, Path(logs)) as workers,
    ):
        yield workers


def run_process(
    records: Records,
    argvs: Sequence[Sequence[str]],
    env: dict[str, str],
    n: int,
    timeout: float = 900.0,
) -> dict[str, Any]:
    """(b)/(e): start the workers with ``n`` jobs queued, wait until all ran, stop them."""
    with started(argvs, env) as workers, TreeSampler(workers.pids) as sampler:
        records.wait(n, timeout, workers.dead)
        time.sleep(0.2)  # a job that ran twice would show now
        memory = sampler.result()
    return process_result(records, workers.started, n, memory) | {"argv": [list(a) for a in argvs]}


def run_latency(
    records: Records,
    argvs: Sequence[Sequence[str]],
    env: dict[str, str],
    submit: Callable[[int], object],
    n: int,
    interval: float,
) -> dict[str, Any]:
    """(c) with a synchronous client."""
    with started(argvs, env) as workers:
        return paced_single(submit, records, n, interval, workers.dead)


def latency_result(
    records: Records, submitted: dict[int, float], calls: list[float]
) -> dict[str, Any]:
    """(c): start (the job body's time.time()) minus the time.time() taken before the submit."""
    started: dict[int, float] = {}
    for index, at in records.read():
        if index in submitted and index not in started:
            started[index] = at
    latencies = [(started[i] - submitted[i]) * 1000 for i in sorted(submitted)]
    return {
        "n": len(submitted),
        "latency_ms": spread(latencies),
        "submit_call_ms": spread([c * 1000 for c in calls]),
        "latencies_ms": latencies,
    }


WARMUP = 5
WARMUP_BASE = 1_000_000_000  # indexes of warm-up jobs, apart from the measured ones


def paced_single(
    submit: Callable[[int], object], records: Records, n: int, interval: float, alive: Any
) -> dict[str, Any]:
    """(c) with a synchronous client: warm up, let the worker go idle, then ``n`` jobs paced."""
    for k in range(WARMUP):
        submit(WARMUP_BASE + k)
        records.wait(k + 1, 120, alive)
    time.sleep(1.0)  # idle: past any poll or prefetch of the warm-up
    submitted: dict[int, float] = {}
    calls: list[float] = []
    start = time.perf_counter()
    for i in range(n):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        submitted[i] = time.time()
        before = time.perf_counter()
        submit(i)
        calls.append(time.perf_counter() - before)
    records.wait(WARMUP + n, 120, alive)
    return latency_result(records, submitted, calls)


async def paced_single_async(
    submit: Callable[[int], Awaitable[object]],
    records: Records,
    n: int,
    interval: float,
    alive: Any,
) -> dict[str, Any]:
    for k in range(WARMUP):
        await submit(WARMUP_BASE + k)
        await records.wait_async(k + 1, 120, alive)
    await asyncio.sleep(1.0)
    submitted: dict[int, float] = {}
    calls: list[float] = []
    start = time.perf_counter()
    for i in range(n):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        submitted[i] = time.time()
        before = time.perf_counter()
        await submit(i)
        calls.append(time.perf_counter() - before)
    await records.wait_async(WARMUP + n, 120, alive)
    return latency_result(records, submitted, calls)


def timed_claims(claim: Callable[[], int], count: int, warmup: int = 10) -> dict[str, Any]:
    """(d): ``warmup`` + ``count`` calls of ``claim`` (which returns how many jobs it took)."""
    timings: list[float] = []
    taken: list[int] = []
    for i in range(warmup + count):
        start = time.perf_counter()
        got = claim()
        if i >= warmup:
            timings.append((time.perf_counter() - start) * 1000)
            taken.append(got)
    return {"claim_ms": spread(timings), "jobs_per_claim": statistics.fmean(taken)}


async def timed_claims_async(
    claim: Callable[[], Awaitable[int]], count: int, warmup: int = 10
) -> dict[str, Any]:
    timings: list[float] = []
    taken: list[int] = []
    for i in range(warmup + count):
        start = time.perf_counter()
        got = await claim()
        if i >= warmup:
            timings.append((time.perf_counter() - start) * 1000)
            taken.append(got)
    return {"claim_ms": spread(timings), "jobs_per_claim": statistics.fmean(taken)}


# -- the driver command line ---------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="one measurement of one system (bench.peers)")
    parser.add_argument(
        "--measure", required=True, choices=["info", "enqueue", "process", "latency", "claim"]
    )
    parser.add_argument("--mode", choices=["single", "bulk"], default="single")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--variant", default="default")
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--history", type=int, default=0)
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--dsn", help="a PostgreSQL database of this run's own")
    parser.add_argument("--redis-url", help="a Redis database, flushed before and after")
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    return parser.parse_args(argv)


def versions(names: Sequence[str]) -> dict[str, Any]:
    """The interpreter and every installed distribution (names first: what is benchmarked)."""
    import importlib.metadata
    import platform

    installed = {
        dist.metadata["Name"].lower(): dist.version for dist in importlib.metadata.distributions()
    }
    return {
        "python": platform.python_version(),
        "executable": sys.executable,
        "benchmarked": {name: installed.get(name.lower()) for name in names},
        "installed": dict(sorted(installed.items())),
    }


def emit(result: dict[str, Any]) -> None:
    """The driver's answer: one JSON line, last on stdout."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def run_measure(
    args: argparse.Namespace,
    *,
    system: str,
    submit: Callable[[int], object],
    submit_all: Callable[[int], object] | None,
    worker_argv: Sequence[Sequence[str]],
    env: dict[str, str],
) -> None:
    """The measurements every broker driver runs the same way: enqueue (one at a time, and in
    bulk where ``submit_all`` exists), process N queued jobs, latency; emits the result."""
    if args.measure == "enqueue":
        if args.mode != "bulk":
            emit(timed_single(submit, args.n))
        elif submit_all is None:
            emit({"mode": "bulk", "unsupported": True})
        else:
            emit(timed_bulk(submit_all, args.n))
    elif args.measure == "process":
        with records_folder() as records:
            if submit_all is None:
                submitted = timed_single(submit, args.n)
            else:
                submitted = timed_bulk(submit_all, args.n)
            result = run_process(records, worker_argv, env, args.n)
        emit(result | {"submit": submitted})
    elif args.measure == "latency":
        with records_folder() as records:
            emit(run_latency(records, worker_argv, env, submit, args.n, args.interval_ms / 1000))
    else:
        raise SystemExit(f"{system}: no {args.measure} measurement")
