"""Dockyard's core benchmark: process jobs/s, Python no-op jobs/s, bulk submit, worker memory.

Run from the repository root::

    python -m bench.core            # full run: 3 rounds, prints a table, saves bench/results/*.json
    python -m bench.core --quick    # smoke run: small N, 1 round

Every measurement runs in a fresh Python process (``python -m bench.core --scenario X``) on a
fresh Dockyard home in a temporary folder, so peak memory is per scenario and no run warms the
next. Rounds run every case once, in order, so a dockyard run and its plain baseline are measured
back to back; ratios are the median of the per-round ratios. See bench/README.md.

One scenario can be run (and profiled) alone; it prints one JSON object::

    python -m bench.core --scenario process --worker inproc --n 2000 --profile /tmp/a.prof
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    ThreadProfiler,
    apply_defaults,
    int_list,
    median,
    run_meta,
    save,
)

TARGET_RATIO = 0.5

PROCESS_DEFINITION = {"executor": "process", "command": ["true"]}
PYTHON_DEFINITION = {"executor": "python", "function": "bench.functions:noop"}


# -- measuring helpers ---------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` figure in KiB (VmHWM: peak RSS), or None off Linux."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0), so setup does not count in the peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _clean_env(home: Path) -> dict[str, str]:
    """The environment for a worker process: this one without DOCKYARD_*, plus the home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env["DOCKYARD_HOME"] = str(home)
    return env


def _scrub_environment() -> None:
    """Drop DOCKYARD_* here, so that no setting of the caller's points a scenario elsewhere."""
    for name in [name for name in os.environ if name.startswith("DOCKYARD_")]:
        del os.environ[name]


def _settings(home: Path) -> Any:
    from dockyard.settings import Settings

    return Settings.resolve(home=home, environ={})


def _connect(home: Path) -> Any:
    """The SDK on the embedded store in ``home`` (the environment is scrubbed first)."""
    import dockyard

    return dockyard.connect(home=home)


def _prepare(home: Path, definition: dict[str, Any], n: int) -> None:
    """Register ``definition`` as ``bench`` and submit ``n`` jobs of it in one call (the SDK)."""
    from dockyard import SubmitRequest

    with _connect(home) as client:
        client.register(definition, name="bench")
        if n:
            client.submit_requests([SubmitRequest(definition="bench") for _ in range(n)])


def _states(home: Path) -> dict[str, int]:
    """Jobs per state, read straight from the SQLite file (after the worker is gone)."""
    db = sqlite3.connect(home / "dockyard.db")
    try:
        rows = db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
    finally:
        db.close()
    return {state: count for state, count in rows}


def _check_all_succeeded(home: Path, n: int) -> dict[str, int]:
    states = _states(home)
    if states.get("SUCCEEDED", 0) != n:
        raise RuntimeError(f"expected {n} SUCCEEDED jobs, found {states}")
    return states


@contextlib.contextmanager
def _home() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-") as folder:
        yield Path(folder) / "home"


@contextlib.contextmanager
def _maybe_profile(path: str | None, clock: str) -> Iterator[None]:
    if path is None:
        yield
        return
    profiler = ThreadProfiler(clock)
    with profiler:
        yield
    profiler.dump(Path(path))
    print(f"profile: {path} (+ .txt summary)", file=sys.stderr)


# -- scenarios (each runs in a fresh process) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScenarioArgs:
    n: int
    concurrency: int
    worker: str
    profile: str | None
    profile_clock: str


async def _run_worker_inproc(home: Path, concurrency: int) -> tuple[float, int]:
    """The facade, as the CLI wires it: open, worker(burst), run; return (seconds, jobs_done)."""
    from dockyard.app import Dockyard, WorkerConfig

    app = await Dockyard.open(_settings(home))
    try:
        worker = app.worker(WorkerConfig(concurrency=concurrency, burst=True))
        start = time.perf_counter()
        await worker.run()
        return time.perf_counter() - start, worker.jobs_done
    finally:
        await app.close()


def _run_worker_cli(home: Path, concurrency: int) -> dict[str, Any]:
    """``python -m dockyard worker --burst``, timed from spawn to exit; its rusage via wait4."""
    log = home / "worker.log"
    argv = [
        sys.executable,
        "-m",
        "dockyard",
        "worker",
        "--burst",
        "--concurrency",
        str(concurrency),
    ]
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=_clean_env(home), cwd=REPO, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"worker exited {proc.returncode}:\n{log.read_text()[-2000:]}")
    return {
        "seconds": seconds,
        # Linux: KiB, the max of the worker and the children it waited for (`true` is tiny).
        "peak_rss_kib": usage.ru_maxrss,
        # The worker's CPU plus its children's (the `true` processes).
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


def scenario_process(args: ScenarioArgs) -> dict[str, Any]:
    """(a) + (d): N pre-submitted ``true`` jobs, one burst worker, timed from start to exit."""
    with _home() as home:
        _prepare(home, PROCESS_DEFINITION, args.n)
        if args.worker == "cli":
            result = _run_worker_cli(home, args.concurrency)
        else:
            _reset_peak_rss()
            cpu = time.process_time()
            with _maybe_profile(args.profile, args.profile_clock):
                seconds, _ = asyncio.run(_run_worker_inproc(home, args.concurrency))
            result = {
                "seconds": seconds,
                "peak_rss_kib": _status_kib("VmHWM"),
                "cpu_seconds": time.process_time() - cpu,
            }
        result["states"] = _check_all_succeeded(home, args.n)
    return result


def scenario_startup(args: ScenarioArgs) -> dict[str, Any]:
    """The fixed cost inside (a): the CLI worker on an empty, migrated store, spawn to exit."""
    with _home() as home:
        _prepare(home, PROCESS_DEFINITION, 0)
        return _run_worker_cli(home, args.concurrency)


def scenario_plain(args: ScenarioArgs) -> dict[str, Any]:
    """The baseline of (a): ``subprocess.run(["true"])`` N times, in 1 or ``concurrency`` threads."""

    def run(count: int) -> None:
        for _ in range(count):
            subprocess.run(["true"], check=True)

    threads = args.concurrency
    shares = [args.n // threads + (1 if i < args.n % threads else 0) for i in range(threads)]
    start = time.perf_counter()
    if threads == 1:
        run(args.n)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, shares))
    return {"seconds": time.perf_counter() - start}


def scenario_python(args: ScenarioArgs) -> dict[str, Any]:
    """(b): N pre-submitted no-op Python jobs (inline), in-process burst worker via the facade."""
    with _home() as home:
        _prepare(home, PYTHON_DEFINITION, args.n)
        _reset_peak_rss()
        cpu = time.process_time()
        with _maybe_profile(args.profile, args.profile_clock):
            seconds, _ = asyncio.run(_run_worker_inproc(home, args.concurrency))
        result: dict[str, Any] = {
            "seconds": seconds,
            "peak_rss_kib": _status_kib("VmHWM"),
            "cpu_seconds": time.process_time() - cpu,
        }
        result["states"] = _check_all_succeeded(home, args.n)
    return result


def scenario_submit(args: ScenarioArgs) -> dict[str, Any]:
    """(c): ``Client.submit_requests`` of N jobs in one call (one transaction)."""
    from dockyard import SubmitRequest

    requests = [SubmitRequest(definition="bench") for _ in range(args.n)]
    # The profile starts before the client, so that its portal and storage threads are seen.
    with _home() as home, _maybe_profile(args.profile, args.profile_clock):
        with _connect(home) as client:
            client.register(PROCESS_DEFINITION, name="bench")
            _reset_peak_rss()
            cpu = time.process_time()
            start = time.perf_counter()
            submitted = client.submit_requests(requests)
            seconds = time.perf_counter() - start
            result: dict[str, Any] = {
                "seconds": seconds,
                "peak_rss_kib": _status_kib("VmHWM"),
                "cpu_seconds": time.process_time() - cpu,
            }
        if len(submitted) != args.n or not all(item.created for item in submitted):
            raise RuntimeError("not every job was created")
        result["states"] = _states(home)
    return result


SCENARIOS: dict[str, Callable[[ScenarioArgs], dict[str, Any]]] = {
    "process": scenario_process,
    "startup": scenario_startup,
    "plain": scenario_plain,
    "python": scenario_python,
    "submit": scenario_submit,
}


def run_scenario(name: str, args: ScenarioArgs) -> dict[str, Any]:
    _scrub_environment()
    result = SCENARIOS[name](args)
    result["jobs"] = args.n
    result["jobs_per_s"] = args.n / result["seconds"] if args.n else None
    return result


# -- the orchestrator ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    key: str
    label: str
    scenario: str
    n: int
    concurrency: int = 1
    worker: str = "cli"


def build_cases(options: argparse.Namespace) -> list[Case]:
    n_proc, n_py = options.process_jobs, options.python_jobs
    cases = [
        Case("a_dockyard", "(a) `true` jobs, CLI worker --burst, c=4", "process", n_proc, 4),
        Case("a_plain", "(a) plain subprocess.run loop", "plain", n_proc, 1),
        Case("a_plain_x4", "(a) plain subprocess.run, 4 threads", "plain", n_proc, 4),
        Case("a_startup", "(a) CLI worker spawn→exit, empty store", "startup", 0, 4),
    ]
    if options.inproc:
        cases.insert(
            1,
            Case(
                "a_dockyard_inproc",
                "(a) `true` jobs, in-process worker, c=4",
                "process",
                n_proc,
                4,
                "inproc",
            ),
        )
    for concurrency in options.python_concurrency:
        cases.append(
            Case(
                f"b_python_c{concurrency}",
                f"(b) Python no-op inline, c={concurrency}",
                "python",
                n_py,
                concurrency,
                "inproc",
            )
        )
    cases.append(Case("c_submit", "(c) submit_requests, one call", "submit", options.submit_jobs))
    if options.only:
        cases = [case for case in cases if case.key.startswith(tuple(options.only))]
    return cases


def _spawn(case: Case) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "bench.core",
        "--scenario",
        case.scenario,
        "--n",
        str(case.n),
        "--concurrency",
        str(case.concurrency),
        "--worker",
        case.worker,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{case.key} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _summarise(case: Case, runs: list[dict[str, Any]]) -> dict[str, Any]:
    rss = median([run.get("peak_rss_kib") for run in runs])
    rates = [run["jobs_per_s"] for run in runs if run["jobs_per_s"] is not None]
    return {
        **asdict(case),
        "runs": runs,
        "median_seconds": median([run["seconds"] for run in runs]),
        "median_jobs_per_s": median(rates),
        "min_jobs_per_s": min(rates) if rates else None,
        "max_jobs_per_s": max(rates) if rates else None,
        "median_peak_rss_mib": None if rss is None else rss / 1024,
        "median_cpu_seconds": median([run.get("cpu_seconds") for run in runs]),
    }


def _paired_ratio(
    summaries: dict[str, dict[str, Any]], top: str, bottom: str
) -> dict[str, Any] | None:
    if top not in summaries or bottom not in summaries:
        return None
    per_round = [
        a["jobs_per_s"] / b["jobs_per_s"]
        for a, b in zip(summaries[top]["runs"], summaries[bottom]["runs"], strict=True)
    ]
    return {"of": top, "to": bottom, "median": statistics.median(per_round), "per_round": per_round}


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def render_table(summaries: dict[str, dict[str, Any]], ratios: dict[str, Any]) -> str:
    """A Markdown table (it pastes into the README as it is)."""
    vs_plain = {r["of"]: r["median"] for r in ratios.values() if r and r["to"] == "a_plain"}
    lines = [
        "| case | N | jobs/s (median) | min–max jobs/s | median s | × plain loop | peak RSS MiB |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for key, s in summaries.items():
        low, high = s["min_jobs_per_s"], s["max_jobs_per_s"]
        lines.append(
            f"| {s['label']} | {s['n'] or '—'} | {_fmt(s['median_jobs_per_s'], ',.0f')}"
            f" | {'—' if low is None else f'{low:,.0f}–{high:,.0f}'}"
            f" | {_fmt(s['median_seconds'], '.2f')}"
            f" | {'—' if key not in vs_plain else f'{vs_plain[key]:.2f}×'}"
            f" | {_fmt(s['median_peak_rss_mib'], '.1f')} |"
        )
    return "\n".join(lines)


def render_header(meta: dict[str, Any]) -> str:
    start, end = meta["loadavg_at_start"][0], meta["loadavg_at_end"][0]
    where = "" if meta["dockyard"] == str(REPO / "src" / "dockyard") else f", {meta['dockyard']}"
    return (
        f"\n{meta['command']}  ({meta['git_commit']}{where}; {meta['runs']} round(s), medians;"
        f" {meta['cpus']} CPUs, load {start:.1f}→{end:.1f}; Python {meta['python']})\n"
    )


def render_verdict(ratios: dict[str, Any]) -> str:
    lines = []
    main = ratios.get("dockyard_vs_plain")
    if main:
        verdict = "meets" if main["median"] >= TARGET_RATIO else "MISSES"
        lines.append(
            f"dockyard / plain loop = {main['median']:.2f}× (median of per-round ratios"
            f" {', '.join(f'{r:.2f}' for r in main['per_round'])}); {verdict} the"
            f" ≥ {TARGET_RATIO}× target"
        )
    fair = ratios.get("dockyard_vs_plain_x4")
    if fair:
        lines.append(f"dockyard / plain with 4 threads = {fair['median']:.2f}×")
    return "\n".join(lines)


def _meta(options: argparse.Namespace) -> dict[str, Any]:

    return {
        **run_meta("bench.core", sys.argv[1:]),
        "tmp": tempfile.gettempdir(),
        "runs": options.runs,
    }


def orchestrate(options: argparse.Namespace) -> dict[str, Any]:
    cases = build_cases(options)
    meta = _meta(options)
    runs: dict[str, list[dict[str, Any]]] = {case.key: [] for case in cases}
    for round_ in range(1, options.runs + 1):
        for case in cases:
            result = _spawn(case)
            runs[case.key].append(result)
            rate = result["jobs_per_s"]
            shown = f"{rate:,.0f} jobs/s" if rate is not None else f"{result['seconds']:.3f} s"
            print(f"round {round_}/{options.runs}  {case.key:<18} {shown}", file=sys.stderr)
    summaries = {case.key: _summarise(case, runs[case.key]) for case in cases}
    ratios = {
        "dockyard_vs_plain": _paired_ratio(summaries, "a_dockyard", "a_plain"),
        "dockyard_vs_plain_x4": _paired_ratio(summaries, "a_dockyard", "a_plain_x4"),
        "plain_x4_vs_plain": _paired_ratio(summaries, "a_plain_x4", "a_plain"),
        "dockyard_inproc_vs_plain": _paired_ratio(summaries, "a_dockyard_inproc", "a_plain"),
    }
    ratios = {k: v for k, v in ratios.items() if v is not None}
    meta["loadavg_at_end"] = os.getloadavg()
    return {"meta": meta, "target_ratio": TARGET_RATIO, "cases": summaries, "ratios": ratios}


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.core", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small N and 1 round (a smoke run)")
    parser.add_argument("--runs", type=int, help="rounds; the table shows medians [3]")
    parser.add_argument("--process-jobs", type=int, help="N for (a) [2000]")
    parser.add_argument("--python-jobs", type=int, help="N for (b) [5000]")
    parser.add_argument("--submit-jobs", type=int, help="N for (c) [10000, the most per call]")
    parser.add_argument(
        "--python-concurrency", type=int_list, default=[4, 16], help="for (b) [4,16]"
    )
    parser.add_argument(
        "--inproc", action="store_true", help="add (a) with an in-process worker (no CLI startup)"
    )
    parser.add_argument(
        "--only",
        type=lambda text: [part for part in text.split(",") if part],
        help="cases whose key starts with one of these, e.g. a or a_dockyard,b [all]",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    one = parser.add_argument_group("one scenario (what the orchestrator spawns)")
    one.add_argument("--scenario", choices=sorted(SCENARIOS))
    one.add_argument("--n", type=int, default=100)
    one.add_argument("--concurrency", type=int, default=4)
    one.add_argument("--worker", choices=["cli", "inproc"], default="cli", help="for process")
    one.add_argument("--profile", help="write a pstats file (all threads; in-process runs only)")
    one.add_argument("--profile-clock", choices=["wall", "cpu"], default="wall")
    options = parser.parse_args(argv)
    quick = options.quick
    defaults = {
        "runs": 1 if quick else 3,
        "process_jobs": 200 if quick else 2000,
        "python_jobs": 500 if quick else 5000,
        "submit_jobs": 1000 if quick else 10_000,
    }
    apply_defaults(options, defaults)
    return options


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    if options.scenario:
        args = ScenarioArgs(
            n=options.n,
            concurrency=options.concurrency,
            worker=options.worker,
            profile=options.profile,
            profile_clock=options.profile_clock,
        )
        print(json.dumps(run_scenario(options.scenario, args)))
        return
    report = orchestrate(options)
    table = render_table(report["cases"], report["ratios"])
    verdict = render_verdict(report["ratios"])
    print(render_header(report["meta"]))
    print(table)
    print()
    print(verdict)
    if not options.no_save:
        path = save("core", {**report, "table": table, "verdict": verdict})
        print(f"\nsaved {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
