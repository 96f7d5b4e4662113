"""Pydantic models of the event and rule routes (``/v1/events``, ``/v1/rules``), at the HTTP
edge only: the domain validates the documents themselves (``domain/rules.py``,
``domain/events.py``) and these models describe them in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from dockyard.api.schemas import _refuse_null, _Strict
from dockyard.domain.fields import DEPTH_RULE, MAX_DEPTH, text_nesting
from dockyard.domain.patterns import MAX_PATTERN_CHARACTERS
from dockyard.domain.rule_limits import (
    DEFAULT_MAX_INVOCATIONS_PER_MINUTE,
    MAX_INVOCATIONS_PER_MINUTE,
)

__all__ = [
    "EventOut",
    "InvocationOut",
    "PatternTestIn",
    "PatternTestOut",
    "PutEventsEntryOut",
    "PutEventsOut",
    "RegistryNotificationOut",
    "RetryIn",
    "RetryOut",
    "RuleIn",
    "RuleOut",
    "RulePatch",
]


PATTERN_DESCRIPTION = (
    "An EventBridge event pattern, as an object or as its JSON text, e.g."
    ' {"source": ["dockyard.registry"], "detail": {"repository": ["team/app"]}};'
    f" at most {MAX_PATTERN_CHARACTERS:,} characters (text as written, an object as compact"
    " JSON), EventBridge's own limit"
)
TARGETS_DESCRIPTION = (
    "Up to 5 targets, each invoked once per matching event. Every target has an optional `id`"
    " (unique in the rule), a `kind` and an optional `retry_policy` {maximum_retry_attempts"
    " 0-185, maximum_event_age_seconds 60-86400, base_delay_seconds}. `submit-job`: the fields"
    " of a schedule's target (definition, queue, payload, …) and an optional `input_transformer`"
    " {input_paths, input_template}; `register-revision`: `definition`, which gets a new revision"
    " with the pushed image; `webhook`: `url`, `secret_env`, `headers`, `timeout` (seconds)."
)

RATE_DESCRIPTION = (
    "How many invocations (one per target and matching event) the rule makes in a minute, 1 to"
    f" {MAX_INVOCATIONS_PER_MINUTE:,}; over it an invocation is not made but recorded THROTTLED"
    " in the rule's history"
)


def _object_or_text(value: object) -> object:
    """Checked before the union ``dict | str``, so that a mistake names the field itself rather
    than the field and each member of the union. None is left for the null check. Text is
    measured before anything parses it: the body's own nesting limit does not see into strings."""
    if value is not None and not isinstance(value, dict | str):
        raise ValueError("must be a JSON object or its text")
    if isinstance(value, str) and text_nesting(value) > MAX_DEPTH:
        raise ValueError(DEPTH_RULE)
    return value


class PutEventsEntryOut(BaseModel):
    event_id: str = Field(description="The id in the event's envelope")


class PutEventsOut(BaseModel):
    entries: list[PutEventsEntryOut] = Field(description="One per entry put, in the same order")
    failed_entry_count: int = Field(
        description="Always 0: a request with a bad entry is refused whole (422)"
    )


class EventOut(BaseModel):
    seq: int = Field(description="The event's place in arrival order on this store")
    received_at: str
    event: dict[str, Any] = Field(
        description="The envelope: version, id, detail-type, source, account, time, region,"
        " resources, detail"
    )


class RegistryNotificationOut(BaseModel):
    events: list[dict[str, Any]] = Field(
        description="The `Image Pushed` events made (envelopes), one per tagged manifest push;"
        " empty when the notification held only pulls, deletes or layer pushes"
    )


class RuleIn(_Strict):
    """A rule document, as in ``dockyard rules create -f`` (see the README)."""

    name: str
    description: str | None = None
    state: str = Field(default="ENABLED", description="ENABLED or DISABLED")
    event_pattern: dict[str, Any] | str = Field(description=PATTERN_DESCRIPTION)
    targets: list[dict[str, Any]] = Field(default_factory=list, description=TARGETS_DESCRIPTION)
    max_invocations_per_minute: int = Field(
        default=DEFAULT_MAX_INVOCATIONS_PER_MINUTE, description=RATE_DESCRIPTION
    )

    _object_or_text = field_validator("event_pattern", mode="before")(_object_or_text)


class RulePatch(_Strict):
    """Fields to change; the others keep their values. ``targets`` is replaced whole, and
    ``description`` alone may be null (none); the other fields have no default to go back to."""

    name: str | SkipJsonSchema[None] = Field(
        default=None, description="If given, the rule's own name"
    )
    description: str | None = None
    state: str | SkipJsonSchema[None] = Field(default=None, description="ENABLED or DISABLED")
    event_pattern: dict[str, Any] | str | SkipJsonSchema[None] = Field(
        default=None, description=PATTERN_DESCRIPTION
    )
    targets: list[dict[str, Any]] | SkipJsonSchema[None] = Field(
        default=None, description=TARGETS_DESCRIPTION
    )
    max_invocations_per_minute: int | SkipJsonSchema[None] = Field(
        default=None, description=RATE_DESCRIPTION
    )

    _not_null = field_validator(
        "name", "state", "event_pattern", "targets", "max_invocations_per_minute"
    )(_refuse_null)
    _object_or_text = field_validator("event_pattern", mode="before")(_object_or_text)


class RuleOut(BaseModel):
    name: str
    description: str | None
    state: str = Field(description="ENABLED or DISABLED")
    event_pattern: dict[str, Any] = Field(description="The pattern, as an object")
    targets: list[dict[str, Any]] = Field(
        description="Each target with every field, defaults filled in: id, kind, the kind's"
        " fields and retry_policy"
    )
    max_invocations_per_minute: int = Field(description=RATE_DESCRIPTION)
    created_at: str
    updated_at: str


class InvocationOut(BaseModel):
    """One delivery of one event to one target of a rule."""

    id: str
    rule: str
    target: str = Field(description="The target's id")
    event_id: str
    event: dict[str, Any] = Field(description="The event's envelope")
    state: str = Field(
        description="PENDING, DELIVERED or DEAD (on the rule's dead list); or, never made:"
        " THROTTLED (over the rule's max_invocations_per_minute) or REFUSED (deeper than the"
        " causation cap: a rule loop)"
    )
    attempts: int = Field(description="Tries made")
    next_attempt_at: str | None = Field(description="When a PENDING invocation is tried next")
    result: str | None = Field(description="What the target made: a job, a revision, a status")
    error: str | None = Field(description="Why the last try failed, or why it was not made")
    depth: int = Field(
        description="The causation depth it acts at: its event's plus one (an event put by a"
        " user, and a job's state change when no rule submitted the job, have depth 0; a job a"
        " rule submits has the invocation's depth)"
    )
    created_at: str
    updated_at: str


class RetryIn(_Strict):
    ids: list[str] | None = Field(
        default=None, description="Invocations to retry; without: the rule's whole dead list"
    )


class RetryOut(BaseModel):
    retried: int = Field(description="Dead invocations made PENDING again")


class PatternTestIn(_Strict):
    pattern: dict[str, Any] | str = Field(description=PATTERN_DESCRIPTION)
    event: dict[str, Any] | str = Field(description="An event envelope, as an object or JSON text")

    _object_or_text = field_validator("pattern", "event", mode="before")(_object_or_text)


class PatternTestOut(BaseModel):
    result: bool = Field(description="Whether the event matches the pattern (TestEventPattern)")
