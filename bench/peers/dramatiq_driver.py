"""Dramatiq with its Redis broker (run with bench/.venvs/dramatiq/bin/python).

Worker: ``dramatiq bench.peers.dramatiq_driver`` with its defaults, one process per core (2)
and 8 threads each, and the default middleware. Dramatiq has no bulk-enqueue API
(``group(...).run()`` sends the messages one by one): ``send()`` one message at a time.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import dramatiq  # type: ignore[import-not-found, unused-ignore]
from dramatiq.brokers.redis import RedisBroker  # type: ignore[import-not-found, unused-ignore]

from bench.peers import harness

URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/12")

broker: Any = RedisBroker(url=URL)
dramatiq.set_broker(broker)


def noop(i: int) -> None:
    harness.record(i)


noop_actor: Any = dramatiq.actor(actor_name="noop")(noop)


def worker_argv(variant: str) -> list[list[str]]:
    return [
        [os.path.join(os.path.dirname(sys.executable), "dramatiq"), "bench.peers.dramatiq_driver"]
    ]


def submit(i: int) -> None:
    noop_actor.send(i)


def main() -> None:
    args = harness.parse_args()
    env = {"PEERS_REDIS_URL": URL}
    if args.measure == "info":
        harness.emit(harness.versions(["dramatiq", "redis", "hiredis"]))
    elif args.measure == "enqueue":
        if args.mode == "bulk":
            harness.emit({"mode": "bulk", "unsupported": True})
            return
        harness.emit(harness.timed_single(submit, args.n))
    elif args.measure == "process":
        with harness.records_folder() as records:
            submitted = harness.timed_single(submit, args.n)
            result = harness.run_process(records, worker_argv(args.variant), env, args.n)
        harness.emit(result | {"submit": submitted})
    elif args.measure == "latency":
        with harness.records_folder() as records:
            result = harness.run_latency(
                records, worker_argv(args.variant), env, submit, args.n, args.interval_ms / 1000
            )
        harness.emit(result)
    else:
        raise SystemExit(f"dramatiq: no {args.measure} measurement")


if __name__ == "__main__":
    main()
