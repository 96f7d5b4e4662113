"""Rules as a resource: an event pattern, enabled or not, and the targets it invokes.

A rule document::

    name: deploy-on-push
    description: new image, new revision
    state: ENABLED                      # or DISABLED
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
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from dockyard.domain.jobs import SubmitRequest
from dockyard.domain.patterns import EventPattern, InvalidEventPattern, compile_pattern
from dockyard.domain.registry import pushed_image
from dockyard.domain.scheduling import ScheduleTarget, job_target_document, parse_job_target
from dockyard.domain.transform import InputTransformer, parse_input_transformer, transform
from dockyard.errors import ValidationError

__all__ = [
    "Invocation",
    "InvocationState",
    "RegisterRevisionTarget",
    "RetryPolicy",
    "Rule",
    "RuleIndex",
    "RuleSpec",
    "SubmitJobTarget",
    "Target",
    "WebhookTarget",
    "invocation_document",
    "job_request",
    "parse_invocation_record",
    "parse_rule",
    "parse_rule_record",
    "revision_document",
    "rule_document",
    "spec_document",
]

MAX_TARGETS = 5
_TARGET_ID = re.compile(r"[\w.-]{1,64}")
_STATES = {"ENABLED": True, "DISABLED": False}
_RULE_KEYS = frozenset({"name", "description", "state", "event_pattern", "targets"})
_COMMON_TARGET_KEYS = frozenset({"id", "kind", "retry_policy"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """EventBridge's ``RetryPolicy`` of a target."""

    maximum_retry_attempts: int = 185
    maximum_event_age_seconds: int = 86400
    #: The first retry's delay; each next one doubles, up to :attr:`MAX_DELAY`, with jitter.
    base_delay_seconds: float = 1.0

    MAX_DELAY = 300.0

    def next_attempt(
        self, attempts: int, first_at: datetime, now: datetime, rng: random.Random
    ) -> datetime | None:
        """When to try again after ``attempts`` failed tries, or None: the dead list."""
        if attempts > self.maximum_retry_attempts:
            return None
        delay = min(self.base_delay_seconds * 2 ** (attempts - 1), self.MAX_DELAY)
        moment = now + timedelta(seconds=delay * rng.uniform(0.5, 1.0))
        if moment - first_at > timedelta(seconds=self.maximum_event_age_seconds):
            return None
        return moment


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitJobTarget:
    id: str
    job: ScheduleTarget
    #: Builds the payload from the event; without one (and no payload) the event is the payload.
    input_transformer: InputTransformer | None = None
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    kind: str = "submit-job"


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterRevisionTarget:
    """A new revision of ``definition``: its latest, with the pushed image."""

    id: str
    definition: str
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    kind: str = "register-revision"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookTarget:
    """POST the event to ``url``, signed with the secret in ``secret_env`` when there is one."""

    id: str
    url: str
    secret_env: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 10.0
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    kind: str = "webhook"


Target = SubmitJobTarget | RegisterRevisionTarget | WebhookTarget


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSpec:
    #: The pattern as JSON text (what was given, in a stable form).
    event_pattern: str
    targets: tuple[Target, ...]
    description: str | None = None

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
    parsed = tuple(_parse_target(value, index) for index, value in enumerate(targets))
    ids = [target.id for target in parsed]
    for index, target_id in enumerate(ids):
        if target_id in ids[:index]:
            raise ValidationError(f"targets[{index}].id", f"{target_id!r} is used twice")
    description = doc.get("description")
    if description is not None and not isinstance(description, str):
        raise ValidationError("description", "must be a string")
    spec = RuleSpec(event_pattern=compiled.source, targets=parsed, description=description)
    return spec, _STATES[state]


def _parse_target(value: object, index: int) -> Target:
    where = f"targets[{index}]"
    if not isinstance(value, Mapping):
        raise ValidationError(where, "must be a mapping")
    kind = value.get("kind")
    target_id = value.get("id", f"{kind}-{index + 1}")
    if not isinstance(target_id, str) or not _TARGET_ID.fullmatch(target_id):
        raise ValidationError(f"{where}.id", "must be 1-64 letters, digits, '.', '-' or '_'")
    retry = _parse_retry(value.get("retry_policy", {}), f"{where}.retry_policy")
    if kind == "submit-job":
        job = parse_job_target(
            {k: v for k, v in value.items() if k not in _COMMON_TARGET_KEYS},
            where,
            also=frozenset({"input_transformer"}),
        )
        transformer = value.get("input_transformer")
        if transformer is not None and job.payload is not None:
            raise ValidationError(
                f"{where}.input_transformer", "a target has a payload or a transformer, not both"
            )
        return SubmitJobTarget(
            id=target_id,
            job=job,
            input_transformer=None
            if transformer is None
            else parse_input_transformer(transformer, f"{where}.input_transformer"),
            retry_policy=retry,
        )
    if kind == "register-revision":
        _only(value, {"definition"}, where)
        definition = value.get("definition")
        if not isinstance(definition, str) or not definition:
            raise ValidationError(f"{where}.definition", "is required: the definition's NAME")
        return RegisterRevisionTarget(id=target_id, definition=definition, retry_policy=retry)
    if kind == "webhook":
        _only(value, {"url", "secret_env", "headers", "timeout"}, where)
        url = value.get("url")
        if not isinstance(url, str) or not re.match(r"https?://[^/\s]+", url):
            raise ValidationError(f"{where}.url", "is required: an http:// or https:// URL")
        secret_env = value.get("secret_env")
        if secret_env is not None and (
            not isinstance(secret_env, str)
            or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", secret_env)
        ):
            raise ValidationError(f"{where}.secret_env", "must be an environment variable's name")
        headers = value.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ValidationError(f"{where}.headers", "must map header names to strings")
        timeout = value.get("timeout", 10.0)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= 300
        ):
            raise ValidationError(f"{where}.timeout", "must be a number of seconds from 0 to 300")
        return WebhookTarget(
            id=target_id,
            url=url,
            secret_env=secret_env,
            headers=dict(headers),
            timeout_seconds=float(timeout),
            retry_policy=retry,
        )
    raise ValidationError(f"{where}.kind", "must be submit-job, register-revision or webhook")


def _only(value: Mapping[str, Any], keys: set[str], where: str) -> None:
    for key in value:
        if key not in keys and key not in _COMMON_TARGET_KEYS:
            raise ValidationError(f"{where}.{key}", f"is not a field of a {value['kind']} target")


def _parse_retry(value: object, where: str) -> RetryPolicy:
    if not isinstance(value, Mapping):
        raise ValidationError(where, "must be a mapping")
    known = {"maximum_retry_attempts", "maximum_event_age_seconds", "base_delay_seconds"}
    for key in value:
        if key not in known:
            raise ValidationError(f"{where}.{key}", "is not a field of a retry policy")
    attempts = value.get("maximum_retry_attempts", 185)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 0 <= attempts <= 185:
        raise ValidationError(f"{where}.maximum_retry_attempts", "must be an integer from 0 to 185")
    age = value.get("maximum_event_age_seconds", 86400)
    if isinstance(age, bool) or not isinstance(age, int) or not 60 <= age <= 86400:
        raise ValidationError(
            f"{where}.maximum_event_age_seconds", "must be an integer from 60 to 86400"
        )
    base = value.get("base_delay_seconds", 1.0)
    if isinstance(base, bool) or not isinstance(base, int | float) or not 0 <= base <= 300:
        raise ValidationError(f"{where}.base_delay_seconds", "must be a number from 0 to 300")
    return RetryPolicy(
        maximum_retry_attempts=attempts, maximum_event_age_seconds=age, base_delay_seconds=base
    )


def _retry_document(policy: RetryPolicy) -> dict[str, Any]:
    return {
        "maximum_retry_attempts": policy.maximum_retry_attempts,
        "maximum_event_age_seconds": policy.maximum_event_age_seconds,
        "base_delay_seconds": policy.base_delay_seconds,
    }


def _target_document(target: Target) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": target.id, "kind": target.kind}
    if isinstance(target, SubmitJobTarget):
        doc.update(job_target_document(target.job))
        if target.input_transformer is not None:
            doc["input_transformer"] = {
                "input_paths": dict(target.input_transformer.input_paths),
                "input_template": target.input_transformer.template,
            }
    elif isinstance(target, RegisterRevisionTarget):
        doc["definition"] = target.definition
    else:
        doc.update(
            url=target.url,
            secret_env=target.secret_env,
            headers=dict(target.headers),
            timeout=target.timeout_seconds,
        )
    doc["retry_policy"] = _retry_document(target.retry_policy)
    return doc


def spec_document(spec: RuleSpec, enabled: bool = True) -> dict[str, Any]:
    """The spec as a document :func:`parse_rule` reads back to an equal spec."""
    return {
        "description": spec.description,
        "state": "ENABLED" if enabled else "DISABLED",
        "event_pattern": json.loads(spec.event_pattern),
        "targets": [_target_document(target) for target in spec.targets],
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
        created_at=datetime.fromisoformat(doc["created_at"]),
        updated_at=datetime.fromisoformat(doc["updated_at"]),
    )


# -- matching many rules ----------------------------------------------------------------------


class RuleIndex:
    """Rules indexed by the exact sources their patterns require, for matching many at once.

    Most patterns name their ``source`` with exact values; an event is then tried only against
    the patterns of its own source and those that name none (or name it otherwise: a prefix, an
    ``anything-but``). With 1,000 rules over 50 sources, that is ~20 patterns per event instead
    of 1,000 (``python -m bench.rules``).
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        anywhere: list[Rule] = []
        by_source: dict[str, list[Rule]] = {}
        for rule in self.rules:
            sources = _exact_sources(rule.spec.event_pattern)
            if sources is None:
                anywhere.append(rule)
            for source in sources or ():
                by_source.setdefault(source, []).append(rule)
        self._anywhere = tuple(anywhere)
        order = {id(rule): index for index, rule in enumerate(self.rules)}
        #: Per source, its rules and those of any source, in the order they were given.
        self._by_source = {
            source: tuple(sorted((*anywhere, *own), key=lambda rule: order[id(rule)]))
            for source, own in by_source.items()
        }

    def matching(self, event: Mapping[str, Any]) -> list[Rule]:
        """The rules whose pattern ``event`` matches, in the order they were given."""
        source = event.get("source")
        if isinstance(source, str):
            candidates = self._by_source.get(source, self._anywhere)
        else:
            candidates = self.rules
        return [rule for rule in candidates if rule.spec.pattern.matches(event)]


@functools.lru_cache(maxsize=4096)
def _exact_sources(pattern_text: str) -> frozenset[str] | None:
    """The only sources a pattern can match, when it names them as exact strings; else None."""
    pattern = json.loads(pattern_text)
    values = pattern.get("source") if isinstance(pattern, dict) else None
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        return frozenset(values)
    return None


# -- what targets do -------------------------------------------------------------------------


def job_request(
    rule: str, target: SubmitJobTarget, event: Mapping[str, Any], *, ingestion_time: str
) -> SubmitRequest:
    """The job a ``submit-job`` target submits for ``event``, keyed by rule, target and event."""
    job = target.job
    if target.input_transformer is not None:
        payload = transform(
            target.input_transformer, event, rule_name=rule, ingestion_time=ingestion_time
        )
    elif job.payload is not None:
        payload = job.payload
    else:
        payload = dict(event)
    return SubmitRequest(
        definition=job.definition,
        name=job.name,
        queue=job.queue,
        group=job.group,
        idempotency_key=f"rule:{rule}:{target.id}:{event['id']}",
        priority=job.priority,
        payload=payload,
        command=job.command,
        environment=job.environment,
        timeout_seconds=job.timeout_seconds,
        attempts=job.attempts,
        parameters=job.parameters,
    )


def revision_document(latest: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """The latest revision's document with the image ``event`` announces, all else kept."""
    if latest.get("executor") != "docker":
        raise ValidationError(
            "definition", f"{latest.get('name')} runs {latest.get('executor')}, not docker"
        )
    return {**latest, "image": pushed_image(event)}
