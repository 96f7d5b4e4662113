"""What the benchmarks share: results folder, medians, git metadata, a profiler of every thread."""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import pstats
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def run_meta(module: str, argv: Sequence[str]) -> dict[str, Any]:
    """What every result records about its run: when, which command, which code, which machine."""
    import os
    import platform

    import dockyard

    dirty = git("status", "--porcelain", "--", "src")
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([f"python -m {module}", *argv]),
        "git_commit": git("rev-parse", "--short", "HEAD") + ("+dirty-src" if dirty else ""),
        # Which Dockyard ran (PYTHONPATH can point the benchmark at another tree).
        "dockyard": str(Path(dockyard.__file__).parent),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
    }


def names(text: str) -> list[str]:
    """``a, b,c`` → ``["a", "b", "c"]`` (for options that take lists)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def int_list(text: str) -> list[int]:
    return [int(part) for part in names(text)]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def spread(values: Sequence[float]) -> dict[str, float]:
    """The percentiles every latency table shows, with the max and the mean."""
    return {
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def apply_defaults(options: argparse.Namespace, defaults: dict[str, Any]) -> None:
    """Fill the options the user left unset (their defaults depend on ``--quick``)."""
    for name, value in defaults.items():
        if getattr(options, name) is None:
            setattr(options, name, value)


def save(kind: str, report: dict[str, Any]) -> Path:
    """Write ``bench/results/<kind>-<UTC stamp>.json`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{kind}-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


class ThreadProfiler:
    """cProfile for every thread: the main one and each thread started while it is on.

    ``python -m cProfile`` sees only the main thread; Dockyard's SQLite calls run on a storage
    thread and plain Python functions on ``asyncio.to_thread`` threads. With ``clock="cpu"`` each
    profile counts its thread's CPU time, so waiting (for a lock, a child, the next poll) is free.
    """

    def __init__(self, clock: str = "wall") -> None:
        self._timer: Callable[[], float] = time.thread_time if clock == "cpu" else time.perf_counter
        self._lock = threading.Lock()
        self.profiles: list[cProfile.Profile] = []

    def _new(self) -> cProfile.Profile:
        profile = cProfile.Profile(self._timer)
        with self._lock:
            self.profiles.append(profile)
        return profile

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        self._new().enable()  # replaces this hook for the calling thread

    def __enter__(self) -> ThreadProfiler:
        threading.setprofile(self._hook)
        self._main = self._new()
        self._main.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        self._main.disable()
        threading.setprofile(None)

    def dump(self, path: Path) -> None:
        stats = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            with contextlib.suppress(TypeError):  # a thread that never called anything
                stats.add(profile)
        stats.dump_stats(str(path))
        text = path.with_suffix(path.suffix + ".txt")
        with text.open("w") as out:
            out.write(f"{len(self.profiles)} thread(s) profiled\n")
            for key in ("tottime", "cumulative"):
                pstats.Stats(str(path), stream=out).sort_stats(key).print_stats(45)
