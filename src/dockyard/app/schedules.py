"""Schedules as a resource: create, read, update (pause and resume included), delete."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from dockyard.app.core import Resource, requires
from dockyard.app.definitions import find_definition
from dockyard.domain.definitions import check_name
from dockyard.domain.fire_plans import fire_request, first_fire
from dockyard.domain.jobs import new_job
from dockyard.domain.scheduling import (
    Schedule,
    ScheduleSpec,
    merge_schedule_document,
    parse_schedule,
)
from dockyard.domain.tokens import Permission
from dockyard.errors import ConflictError, NotFoundError, ValidationError

__all__ = ["Schedules"]

READ, OPERATE = Permission.READ, Permission.OPERATE
#: An update retries this often when fires keep moving the schedule under it.
UPDATE_TRIES = 10


class Schedules(Resource):
    __slots__ = ()

    @requires(OPERATE)
    async def create(self, document: Mapping[str, Any], name: str | None = None) -> Schedule:
        """Create a schedule from its document (``name`` wins over the document's)."""
        name = check_name(name if name is not None else document.get("name"), "name")
        spec, enabled = parse_schedule({k: v for k, v in document.items() if k != "name"})
        await self._check_target(name, spec)
        now = self._core.clock.now()
        schedule = Schedule(
            name=name,
            spec=spec,
            enabled=enabled,
            created_at=now,
            updated_at=now,
            next_fire_at=_first_fire(spec, now, anchor=now),
        )
        if not await self._core.storage.schedules.insert(schedule):
            raise ConflictError(f"schedule {name} already exists")
        return schedule

    @requires(READ)
    async def get(self, name: str) -> Schedule:
        return await self._get(name)

    async def _get(self, name: str) -> Schedule:
        schedule = await self._core.storage.schedules.get(name)
        if schedule is None:
            raise NotFoundError("schedule", name)
        return schedule

    @requires(READ)
    async def list(self) -> builtins.list[Schedule]:
        return await self._core.storage.schedules.all()

    @requires(OPERATE)
    async def update(self, name: str, changes: Mapping[str, Any]) -> Schedule:
        """Change some fields: the others keep their values, ``target`` merges key by key, and
        a None sets a field back to its default. A change of timing (expression, time zone,
        start, end) or a resume computes the next fire time afresh."""
        return await self._update(name, changes)

    async def _update(self, name: str, changes: Mapping[str, Any]) -> Schedule:
        if not isinstance(changes, Mapping):
            raise ValidationError("schedule", "must be a mapping")
        if "name" in changes and changes["name"] != name:
            raise ValidationError("name", "cannot be changed (create a new schedule)")
        # A fire between the read and the write moves next_fire_at: read again and redo.
        for _ in range(UPDATE_TRIES):
            current = await self._get(name)
            schedule = await self._updated(current, changes)
            if await self._core.storage.schedules.replace(schedule, current.next_fire_at):
                return schedule
        raise ConflictError(f"schedule {name} keeps changing; try again")

    async def _updated(self, current: Schedule, changes: Mapping[str, Any]) -> Schedule:
        document = merge_schedule_document(current, changes)
        spec, enabled = parse_schedule({k: v for k, v in document.items() if k != "name"})
        now = self._core.clock.now()
        retargeted = "target" in changes
        if retargeted:
            await self._check_target(current.name, spec)
        old = current.spec
        timing = (spec.expression, spec.timezone, spec.start, spec.end)
        next_fire_at = current.next_fire_at
        after = max(now, current.last_fire_at or now)
        if timing != (old.expression, old.timezone, old.start, old.end):
            next_fire_at = _first_fire(spec, after, anchor=current.created_at)
        elif enabled and not current.enabled:
            # A resume: no fire caught up for the pause; a schedule that had fired its last
            # (an at) stays done.
            next_fire_at = first_fire(spec, now=after, anchor=current.created_at)
        return replace(
            current,
            spec=spec,
            enabled=enabled,
            next_fire_at=next_fire_at,
            updated_at=now,
            last_error=None if retargeted else current.last_error,
        )

    @requires(OPERATE)
    async def set_enabled(self, name: str, enabled: bool) -> Schedule:
        """Pause (no fire while paused, none caught up later) or resume a schedule."""
        return await self._update(name, {"state": "ENABLED" if enabled else "DISABLED"})

    @requires(OPERATE)
    async def delete(self, name: str) -> Schedule:
        schedule = await self._get(name)
        if not await self._core.storage.schedules.delete(name):
            raise NotFoundError("schedule", name)
        return schedule

    async def _check_target(self, name: str, spec: ScheduleSpec) -> None:
        """Refuse a target whose jobs could not be submitted: build one as a fire would."""
        ref = spec.target.definition
        try:
            definition = await find_definition(self, ref)
        except NotFoundError:
            raise ValidationError(
                "target.definition", f"no active definition {ref} (register it first)"
            ) from None
        now = self._core.clock.now()
        probe = Schedule(
            name=name, spec=spec, enabled=True, created_at=now, updated_at=now, next_fire_at=now
        )
        try:
            new_job(fire_request(probe, now), definition, now)
        except ValidationError as error:
            raise ValidationError(f"target.{error.field}", error.rule) from None


def _first_fire(spec: ScheduleSpec, after: datetime, *, anchor: datetime) -> datetime:
    moment = first_fire(spec, now=after, anchor=anchor)
    if moment is None:
        raise ValidationError(
            "expression",
            f"{spec.expression} has no fire time after {after.isoformat(timespec='seconds')}"
            + (f" before the end {spec.end.isoformat()}" if spec.end else "")
            + f" in {spec.timezone}",
        )
    return moment
