"""Schedules as a resource: the document users write and the record stored.

A schedule names an expression (:mod:`dockyard.domain.schedules`), a time zone, an optional start
and end, a flexible window, an overlap policy, a catch-up policy, and a target: a job of a
definition with overrides and a payload (:mod:`dockyard.domain.job_targets`). It keeps
``next_fire_at``, the next fire time not yet fired; the scheduler fires it and moves it on
(:mod:`dockyard.domain.fire_plans`).

A document is checked whole before anything is stored, and :func:`spec_document` reads back
through :func:`parse_schedule` to an equal spec, so what the store, the API and the CLI show can
be given again as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from dockyard.domain.job_targets import ScheduleTarget, job_target_document, parse_job_target
from dockyard.domain.records import JobId
from dockyard.domain.schedules import Expression, parse_expression, parse_timezone
from dockyard.errors import ValidationError

__all__ = [
    "CatchUp",
    "Overlap",
    "Schedule",
    "ScheduleSpec",
    "merge_schedule_document",
    "parse_schedule",
    "parse_schedule_record",
    "schedule_document",
    "spec_document",
]

MAX_FLEXIBLE_WINDOW_MINUTES = 1440
MAX_CATCH_UP_LIMIT = 1000


class Overlap(StrEnum):
    #: Every fire submits a job, whether or not the previous one finished.
    ALLOW = "allow"
    #: A fire while the previous job of this schedule is unfinished is skipped.
    SKIP = "skip"
    #: Fires queue up: the jobs share an ordering group and run one after the other.
    QUEUE = "queue"


class CatchUp(StrEnum):
    #: Fires missed while no scheduler ran are skipped.
    NONE = "none"
    #: The latest missed fire runs, once.
    LATEST = "latest"
    #: Every missed fire runs, the most recent ``catch_up_limit`` of them.
    ALL = "all"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleSpec:
    """What the user writes; everything but the expression and the target has a default."""

    expression: str
    target: ScheduleTarget
    timezone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    flexible_window_minutes: int = 0
    overlap: Overlap = Overlap.ALLOW
    catch_up: CatchUp = CatchUp.NONE
    catch_up_limit: int = 100
    #: Delete the schedule once it has no fire left (an ``at`` after its fire, or past ``end``).
    delete_after_completion: bool = False
    description: str | None = None

    @property
    def parsed(self) -> Expression:
        return parse_expression(self.expression)


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    name: str
    spec: ScheduleSpec
    enabled: bool
    created_at: datetime
    updated_at: datetime
    #: The next fire time not yet fired; None once the schedule has no fire left.
    next_fire_at: datetime | None
    last_fire_at: datetime | None = None
    last_job_id: JobId | None = None
    #: Fires that submitted a job.
    fires: int = 0
    #: Why the last fire failed (an unknown definition, say); None after a fire that worked.
    last_error: str | None = None

    @property
    def state(self) -> str:
        return "ENABLED" if self.enabled else "DISABLED"


# -- documents -------------------------------------------------------------------------------

_SPEC_KEYS = frozenset(
    {
        "name",
        "expression",
        "timezone",
        "start",
        "end",
        "flexible_window_minutes",
        "overlap",
        "catch_up",
        "catch_up_limit",
        "delete_after_completion",
        "description",
        "target",
        "state",
    }
)
_STATES = {"ENABLED": True, "DISABLED": False}


def parse_schedule(doc: Mapping[str, Any]) -> tuple[ScheduleSpec, bool]:
    """Validate a schedule document; return its spec and whether it is enabled."""
    if not isinstance(doc, Mapping):
        raise ValidationError("schedule", "must be a mapping")
    for key in doc:
        if key not in _SPEC_KEYS:
            raise ValidationError(str(key), "is not a field of a schedule")
    if "expression" not in doc:
        raise ValidationError("expression", "is required")
    expression = doc["expression"]
    if not isinstance(expression, str):
        raise ValidationError("expression", "must be a string")
    parse_expression(expression)
    timezone = doc.get("timezone", "UTC")
    if not isinstance(timezone, str):
        raise ValidationError("timezone", "must be an IANA time zone name")
    parse_timezone(timezone)
    start = _moment(doc.get("start"), "start")
    end = _moment(doc.get("end"), "end")
    if start is not None and end is not None and end <= start:
        raise ValidationError("end", "must be after start")
    state = doc.get("state", "ENABLED")
    if state not in _STATES:
        raise ValidationError("state", "must be ENABLED or DISABLED")
    spec = ScheduleSpec(
        expression=expression,
        target=_parse_target(doc.get("target")),
        timezone=timezone,
        start=start,
        end=end,
        flexible_window_minutes=_bounded_int(
            doc.get("flexible_window_minutes", 0),
            "flexible_window_minutes",
            0,
            MAX_FLEXIBLE_WINDOW_MINUTES,
        ),
        overlap=_choice(Overlap, doc.get("overlap", "allow"), "overlap"),
        catch_up=_choice(CatchUp, doc.get("catch_up", "none"), "catch_up"),
        catch_up_limit=_bounded_int(
            doc.get("catch_up_limit", 100), "catch_up_limit", 1, MAX_CATCH_UP_LIMIT
        ),
        delete_after_completion=_boolean(
            doc.get("delete_after_completion", False), "delete_after_completion"
        ),
        description=_optional_string(doc.get("description"), "description"),
    )
    return spec, _STATES[state]


def _parse_target(value: object) -> ScheduleTarget:
    if value is None:
        raise ValidationError("target", "is required: at least {definition: NAME}")
    return parse_job_target(value, "target")


def spec_document(spec: ScheduleSpec, enabled: bool = True) -> dict[str, Any]:
    """The spec as a document :func:`parse_schedule` reads back to an equal spec."""
    return {
        "expression": spec.expression,
        "timezone": spec.timezone,
        "start": _iso(spec.start),
        "end": _iso(spec.end),
        "flexible_window_minutes": spec.flexible_window_minutes,
        "overlap": spec.overlap.value,
        "catch_up": spec.catch_up.value,
        "catch_up_limit": spec.catch_up_limit,
        "delete_after_completion": spec.delete_after_completion,
        "description": spec.description,
        "state": "ENABLED" if enabled else "DISABLED",
        "target": job_target_document(spec.target),
    }


def schedule_document(schedule: Schedule) -> dict[str, Any]:
    """What ``describe`` and the API show."""
    return {
        "name": schedule.name,
        **spec_document(schedule.spec, schedule.enabled),
        "next_fire_at": _iso(schedule.next_fire_at),
        "last_fire_at": _iso(schedule.last_fire_at),
        "last_job_id": schedule.last_job_id,
        "fires": schedule.fires,
        "last_error": schedule.last_error,
        "created_at": _iso(schedule.created_at),
        "updated_at": _iso(schedule.updated_at),
    }


def parse_schedule_record(doc: Mapping[str, Any]) -> Schedule:
    """Read back :func:`schedule_document` (what the HTTP client receives)."""
    status_keys = ("next_fire_at", "last_fire_at", "last_job_id", "fires", "last_error")
    spec, enabled = parse_schedule(
        {
            key: value
            for key, value in doc.items()
            if key not in (*status_keys, "created_at", "updated_at")
        }
    )
    return Schedule(
        name=doc["name"],
        spec=spec,
        enabled=enabled,
        created_at=datetime.fromisoformat(doc["created_at"]),
        updated_at=datetime.fromisoformat(doc["updated_at"]),
        next_fire_at=_moment(doc.get("next_fire_at"), "next_fire_at"),
        last_fire_at=_moment(doc.get("last_fire_at"), "last_fire_at"),
        last_job_id=None if doc.get("last_job_id") is None else JobId(doc["last_job_id"]),
        fires=int(doc.get("fires") or 0),
        last_error=doc.get("last_error"),
    )


def merge_schedule_document(current: Schedule, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` over the current document: keys replace, ``target`` merges key by key, and a
    None removes an optional key (back to its default)."""
    if not isinstance(changes, Mapping):
        raise ValidationError("schedule", "must be a mapping")
    doc = spec_document(current.spec, current.enabled)
    for key, value in changes.items():
        if key == "target" and isinstance(value, Mapping):
            merged = {**doc["target"], **value}
            doc["target"] = {k: v for k, v in merged.items() if v is not None}
        else:
            doc[key] = value
    return {key: value for key, value in doc.items() if value is not None or key == "target"}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _moment(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(field, "must be an ISO 8601 date and time") from None
    else:
        raise ValidationError(field, "must be an ISO 8601 date and time")
    if moment.tzinfo is None:
        raise ValidationError(field, "needs a UTC offset, e.g. 2026-12-01T02:00:00Z")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValidationError(field, "is out of range") from None


def _bounded_int(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(field, f"must be an integer from {low} to {high}")
    return value


def _boolean(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, "must be true or false")
    return value


def _optional_string(value: object, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    return value


_E = TypeVar("_E", bound=StrEnum)


def _choice(kind: type[_E], value: object, field: str) -> _E:
    try:
        return kind(str(value))
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValidationError(field, f"must be one of {allowed}") from None
