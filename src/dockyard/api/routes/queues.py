"""The ``/v1/queues`` and ``/v1/workers`` routes: queue counts, pausing, and live workers.

A paused queue still takes submissions; workers only stop claiming from it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dockyard.api.auth import allowed
from dockyard.api.routes.dependencies import App
from dockyard.api.schemas import QueueOut, WorkerOut
from dockyard.app import QueueInfo, Queues, WorkerInfo
from dockyard.domain.documents import iso

__all__ = ["router"]

router = APIRouter()


def _queue(queue: QueueInfo) -> dict[str, Any]:
    return {"name": queue.name, "paused": queue.paused, "counts": dict(queue.counts)}


@router.get("/queues", response_model=list[QueueOut], dependencies=[allowed(Queues.list)])
async def list_queues(app: App) -> list[dict[str, Any]]:
    """Every queue with its job counts per state."""
    return [_queue(queue) for queue in await app.queues.list()]


@router.post(
    "/queues/{name}/pause", response_model=QueueOut, dependencies=[allowed(Queues.set_paused)]
)
async def pause_queue(name: str, app: App) -> dict[str, Any]:
    """Workers take no job from a paused queue; submissions still land."""
    return _queue(await app.queues.set_paused(name, True))


@router.post(
    "/queues/{name}/resume", response_model=QueueOut, dependencies=[allowed(Queues.set_paused)]
)
async def resume_queue(name: str, app: App) -> dict[str, Any]:
    return _queue(await app.queues.set_paused(name, False))


def _worker(worker: WorkerInfo) -> dict[str, Any]:
    return {
        "id": worker.id,
        "hostname": worker.hostname,
        "pid": worker.pid,
        "queues": None if worker.queues is None else list(worker.queues),
        "concurrency": worker.concurrency,
        "started_at": iso(worker.started_at),
        "heartbeat_at": iso(worker.heartbeat_at),
        "stopped_at": iso(worker.stopped_at),
        "running": list(worker.running),
    }


@router.get("/workers", response_model=list[WorkerOut], dependencies=[allowed(Queues.workers)])
async def list_workers(app: App) -> list[dict[str, Any]]:
    """Workers with their last heartbeat and the jobs they run now."""
    return [_worker(worker) for worker in await app.queues.workers()]
