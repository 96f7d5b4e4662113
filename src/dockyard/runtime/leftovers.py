"""What killed workers left running outside the store (containers), removed by the next worker.

A worker that was killed cannot stop its containers. Every worker, as it starts, asks each
executor that can leave things behind (:class:`LeavesThingsBehind`) what it finds under
Dockyard's labels, and removes what belongs to a worker that is gone: one the store lists as
stopped, or one on this host whose process no longer exists. A worker on another host that
still runs keeps its containers, and so does this worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

from dockyard.executors.port import Executor, LeavesThingsBehind
from dockyard.storage.ports import Storage

__all__ = ["remove_leftovers"]

log = logging.getLogger("dockyard.worker")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def remove_leftovers(
    storage: Storage, executors: Mapping[str, Executor], worker_id: str
) -> None:
    """Remove what dead workers of this host left in ``executors``; ``worker_id`` is the caller."""
    host = socket.gethostname()
    for executor in executors.values():
        if not isinstance(executor, LeavesThingsBehind):
            continue
        try:
            found = await asyncio.to_thread(executor.leftovers)
        except Exception as error:  # no engine here: nothing was left on it
            log.debug("cannot list leftovers: %s", error)
            continue
        if not found:
            continue
        live = {
            worker.id
            for worker in await storage.queues.workers()
            if worker.stopped_at is None and (worker.hostname != host or _pid_alive(worker.pid))
        }
        live.add(worker_id)
        orphans = [item.container_id for item in found if item.worker_id not in live]
        if orphans:
            log.warning("removing %d container(s) left by dead workers", len(orphans))
            await asyncio.to_thread(executor.remove, orphans)
