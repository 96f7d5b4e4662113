"""RQ (run with bench/.venvs/rq/bin/python).

Worker: ``rq worker-pool --num-workers 2 --worker-class rq.worker.SimpleWorker``, one worker per
core. RQ's own notes on performance name ``SimpleWorker`` (jobs run in the worker process, no
fork per job, ~6× faster on short jobs) for jobs that are "extremely short-lived" and trusted,
which a no-op is; the pool runs one per core. Bulk enqueue: ``Queue.enqueue_many`` of
``Queue.prepare_data`` items (one Redis pipeline).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from redis import Redis  # type: ignore[import-not-found, unused-ignore]
from rq import Queue  # type: ignore[import-not-found, unused-ignore]

from bench.peers import harness

URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/12")
QUEUE = "bench"
WORKERS = 2


def noop(i: int) -> None:
    harness.record(i)


#: By name: this module runs as __main__ in the driver, and as itself in the workers.
FUNCTION = "bench.peers.rq_driver.noop"


def worker_argv(variant: str) -> list[list[str]]:
    rq = os.path.join(os.path.dirname(sys.executable), "rq")
    return [
        [
            rq,
            "worker-pool",
            "--num-workers",
            str(WORKERS),
            "--worker-class",
            "rq.worker.SimpleWorker",
            "--url",
            URL,
            "--quiet",
            QUEUE,
        ]
    ]


def main() -> None:
    args = harness.parse_args()
    env = {"PEERS_REDIS_URL": URL}
    if args.measure == "info":
        harness.emit(harness.versions(["rq", "redis", "hiredis"]))
        return
    queue: Any = Queue(QUEUE, connection=Redis.from_url(URL))

    def submit(i: int) -> None:
        queue.enqueue(FUNCTION, i)

    def submit_all(n: int) -> None:
        queue.enqueue_many([Queue.prepare_data(FUNCTION, (i,)) for i in range(n)])

    harness.run_measure(
        args,
        system="rq",
        submit=submit,
        submit_all=submit_all,
        worker_argv=worker_argv(args.variant),
        env=env,
    )


if __name__ == "__main__":
    main()
