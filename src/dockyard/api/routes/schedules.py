"""The ``/v1/schedules`` routes: create, read, change, pause, resume and delete schedules.

A ``PATCH`` keeps every key it leaves out and resets a key given as null to its default; the
target merges key by key (:func:`dockyard.domain.scheduling.merge_schedule_document`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dockyard.api.auth import allowed
from dockyard.api.routes.dependencies import App
from dockyard.api.schemas import ScheduleIn, ScheduleOut, SchedulePatch
from dockyard.app import Schedules
from dockyard.domain.scheduling import schedule_document

__all__ = ["router"]

router = APIRouter()


@router.post(
    "/schedules",
    status_code=201,
    response_model=ScheduleOut,
    dependencies=[allowed(Schedules.create)],
)
async def create_schedule(body: ScheduleIn, app: App) -> dict[str, Any]:
    """Create a schedule; its target definition must exist. 409 if the name is taken."""
    document = body.model_dump(exclude_unset=True)
    return schedule_document(await app.schedules.create(document, name=body.name))


@router.get("/schedules", response_model=list[ScheduleOut], dependencies=[allowed(Schedules.list)])
async def list_schedules(app: App) -> list[dict[str, Any]]:
    """Every schedule with its next fire time."""
    return [schedule_document(schedule) for schedule in await app.schedules.list()]


@router.get("/schedules/{name}", response_model=ScheduleOut, dependencies=[allowed(Schedules.get)])
async def get_schedule(name: str, app: App) -> dict[str, Any]:
    return schedule_document(await app.schedules.get(name))


@router.patch(
    "/schedules/{name}", response_model=ScheduleOut, dependencies=[allowed(Schedules.update)]
)
async def update_schedule(name: str, body: SchedulePatch, app: App) -> dict[str, Any]:
    """Change the fields given (null: back to the default); ``target`` merges key by key."""
    # exclude_unset, not exclude_none: a key left out keeps its value, a null resets it.
    changes = body.model_dump(exclude_unset=True)
    return schedule_document(await app.schedules.update(name, changes))


@router.post(
    "/schedules/{name}/pause",
    response_model=ScheduleOut,
    dependencies=[allowed(Schedules.set_enabled)],
)
async def pause_schedule(name: str, app: App) -> dict[str, Any]:
    """No fire while paused, and none of the missed ones is caught up on resume."""
    return schedule_document(await app.schedules.set_enabled(name, False))


@router.post(
    "/schedules/{name}/resume",
    response_model=ScheduleOut,
    dependencies=[allowed(Schedules.set_enabled)],
)
async def resume_schedule(name: str, app: App) -> dict[str, Any]:
    """Fire again, from the next fire time after now."""
    return schedule_document(await app.schedules.set_enabled(name, True))


@router.delete(
    "/schedules/{name}", response_model=ScheduleOut, dependencies=[allowed(Schedules.delete)]
)
async def delete_schedule(name: str, app: App) -> dict[str, Any]:
    """Delete a schedule (its jobs stay); the answer is what was deleted."""
    return schedule_document(await app.schedules.delete(name))
