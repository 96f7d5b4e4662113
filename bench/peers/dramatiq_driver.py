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
    else:
        harness.run_measure(
            args,
            system="dramatiq",
            submit=submit,
            submit_all=None,
            worker_argv=worker_argv(args.variant),
            env=env,
        )


if __name__ == "__main__":
    main()
