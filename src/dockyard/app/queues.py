"""Queues and workers as a resource: queues with their counts, pause and resume; the workers."""

from __future__ import annotations

import builtins

from dockyard.app.core import Resource, requires
from dockyard.domain.definitions import check_queue
from dockyard.domain.tokens import Permission
from dockyard.storage import QueueInfo, WorkerInfo

__all__ = ["Queues"]

READ, OPERATE = Permission.READ, Permission.OPERATE


class Queues(Resource):
    __slots__ = ()

    @requires(READ)
    async def list(self) -> builtins.list[QueueInfo]:
        """Every queue that has jobs or was paused, with its jobs per state."""
        return await self._core.storage.queues.queues()

    @requires(OPERATE)
    async def set_paused(self, name: str, paused: bool) -> QueueInfo:
        """Pause (workers claim nothing from it; submits still land) or resume a queue."""
        check_queue(name)
        return await self._core.storage.queues.set_paused(name, paused, self._core.clock.now())

    @requires(READ)
    async def workers(self) -> builtins.list[WorkerInfo]:
        """Every worker that registered, with its last heartbeat and the jobs it holds."""
        return await self._core.storage.queues.workers()
