"""What dead workers left running outside the store (containers), swept by the live workers.

A worker's reaper removes its containers when the worker dies (:mod:`dockyard.executors.reaper`).
This sweep is the backstop for when the reaper could not: it died with the worker (a SIGKILL to
both, the OOM killer, a container stopped with the worker inside), or the engine was away. Every
live worker sweeps as it starts and then every ``lease / 3`` (:class:`LeftoverSweep`): it asks
each executor that can leave things behind (:class:`LeavesThingsBehind`) what it finds under
Dockyard's labels, and removes what is no longer any live attempt's body, that is a container

- whose worker is gone: the store lists it as stopped, or it ran on this host and its process no
  longer exists; or
- whose job no longer holds a live lease of that worker (the job ended, was rescued or retried,
  or its lease ran out): a body never outlives its lease, whichever host its worker was on.

A worker on another host that still runs and renews keeps its containers, and so does this
worker. The sweep reads the store only when it found containers, and removes them over the
engine's socket, never loading the Docker SDK.

**Cheap where no docker job runs.** A host without an engine socket costs a ``stat`` per sweep.
A host with an engine costs one label-filtered listing (~1-2 ms over the Unix socket) per sweep
only while docker work is known there: the last listing found this store's containers, or this
worker's own executor ran a container since; otherwise the engine is asked at start and then
every :data:`IDLE_EVERY`-th sweep only (every ~100 s with the default 30 s lease), which still
finds the containers of a neighbour that died with its reaper.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime

from dockyard.domain.clock import Clock
from dockyard.domain.records import JobId
from dockyard.executors.port import Executor, LeavesThingsBehind, Leftover
from dockyard.storage.ports import Storage

__all__ = ["IDLE_EVERY", "LeftoverSweep", "remove_leftovers"]

log = logging.getLogger("dockyard.worker")

#: Where no docker work is known, the engine is asked once in this many sweeps.
IDLE_EVERY = 10


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LeftoverSweep:
    """The sweep of one worker (``worker_id``): :meth:`sweep` at start and then periodically."""

    def __init__(
        self, storage: Storage, executors: Mapping[str, Executor], worker_id: str, clock: Clock
    ) -> None:
        self._storage = storage
        self._executors = [e for e in executors.values() if isinstance(e, LeavesThingsBehind)]
        self._worker_id = worker_id
        self._clock = clock
        self._idle_sweeps = 0
        self._found_any = False
        #: Set by the worker when it ran an attempt of a kind that leaves things behind.
        self.busy = False
        #: Containers removed by this sweep so far.
        self.removed = 0

    async def sweep(self, *, force: bool = False) -> int:
        """Remove the orphans found now; return how many. Without ``force``, the engine is
        asked only while docker work is known, or once in :data:`IDLE_EVERY` sweeps."""
        if not self._executors:
            return 0
        self._idle_sweeps += 1
        if not (force or self.busy or self._found_any or self._idle_sweeps >= IDLE_EVERY):
            return 0
        self._idle_sweeps = 0
        self.busy = False
        removed = 0
        found_any = False
        for executor in self._executors:
            try:
                found = await asyncio.to_thread(executor.leftovers)
            except Exception as error:  # no engine here: nothing was left on it
                log.debug("cannot list leftovers: %s", error)
                continue
            found_any = found_any or bool(found)
            orphans = await self._orphans(found) if found else []
            if orphans:
                log.warning("removing %d container(s) no live attempt runs", len(orphans))
                await asyncio.to_thread(executor.remove, orphans)
                removed += len(orphans)
        self._found_any = found_any
        self.removed += removed
        return removed

    async def _orphans(self, found: Sequence[Leftover]) -> list[str]:
        host = socket.gethostname()
        dead = {
            worker.id
            for worker in await self._storage.queues.workers()
            if worker.stopped_at is not None
            or (worker.hostname == host and not _pid_alive(worker.pid))
        }
        now = self._clock.now()
        orphans = []
        for item in found:
            if item.worker_id == self._worker_id:
                continue  # this worker's own: it stops them itself
            if item.worker_id in dead or not await self._leased(item, now):
                orphans.append(item.container_id)
        return orphans

    async def _leased(self, item: Leftover, now: datetime) -> bool:
        """True while the container's job holds a live lease of the container's worker."""
        job = await self._storage.jobs.get(JobId(item.job_id))
        return (
            job is not None
            and job.worker_id == item.worker_id
            and job.lease_expires_at is not None
            and job.lease_expires_at >= now
        )


async def remove_leftovers(
    storage: Storage, executors: Mapping[str, Executor], worker_id: str, clock: Clock
) -> int:
    """One sweep now: remove what no live attempt of this store runs; return how many."""
    return await LeftoverSweep(storage, executors, worker_id, clock).sweep(force=True)
