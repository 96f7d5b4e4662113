"""A trivial container through Dockyard against ``docker run --rm`` of the same image, same run.

Run from the repository root, with a Docker engine up (``scripts/services`` starts one)::

    python -m bench.docker            # 3 rounds of 20 containers each way (~1 minute)
    python -m bench.docker --quick    # 1 round of 5

The image is ``local/busybox:1``, made here from busybox-static (no download); the container
runs ``true`` with no network. Each round times, one after the other, N ``docker run --rm
--network none local/busybox:1 true`` (the Docker CLI, as users run it), then N Dockyard jobs of
a ``docker`` definition doing the same, each submitted and waited for through the SDK with one
worker (``concurrency 1``) running in this process on a fresh SQLite store: per-job wall time
from the submit call to the job's end as the client sees it. The target (issue 7): Dockyard
≤ 1.2× ``docker run``; the ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import REPO, median, run_meta, save

IMAGE = "local/busybox:1"
TARGET_RATIO = 1.2


def _image() -> None:
    sys.path.insert(0, str(REPO))
    from tests.conftest import busybox_tar

    import docker

    client = docker.from_env()
    repository, tag = IMAGE.split(":")
    client.api.import_image_from_data(busybox_tar(), repository=repository, tag=tag)


def _docker_run(n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(
            ["docker", "run", "--rm", "--network", "none", IMAGE, "true"],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return times


def _dockyard(n: int) -> list[float]:
    from tests.conftest import WorkerThread

    import dockyard
    from dockyard.runtime import WorkerConfig
    from dockyard.settings import Settings

    with tempfile.TemporaryDirectory(prefix="dockyard-bench-docker-") as folder:
        settings = Settings.resolve(home=Path(folder), environ={})
        with dockyard.DirectClient(settings) as client:
            client.register(
                {
                    "executor": "docker",
                    "image": IMAGE,
                    "command": ["true"],
                    "network_mode": "none",
                    "pull": "never",
                },
                name="trivial",
            )
            worker = WorkerThread(
                settings, WorkerConfig(concurrency=1, poll_seconds=0.05, check_seconds=0.1)
            ).start()
            try:
                client.wait(client.submit("trivial").id, timeout=60)  # warm: engine client, image
                times = []
                for _ in range(n):
                    start = time.perf_counter()
                    job = client.wait(client.submit("trivial").id, timeout=60)
                    times.append(time.perf_counter() - start)
                    if job.state.value != "SUCCEEDED":
                        raise RuntimeError(f"job {job.id} ended {job.state}: {job.status_reason}")
                return times
            finally:
                worker.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.docker", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-n", type=int, default=20, help="containers per round each way [20]")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-save", action="store_true")
    options = parser.parse_args(argv)
    if options.quick:
        options.runs, options.n = 1, 5
    meta = run_meta("bench.docker", list(argv if argv is not None else sys.argv[1:]))
    _image()
    rounds: list[dict[str, float | list[float]]] = []
    runs: list[tuple[list[float], list[float]]] = []
    for round_ in range(1, options.runs + 1):
        plain = _docker_run(options.n)
        ours = _dockyard(options.n)
        row: dict[str, float | list[float]] = {
            "docker_run_s": statistics.median(plain),
            "dockyard_s": statistics.median(ours),
            "ratio": statistics.median(ours) / statistics.median(plain),
            "docker_run_all": plain,
            "dockyard_all": ours,
        }
        rounds.append(row)
        runs.append((plain, ours))
        print(
            f"round {round_}/{options.runs}: docker run {statistics.median(plain) * 1000:.0f} ms,"
            f" dockyard {statistics.median(ours) * 1000:.0f} ms per container"
            f" ({statistics.median(ours) / statistics.median(plain):.2f}×)",
            flush=True,
        )
    ratio = median([statistics.median(o) / statistics.median(p) for p, o in runs])
    plain_ms = (median([statistics.median(p) for p, _ in runs]) or 0) * 1000
    ours_ms = (median([statistics.median(o) for _, o in runs]) or 0) * 1000
    verdict = "meets" if ratio is not None and ratio <= TARGET_RATIO else "misses"
    print(
        f"\npython -m bench.docker ({meta['git_commit']}; {options.runs} round(s) of"
        f" {options.n}; {meta['cpus']} CPUs; Python {meta['python']})\n\n"
        "| per container (median of rounds) | ms |\n|---|--:|\n"
        f"| `docker run --rm --network none {IMAGE} true` | {plain_ms:.0f} |\n"
        f"| Dockyard job (submit → SUCCEEDED, 1 worker) | {ours_ms:.0f} |\n\n"
        f"Dockyard ÷ docker run = {ratio:.2f}× ({verdict} ≤ {TARGET_RATIO}×)"
    )
    if not options.no_save:
        path = save("docker", {"meta": meta, "options": vars(options), "rounds": rounds})
        print(f"saved {path.relative_to(REPO)}")
    print(json.dumps({"ratio": ratio}))


if __name__ == "__main__":
    main()
