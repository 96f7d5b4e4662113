"""The job a schedule's fire or a rule's ``submit-job`` target submits.

Both resources name a definition and the fields of ``dockyard submit`` that override it; one
parser checks them, with the same messages, so a target valid in a schedule is valid in a rule.
:func:`job_target_document` and :func:`parse_job_target` round-trip: the document reads back to
an equal target, which is how targets are stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.domain.definitions import (
    check_attempts,
    check_name,
    check_queue,
    check_timeout,
    parse_environment,
)
from dockyard.domain.fields import check_depth, parse_command, string_map
from dockyard.domain.records import JSON
from dockyard.errors import ValidationError

__all__ = ["ScheduleTarget", "job_target_document", "parse_job_target"]

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


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleTarget:
    """The job a schedule's fire or a rule's target submits (the fields of ``dockyard submit``)."""

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
        group=None if group is None else _string(group, f"{where}.group"),
        priority=priority,
        payload=check_depth(value.get("payload"), f"{where}.payload"),
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


def _string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    return value
