"""The targets a rule invokes, their retry policy, and what each kind of target does.

Three kinds: ``submit-job`` (the fields of a schedule's target, and an input transformer),
``register-revision`` (a new revision of a docker definition with the pushed image) and
``webhook`` (a signed POST). A target that fails is tried again with exponential backoff and
jitter, as EventBridge retries one (:class:`RetryPolicy`: at most 185 retries and 24 hours by
default), and then goes to the rule's dead list.

What a target does is decided here and carried out by the rules engine: a ``submit-job`` target
submits with the idempotency key ``rule:<rule>:<target>:<event id>``, so a delivery made twice
makes one job. :func:`target_document` reads back through :func:`parse_target` to an equal
target.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dockyard.domain.fields import check_credential_name, check_header_names
from dockyard.domain.job_targets import ScheduleTarget, job_target_document, parse_job_target
from dockyard.domain.jobs import SubmitRequest
from dockyard.domain.registry import pushed_image
from dockyard.domain.transform import InputTransformer, parse_input_transformer, transform
from dockyard.errors import ValidationError

__all__ = [
    "RegisterRevisionTarget",
    "RetryPolicy",
    "SubmitJobTarget",
    "Target",
    "WebhookTarget",
    "job_request",
    "parse_target",
    "revision_document",
    "target_document",
]

_TARGET_ID = re.compile(r"[\w.-]{1,64}")
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


# -- documents -------------------------------------------------------------------------------


def parse_target(value: object, index: int) -> Target:
    """Validate the ``index``-th target of a rule document; errors name ``targets[index]``."""
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
        if secret_env is not None:
            secret_env = check_credential_name(secret_env, f"{where}.secret_env")
        headers = value.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ValidationError(f"{where}.headers", "must map header names to strings")
        check_header_names(headers, f"{where}.headers")
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


def target_document(target: Target) -> dict[str, Any]:
    """The target as a document :func:`parse_target` reads back to an equal target."""
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
