"""Schedules as a resource: the document users write, the record stored, and what a fire does.

A schedule names an expression (:mod:`dockyard.domain.schedules`), a time zone, an optional start
and end, a flexible window, an overlap policy, a catch-up policy, and a target: a job of a
definition with overrides and a payload. It keeps ``next_fire_at``, the next fire time not yet
fired; the scheduler fires it and moves it on (:func:`plan_fires`).

Each fire submits its job with the idempotency key ``schedule:<name>:<fire time>``, so that a
fire made twice (two schedulers during a failover, a scheduler that died between the submit and
moving ``next_fire_at``) makes one job.

In the payload (and the command), the strings ``<aws.scheduler.scheduled-time>`` and
``<aws.scheduler.schedule-arn>`` are replaced by the fire time (ISO 8601, UTC) and
``dockyard:schedule/<name>``: the context attributes of EventBridge Scheduler.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from dockyard.domain.definitions import (
    check_attempts,
    check_name,
    check_queue,
    check_timeout,
    parse_command,
    parse_environment,
    string_map,
)
from dockyard.domain.jobs import SubmitRequest
from dockyard.domain.records import JSON, JobId
from dockyard.domain.schedules import (
    AtExpression,
    Expression,
    RateExpression,
    fire_times,
    parse_expression,
    parse_timezone,
)
from dockyard.errors import ValidationError

__all__ = [
    "CatchUp",
    "FirePlan",
    "Overlap",
    "Schedule",
    "ScheduleSpec",
    "ScheduleTarget",
    "fire_request",
    "first_fire",
    "idempotency_key",
    "job_target_document",
    "merge_schedule_document",
    "parse_job_target",
    "parse_schedule",
    "parse_schedule_record",
    "plan_fires",
    "schedule_document",
    "spec_document",
]

MAX_FLEXIBLE_WINDOW_MINUTES = 1440
MAX_CATCH_UP_LIMIT = 1000
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
SCHEDULE_ARN = "<aws.scheduler.schedule-arn>"


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
class ScheduleTarget:
    """The job each fire submits (the fields of ``dockyard submit``)."""

    definition: str
    name: str | None = None
    queue: str | None = None
    group: str | None = None
    priority: int = 0
    payload: JSON = None
    command: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float | None = None
    attempts: int | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)


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
_TARGET_KEYS = frozenset(
    {
        "definition",
        "name",
        "queue",
        "group",
        "priority",
        "payload",
        "command",
        "environment",
        "timeout",
        "attempts",
        "parameters",
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


def parse_job_target(
    value: object, where: str, also: frozenset[str] = frozenset()
) -> ScheduleTarget:
    """The job a schedule's fire or a rule's target submits (``also``: the caller's own keys)."""
    if not isinstance(value, Mapping):
        raise ValidationError(where, "must be a mapping")
    for key in value:
        if key not in _TARGET_KEYS and key not in also:
            raise ValidationError(f"{where}.{key}", "is not a field of a job target")
    definition = value.get("definition")
    if not isinstance(definition, str) or not definition:
        raise ValidationError(f"{where}.definition", "is required: a definition NAME or NAME:REV")
    priority = value.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or not -1000 <= priority <= 1000:
        raise ValidationError(f"{where}.priority", "must be an integer from -1000 to 1000")
    command = value.get("command")
    timeout = value.get("timeout")
    attempts = value.get("attempts")
    name, queue, group = (value.get(key) for key in ("name", "queue", "group"))
    return ScheduleTarget(
        definition=definition,
        name=None if name is None else check_name(name, f"{where}.name"),
        queue=None if queue is None else check_queue(queue, f"{where}.queue"),
        group=None if group is None else _optional_string(group, f"{where}.group"),
        priority=priority,
        payload=value.get("payload"),
        command=None if command is None else parse_command(command, f"{where}.command"),
        environment=parse_environment(value.get("environment") or {}, f"{where}.environment"),
        timeout_seconds=None if timeout is None else check_timeout(timeout, f"{where}.timeout"),
        attempts=None if attempts is None else check_attempts(attempts, f"{where}.attempts"),
        parameters=string_map(value.get("parameters") or {}, f"{where}.parameters"),
    )


def job_target_document(target: ScheduleTarget) -> dict[str, Any]:
    """The target as a document :func:`parse_job_target` reads back to an equal target."""
    return {
        "definition": target.definition,
        "name": target.name,
        "queue": target.queue,
        "group": target.group,
        "priority": target.priority,
        "payload": target.payload,
        "command": None if target.command is None else list(target.command),
        "environment": dict(target.environment),
        "timeout": target.timeout_seconds,
        "attempts": target.attempts,
        "parameters": dict(target.parameters),
    }


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


# -- fires -----------------------------------------------------------------------------------


def first_fire(spec: ScheduleSpec, *, now: datetime, anchor: datetime) -> datetime | None:
    """The first fire time of a new (or resumed, or changed) schedule: the first after ``now``
    within start and end; a ``rate`` without a start fires at ``anchor`` (its creation) first."""
    expression = spec.parsed
    zone = parse_timezone(spec.timezone)
    if isinstance(expression, RateExpression):
        rate_anchor = _whole_second(spec.start or anchor)
        after = max(_whole_second(now), rate_anchor) - timedelta(microseconds=1)
        times = fire_times(expression, zone=zone, after=after, anchor=rate_anchor)
    else:
        after = now
        if spec.start is not None and not isinstance(expression, AtExpression):
            after = max(after, spec.start - timedelta(microseconds=1))
        times = fire_times(expression, zone=zone, after=after)
    moment = next(times, None)
    return _within_end(spec, moment)


def _whole_second(moment: datetime) -> datetime:
    """Fire times are whole seconds (a rate counts from its start or creation, truncated)."""
    return moment.replace(microsecond=0)


def _within_end(spec: ScheduleSpec, moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if spec.end is not None and moment > spec.end:
        return None
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class FirePlan:
    #: The fire times to submit a job for, oldest first.
    fires: tuple[datetime, ...]
    #: Fire times that were due but are skipped (missed under the catch-up policy).
    missed: int
    #: The next fire time after this round; None when the schedule has no fire left.
    next_fire_at: datetime | None


def plan_fires(
    schedule: Schedule, *, now: datetime, grace: timedelta, anchor: datetime | None = None
) -> FirePlan:
    """Which fire times of ``schedule`` are due at ``now`` and what comes next.

    A fire is on time within ``grace`` of its time; older due fires were missed (no scheduler
    ran) and the catch-up policy decides: ``none`` skips them, ``latest`` runs the newest one
    when no fire is on time, ``all`` runs up to ``catch_up_limit`` of the newest.
    """
    due_at = schedule.next_fire_at
    if due_at is None or due_at > now:
        return FirePlan((), 0, due_at)
    spec = schedule.spec
    expression = spec.parsed
    zone = parse_timezone(spec.timezone)
    rate_anchor = _whole_second(spec.start or anchor or schedule.created_at)
    later = fire_times(expression, zone=zone, after=due_at, anchor=rate_anchor)
    on_time: list[datetime] = []
    missed: deque[datetime] = deque(maxlen=spec.catch_up_limit)
    missed_count = 0
    moment: datetime | None = due_at
    while moment is not None and moment <= now:
        if spec.end is not None and moment > spec.end:
            moment = None
            break
        if now - moment <= grace:
            on_time.append(moment.astimezone(UTC))
        else:
            missed.append(moment.astimezone(UTC))
            missed_count += 1
        moment = next(later, None)
    next_fire_at = _within_end(spec, moment)
    fires: list[datetime] = []
    if spec.catch_up is CatchUp.ALL:
        fires.extend(missed)
    elif spec.catch_up is CatchUp.LATEST and missed and not on_time:
        fires.append(missed[-1])
    fires.extend(on_time)
    skipped = missed_count + len(on_time) - len(fires)
    return FirePlan(tuple(fires), skipped, next_fire_at)


def idempotency_key(name: str, fire_time: datetime) -> str:
    return f"schedule:{name}:{fire_time.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def fire_request(
    schedule: Schedule, fire_time: datetime, *, rng: random.Random | None = None
) -> SubmitRequest:
    """The job one fire submits: the target, keyed by schedule and fire time, its placeholders
    filled, delayed by a random moment within the flexible window."""
    spec = schedule.spec
    target = spec.target
    values = {
        SCHEDULED_TIME: fire_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        SCHEDULE_ARN: f"dockyard:schedule/{schedule.name}",
    }
    not_before = fire_time
    if spec.flexible_window_minutes:
        jitter = (rng or random.Random()).uniform(0, spec.flexible_window_minutes * 60)
        not_before = fire_time + timedelta(seconds=jitter)
    group = target.group
    if spec.overlap is Overlap.QUEUE and group is None:
        group = f"schedule:{schedule.name}"
    return SubmitRequest(
        definition=target.definition,
        name=target.name,
        queue=target.queue,
        group=group,
        idempotency_key=idempotency_key(schedule.name, fire_time),
        priority=target.priority,
        payload=_fill(target.payload, values),
        command=None if target.command is None else tuple(_fill(list(target.command), values)),
        environment=target.environment,
        timeout_seconds=target.timeout_seconds,
        attempts=target.attempts,
        parameters=target.parameters,
        not_before=not_before,
    )


def _fill(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for placeholder, text in values.items():
            value = value.replace(placeholder, text)
        return value
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    return value
