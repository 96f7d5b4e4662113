"""Rules as a resource: an event pattern, enabled or not, the targets it invokes, and the
invocations it makes.

A rule document::

    name: deploy-on-push
    description: new image, new revision
    state: ENABLED                      # or DISABLED
    max_invocations_per_minute: 1000    # the default; over it, invocations are THROTTLED
    event_pattern: {source: [dockyard.registry], detail: {repository: [team/app]}}
    targets:
      - id: bump                        # unique in the rule; defaults to the kind and position
        kind: register-revision
        definition: app
      - id: build
        kind: submit-job                # the fields of a schedule's target, and:
        definition: build
        input_transformer: {input_paths: {tag: $.detail.tag}, input_template: '{"tag": <tag>}'}
      - id: alarm
        kind: webhook
        url: https://alerts.example.com/hook
        secret_env: ALARM_SECRET        # HMAC-SHA256, as the http executor signs
        retry_policy: {maximum_retry_attempts: 3, maximum_event_age_seconds: 3600}

Each match of an event makes one **invocation** per target. An invocation that fails is tried
again with exponential backoff, as EventBridge retries a target (``retry_policy``: at most 185
retries and 24 hours by default), and then goes to the rule's dead list, from which it can be
retried by hand. A ``submit-job`` target submits with the idempotency key
``rule:<rule>:<target>:<event id>``, so a delivery made twice makes one job.

Two kinds of invocation are recorded, with the reason, but never made: one deeper than the
causation cap (``REFUSED``: a rule that triggers itself) and one over the rule's
``max_invocations_per_minute`` (``THROTTLED``); see :mod:`dockyard.domain.rule_limits`.

The targets, their retry policy and what they do are :mod:`dockyard.domain.rule_targets`;
matching many rules at once is :mod:`dockyard.domain.rule_index`. :func:`spec_document` reads back
through :func:`parse_rule` to an equal spec, which is how rules are stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from dockyard.domain.patterns import EventPattern, InvalidEventPattern, compile_pattern
from dockyard.domain.rule_limits import (
    DEFAULT_MAX_INVOCATIONS_PER_MINUTE,
    check_invocations_per_minute,
)
from dockyard.domain.rule_targets import Target, parse_target, target_document
from dockyard.errors import ValidationError

__all__ = [
    "Invocation",
    "InvocationState",
    "Rule",
    "RuleSpec",
    "invocation_document",
    "parse_invocation_record",
    "parse_rule",
    "parse_rule_record",
    "rule_document",
    "spec_document",
]

MAX_TARGETS = 5
_STATES = {"ENABLED": True, "DISABLED": False}
_RULE_KEYS = frozenset(
    {"name", "description", "state", "event_pattern", "targets", "max_invocations_per_minute"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSpec:
    #: The pattern as JSON text (what was given, in a stable form).
    event_pattern: str
    targets: tuple[Target, ...]
    description: str | None = None
    #: How many invocations (one per target and matching event) the rule makes in a minute.
    max_invocations_per_minute: int = DEFAULT_MAX_INVOCATIONS_PER_MINUTE

    @property
    def pattern(self) -> EventPattern:
        return compile_pattern(self.event_pattern)

    def target(self, target_id: str) -> Target | None:
        return next((t for t in self.targets if t.id == target_id), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    name: str
    spec: RuleSpec
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @property
    def state(self) -> str:
        return "ENABLED" if self.enabled else "DISABLED"


class InvocationState(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    #: Out of retries: on the rule's dead list until retried by hand.
    DEAD = "DEAD"
    #: Not made: the rule was over its ``max_invocations_per_minute``. Never tried again.
    THROTTLED = "THROTTLED"
    #: Not made: deeper than the causation cap (a rule loop). Never tried again.
    REFUSED = "REFUSED"


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    """One delivery of one event to one target of a rule."""

    id: str
    rule: str
    target: str
    event: Mapping[str, Any]
    state: InvocationState
    attempts: int
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None = None
    #: What the target made: a job id, a definition revision, an HTTP status.
    result: str | None = None
    error: str | None = None
    #: The causation depth it acts at: its event's, plus one (a job it submits has this depth).
    depth: int = 1

    @property
    def event_id(self) -> str:
        return str(self.event["id"])


# -- documents -------------------------------------------------------------------------------


def parse_rule(doc: object) -> tuple[RuleSpec, bool]:
    """Validate a rule document; return its spec and whether it is enabled."""
    if not isinstance(doc, Mapping):
        raise ValidationError("rule", "must be a mapping")
    for key in doc:
        if key not in _RULE_KEYS:
            raise ValidationError(str(key), "is not a field of a rule")
    if "event_pattern" not in doc:
        raise ValidationError("event_pattern", "is required (EventBridge pattern syntax)")
    pattern = doc["event_pattern"]
    if not isinstance(pattern, str | Mapping):
        raise ValidationError("event_pattern", "must be a JSON object (or its text)")
    try:
        compiled = compile_pattern(pattern if isinstance(pattern, str) else dict(pattern))
    except InvalidEventPattern as error:
        raise ValidationError("event_pattern", error.message) from None
    state = doc.get("state", "ENABLED")
    if state not in _STATES:
        raise ValidationError("state", "must be ENABLED or DISABLED")
    targets = doc.get("targets", [])
    if not isinstance(targets, list) or len(targets) > MAX_TARGETS:
        raise ValidationError("targets", f"must be a list of at most {MAX_TARGETS} targets")
    parsed = tuple(parse_target(value, index) for index, value in enumerate(targets))
    ids = [target.id for target in parsed]
    for index, target_id in enumerate(ids):
        if target_id in ids[:index]:
            raise ValidationError(f"targets[{index}].id", f"{target_id!r} is used twice")
    description = doc.get("description")
    if description is not None and not isinstance(description, str):
        raise ValidationError("description", "must be a string")
    spec = RuleSpec(
        event_pattern=compiled.source,
        targets=parsed,
        description=description,
        max_invocations_per_minute=check_invocations_per_minute(
            doc.get("max_invocations_per_minute", DEFAULT_MAX_INVOCATIONS_PER_MINUTE)
        ),
    )
    return spec, _STATES[state]


def spec_document(spec: RuleSpec, enabled: bool = True) -> dict[str, Any]:
    """The spec as a document :func:`parse_rule` reads back to an equal spec."""
    return {
        "description": spec.description,
        "state": "ENABLED" if enabled else "DISABLED",
        "event_pattern": json.loads(spec.event_pattern),
        "targets": [target_document(target) for target in spec.targets],
        "max_invocations_per_minute": spec.max_invocations_per_minute,
    }


def rule_document(rule: Rule) -> dict[str, Any]:
    """What ``describe`` and the API show."""
    return {
        "name": rule.name,
        **spec_document(rule.spec, rule.enabled),
        "created_at": rule.created_at.isoformat(),
        "updated_at": rule.updated_at.isoformat(),
    }


def parse_rule_record(doc: Mapping[str, Any]) -> Rule:
    """Read back :func:`rule_document` (what the HTTP client receives)."""
    spec, enabled = parse_rule(
        {key: value for key, value in doc.items() if key not in ("created_at", "updated_at")}
    )
    return Rule(
        name=doc["name"],
        spec=spec,
        enabled=enabled,
        created_at=datetime.fromisoformat(doc["created_at"]),
        updated_at=datetime.fromisoformat(doc["updated_at"]),
    )


def invocation_document(invocation: Invocation) -> dict[str, Any]:
    return {
        "id": invocation.id,
        "rule": invocation.rule,
        "target": invocation.target,
        "event_id": invocation.event_id,
        "event": dict(invocation.event),
        "state": invocation.state.value,
        "attempts": invocation.attempts,
        "next_attempt_at": None
        if invocation.next_attempt_at is None
        else invocation.next_attempt_at.isoformat(),
        "result": invocation.result,
        "error": invocation.error,
        "depth": invocation.depth,
        "created_at": invocation.created_at.isoformat(),
        "updated_at": invocation.updated_at.isoformat(),
    }


def parse_invocation_record(doc: Mapping[str, Any]) -> Invocation:
    """Read back :func:`invocation_document`."""
    moment = doc.get("next_attempt_at")
    return Invocation(
        id=doc["id"],
        rule=doc["rule"],
        target=doc["target"],
        event=doc["event"],
        state=InvocationState(doc["state"]),
        attempts=int(doc["attempts"]),
        next_attempt_at=None if moment is None else datetime.fromisoformat(moment),
        result=doc.get("result"),
        error=doc.get("error"),
        depth=int(doc.get("depth", 1)),
        created_at=datetime.fromisoformat(doc["created_at"]),
        updated_at=datetime.fromisoformat(doc["updated_at"]),
    )
