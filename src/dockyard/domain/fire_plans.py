"""What a schedule's fires do: which fire times are due, and the job each one submits.

Each fire submits its job with the idempotency key ``schedule:<name>:<fire time>``, so that a
fire made twice (two schedulers during a failover, a scheduler that died between the submit and
moving ``next_fire_at``) makes one job.

In the payload (and the command), the strings ``<aws.scheduler.scheduled-time>`` and
``<aws.scheduler.schedule-arn>`` are replaced by the fire time (ISO 8601, UTC) and
``dockyard:schedule/<name>``: the context attributes of EventBridge Scheduler.

Fire times are whole seconds in UTC and never past the schedule's ``end``; nothing here reads a
clock (``now`` is given), so the scheduler and the tests decide what time it is.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dockyard.domain.fire_times import fire_times
from dockyard.domain.jobs import SubmitRequest
from dockyard.domain.schedules import AtExpression, RateExpression, parse_timezone
from dockyard.domain.scheduling import CatchUp, Overlap, Schedule, ScheduleSpec

__all__ = [
    "SCHEDULED_TIME",
    "SCHEDULE_ARN",
    "FirePlan",
    "fire_request",
    "first_fire",
    "idempotency_key",
    "plan_fires",
]

SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
SCHEDULE_ARN = "<aws.scheduler.schedule-arn>"


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
