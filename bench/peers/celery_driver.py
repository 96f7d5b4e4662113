"""Celery with a Redis broker (run with bench/.venvs/celery/bin/python).

Worker, as the Optimizing guide recommends for many short tasks: the prefork pool with one
child per core (``--concurrency 2``), a large prefetch multiplier (``64``: "64 or 128" for
short tasks), results ignored (no result backend), and no gossip, mingle or heartbeat events
(cluster chatter a single worker does not need). Celery has no bulk-enqueue API: ``delay()``
one message at a time.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from celery import Celery  # type: ignore[import-not-found, unused-ignore]

from bench.peers import harness

BROKER = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/12")

app: Any = Celery("bench_peers", broker=BROKER)
app.conf.update(
    task_ignore_result=True,
    worker_prefetch_multiplier=64,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


def noop(i: int) -> None:
    harness.record(i)


noop_task: Any = app.task(name="noop")(noop)

CONCURRENCY = 2


def worker_argv(variant: str) -> list[list[str]]:
    celery = os.path.join(os.path.dirname(sys.executable), "celery")
    return [
        [
            celery,
            "-A",
            "bench.peers.celery_driver",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(CONCURRENCY),
            "--prefetch-multiplier",
            "64",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ]
    ]


def submit(i: int) -> None:
    noop_task.delay(i)


def main() -> None:
    args = harness.parse_args()
    env = {"PEERS_REDIS_URL": BROKER}
    if args.measure == "info":
        harness.emit(harness.versions(["celery", "kombu", "redis", "hiredis", "billiard"]))
    else:
        harness.run_measure(
            args,
            system="celery",
            submit=submit,
            submit_all=None,
            worker_argv=worker_argv(args.variant),
            env=env,
        )


if __name__ == "__main__":
    main()
