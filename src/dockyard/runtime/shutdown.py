"""A worker's graceful stop: wait for its running jobs, then stop the rest and wait for them.

Split from :mod:`dockyard.runtime.worker` (which keeps the claim loop and the attempt's course);
the rules are the worker's (see its module docstring and docs/guarantees.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from dockyard.domain.records import JobId
from dockyard.runtime.leases import Running

__all__ = ["shut_down"]

log = logging.getLogger("dockyard.worker")


def _tasks(running: Mapping[tuple[JobId, int], Running]) -> list[asyncio.Task[None]]:
    return [item.task for item in running.values() if item.task is not None]


async def shut_down(
    running: Mapping[tuple[JobId, int], Running], *, grace: float, check: float
) -> None:
    """Wait up to ``grace`` seconds for every job in ``running`` (those launched meanwhile
    too), then stop the rest; wait for all of them, bodies that cannot be stopped included
    (checking every ``check`` seconds, and warning once about each that lingers)."""
    if not running:
        return
    log.info("waiting up to %gs for %d running job(s)", grace, len(running))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while running and (left := deadline - loop.time()) > 0:
        await asyncio.wait(_tasks(running), timeout=left)
    for item in list(running.values()):
        item.hand_back = True
        item.cancelled.set()
    warned: set[JobId] = set()
    while running:
        await asyncio.wait(_tasks(running), timeout=max(check, 0.05))
        lingering = [r.job.id for r in running.values() if r.lingering]
        if lingering and not warned.issuperset(lingering):
            warned.update(lingering)
            log.warning(
                "the grace is over but %d inline function(s) cannot be stopped: waiting for"
                " them to return, their leases kept (jobs %s)",
                len(lingering),
                ", ".join(sorted(lingering)),
            )
