"""HTTP jobs against a local server: jobs/s with 50 in flight on one worker, and the latency
Dockyard adds over a bare httpx call (issue 8).

Run from the repository root::

    python -m bench.http            # 3 rounds: 2,000 jobs at 50 in flight, 100 one at a time
    python -m bench.http --quick    # 1 round, 500 and 30

The server answers every GET with ``200 {"ok": true}`` in one write, on asyncio streams, in its own
process (``python -m bench.http --serve PORT``), so it does not share the worker's interpreter
and is not what is measured. The store is PostgreSQL (``--backend sqlite`` for SQLite, whose
cross-process wake-up polls every 20 ms). Each round:

(a) **throughput**: N jobs of an ``http`` definition (GET the server) submitted in one call to a
    fresh store, then one in-process worker with ``concurrency 50`` in burst mode, timed
    from its start to its return; against N bare ``httpx.AsyncClient`` GETs with 50 in flight.
(b) **added latency**: M jobs one at a time, each submitted and waited for through the SDK with
    an idle worker running (submit call → SUCCEEDED as the client sees it); against M bare GETs
    one at a time. Dockyard's added latency = the difference of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

from bench.common import REPO, median, run_meta, save

_RESPONSE = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{"ok": true}'
)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer every request on a kept-alive connection at once, in one write (GETs only)."""
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(_RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


#: The server the jobs call is on 127.0.0.1: a PostgreSQL store's workers refuse private
#: addresses unless told (dockyard/policy.py).
_ENVIRON = {"DOCKYARD_HTTP_ALLOW_PRIVATE": "true"}


def serve(port: int) -> None:
    """The bench server: as fast as a server can be, so the clients are what is measured."""

    async def main() -> None:
        server = await asyncio.start_server(_handle, "127.0.0.1", port, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _start_server() -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    sys.path.insert(0, str(REPO))
    from tests.conftest import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.http", "--serve", str(port)], cwd=REPO)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(200):
        try:
            httpx.get(url, timeout=0.5)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)  # the server process is starting
    proc.kill()
    raise RuntimeError("the bench server did not start")


async def _bare_throughput(url: str, n: int, in_flight: int) -> float:
    import httpx

    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits) as http:
        gate = asyncio.Semaphore(in_flight)

        async def one() -> None:
            async with gate:
                (await http.get(url)).raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - start)


async def _bare_latencies(url: str, m: int) -> list[float]:
    import httpx

    async with httpx.AsyncClient() as http:
        await http.get(url)
        times = []
        for _ in range(m):
            start = time.perf_counter()
            (await http.get(url)).raise_for_status()
            times.append(time.perf_counter() - start)
        return times


def _dockyard_throughput(url: str, n: int, in_flight: int, backend: str) -> float:
    import dockyard
    from bench.postgres import DEFAULT_POSTGRES_URL, fresh_store
    from dockyard.app import Dockyard
    from dockyard.runtime import WorkerConfig
    from dockyard.settings import Settings

    with fresh_store(backend, DEFAULT_POSTGRES_URL) as store:
        settings = Settings.resolve(home=store.home, url=store.url, environ=_ENVIRON)
        with dockyard.DirectClient(settings) as client:
            client.register({"executor": "http", "method": "GET", "url": url}, name="get")
            client.submit_requests([dockyard.SubmitRequest(definition="get") for _ in range(n)])

        async def work() -> float:
            app = await Dockyard.open(settings)
            try:
                worker = app.worker(WorkerConfig(concurrency=in_flight, burst=True))
                start = time.perf_counter()
                await worker.run()
                return n / (time.perf_counter() - start)
            finally:
                await app.close()

        rate = asyncio.run(work())
        with dockyard.DirectClient(settings) as client:
            counts = {queue.name: dict(queue.counts) for queue in client.queues()}
            succeeded = sum(states.get("SUCCEEDED", 0) for states in counts.values())
            if succeeded != n:
                raise RuntimeError(f"{succeeded} of {n} jobs succeeded: {counts}")
        return rate


def _dockyard_latencies(url: str, m: int, backend: str) -> list[float]:
    from tests.conftest import WorkerThread

    import dockyard
    from bench.postgres import DEFAULT_POSTGRES_URL, fresh_store
    from dockyard.runtime import WorkerConfig
    from dockyard.settings import Settings

    with fresh_store(backend, DEFAULT_POSTGRES_URL) as store:
        settings = Settings.resolve(home=store.home, url=store.url, environ=_ENVIRON)
        with dockyard.DirectClient(settings) as client:
            client.register({"executor": "http", "method": "GET", "url": url}, name="get")
            worker = WorkerThread(settings, WorkerConfig(concurrency=4)).start()
            try:
                client.wait(client.submit("get").id, timeout=30)  # warm
                times = []
                for _ in range(m):
                    start = time.perf_counter()
                    job = client.wait(client.submit("get").id, timeout=30)
                    times.append(time.perf_counter() - start)
                    if job.state.value != "SUCCEEDED":
                        raise RuntimeError(f"job {job.id}: {job.status_reason}")
                return times
            finally:
                worker.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-n", type=int, default=2000, help="jobs for (a) [2000]")
    parser.add_argument("-m", type=int, default=100, help="jobs for (b) [100]")
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.serve:
        serve(options.serve)
        return
    if options.quick:
        options.runs, options.n, options.m = 1, 500, 30
    sys.path.insert(0, str(REPO))
    meta = run_meta("bench.http", list(argv if argv is not None else sys.argv[1:]))
    proc, url = _start_server()
    rounds = []
    try:
        for index in range(1, options.runs + 1):
            bare_rate = asyncio.run(_bare_throughput(url, options.n, options.in_flight))
            ours_rate = _dockyard_throughput(url, options.n, options.in_flight, options.backend)
            bare_lat = asyncio.run(_bare_latencies(url, options.m))
            ours_lat = _dockyard_latencies(url, options.m, options.backend)
            row = {
                "bare_per_s": bare_rate,
                "dockyard_per_s": ours_rate,
                "bare_p50_ms": statistics.median(bare_lat) * 1000,
                "dockyard_p50_ms": statistics.median(ours_lat) * 1000,
            }
            rounds.append(row)
            print(
                f"round {index}/{options.runs}: {ours_rate:,.0f} jobs/s (bare httpx {bare_rate:,.0f}"
                f" requests/s); one at a time p50 {row['dockyard_p50_ms']:.1f} ms"
                f" (bare {row['bare_p50_ms']:.2f} ms)",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(10)

    def med(key: str) -> float:
        return median([row[key] for row in rounds]) or 0.0

    print(
        f"\npython -m bench.http ({meta['git_commit']}; {options.backend}; {options.runs} round(s);"
        f" (a) {options.n:,} jobs,"
        f" {options.in_flight} in flight; (b) {options.m} one at a time; {meta['cpus']} CPUs;"
        f" Python {meta['python']})\n\n"
        "| | Dockyard | bare httpx | ratio / difference |\n|---|--:|--:|--:|\n"
        f"| (a) per second, {options.in_flight} in flight | {med('dockyard_per_s'):,.0f} |"
        f" {med('bare_per_s'):,.0f} | {med('dockyard_per_s') / med('bare_per_s'):.2f}× |\n"
        f"| (b) one at a time, p50 ms | {med('dockyard_p50_ms'):.1f} | {med('bare_p50_ms'):.2f} |"
        f" +{med('dockyard_p50_ms') - med('bare_p50_ms'):.1f} ms |"
    )
    if not options.no_save:
        path = save("http", {"meta": meta, "options": vars(options), "rounds": rounds})
        print(f"saved {path.relative_to(REPO)}")
    print(json.dumps({"rounds": len(rounds)}))


if __name__ == "__main__":
    main()
