"""Submitting jobs: validate a request against its definition, and work out what an attempt runs."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from dockyard.domain.definitions import (
    check_attempts,
    check_name,
    check_queue,
    check_timeout,
    parse_environment,
)
from dockyard.domain.fields import check_depth, check_text_depth, parse_command
from dockyard.domain.records import (
    JSON,
    Definition,
    DefinitionSpec,
    DockerSpec,
    Job,
    JobId,
    NewJob,
    Overrides,
    ProcessSpec,
)
from dockyard.domain.staging import check_placeholders
from dockyard.domain.states import DefinitionStatus
from dockyard.errors import ConflictError, ValidationError

__all__ = ["SubmitRequest", "effective_spec", "new_job", "new_job_id", "parse_payload"]

MAX_KEY_LENGTH = 128
MAX_PAYLOAD_BYTES = 256 * 1024  # SQS's message cap: payloads are for parameters, not data.


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitRequest:
    """What a caller asks for; every field but ``definition`` is optional."""

    definition: str
    name: str | None = None
    queue: str | None = None
    group: str | None = None
    idempotency_key: str | None = None
    priority: int = 0
    payload: JSON = None
    command: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float | None = None
    attempts: int | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    not_before: datetime | None = None


def parse_payload(text: str) -> JSON:
    """Parse a payload given as JSON text, naming the field when it is not JSON."""
    try:
        payload: JSON = json.loads(check_text_depth(text, "payload"))
    except json.JSONDecodeError as error:
        raise ValidationError(
            "payload", f"must be valid JSON ({error.msg} at position {error.pos})"
        ) from None
    return payload


def _check_key(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_KEY_LENGTH
        or not value.isprintable()
    ):
        raise ValidationError(field, f"must be 1-{MAX_KEY_LENGTH} printable characters")
    return value


def new_job_id(now: datetime) -> JobId:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    Ids made later sort later, so the jobs' id index (and the attempts' key) grow at their right
    edge instead of at random pages: on PostgreSQL that spares a full-page image in the WAL for
    most claims once the history is large. (Python's ``uuid`` makes version 7 only from 3.14.)
    """
    ms = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    rand = secrets.randbits(74)
    value = (
        (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    )
    text = f"{value:032x}"
    return JobId(f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}")


def new_job(request: SubmitRequest, definition: Definition, now: datetime) -> NewJob:
    """Validate ``request`` against ``definition`` and build the job to insert."""
    if definition.status is not DefinitionStatus.ACTIVE:
        raise ConflictError(f"definition {definition.ref} is INACTIVE and takes no new jobs")
    if isinstance(request.priority, bool) or not isinstance(request.priority, int):
        raise ValidationError("priority", "must be an integer")
    if not -1000 <= request.priority <= 1000:
        raise ValidationError("priority", "must be between -1000 and 1000")
    check_depth(request.payload, "payload")  # before json.dumps recurses into it
    try:
        encoded = None if request.payload is None else json.dumps(request.payload)
    except (TypeError, ValueError):
        raise ValidationError("payload", "must be JSON-serialisable") from None
    if encoded is not None and len(encoded) > MAX_PAYLOAD_BYTES:
        raise ValidationError("payload", f"must be at most {MAX_PAYLOAD_BYTES} bytes of JSON")
    spec = definition.spec
    check_placeholders(spec.inputs, spec.outputs, request.payload)
    command = request.command
    if command is not None:
        if isinstance(spec.executor, ProcessSpec):
            command = parse_command(list(command), "command", shell=spec.executor.shell)
        elif isinstance(spec.executor, DockerSpec):
            command = parse_command(list(command), "command")
        else:
            raise ValidationError("command", f"cannot override a {spec.executor.kind} definition")
    overrides = Overrides(
        command=command,
        environment=parse_environment(dict(request.environment), "environment"),
        timeout_seconds=None
        if request.timeout_seconds is None
        else check_timeout(request.timeout_seconds),
        attempts=None if request.attempts is None else check_attempts(request.attempts),
    )
    return NewJob(
        id=new_job_id(now),
        name=check_name(request.name, "name") if request.name is not None else definition.name,
        definition_name=definition.name,
        definition_revision=definition.revision,
        queue=check_queue(request.queue) if request.queue is not None else spec.queue,
        group_key=_check_key(request.group, "group"),
        priority=request.priority,
        idempotency_key=_check_key(request.idempotency_key, "idempotency_key"),
        payload=request.payload,
        payload_json=encoded,
        overrides=overrides,
        parameters={**spec.parameters, **dict(request.parameters)},
        max_attempts=overrides.attempts or spec.retry.attempts,
        created_at=now,
        not_before=request.not_before or now,
    )


def effective_spec(definition: Definition, job: Job) -> DefinitionSpec:
    """The definition as this job runs it: overrides applied, ``Ref::name`` parameters filled in."""
    spec = definition.spec
    overrides = job.overrides
    executor = spec.executor
    params = job.parameters
    if isinstance(executor, ProcessSpec):
        command = overrides.command or executor.command
        executor = replace(executor, command=_fill_refs(command, params))
    elif isinstance(executor, DockerSpec):
        docker_command = overrides.command or executor.command
        if docker_command is not None:
            executor = replace(executor, command=_fill_refs(docker_command, params))
    return replace(
        spec,
        executor=executor,
        environment={**spec.environment, **overrides.environment},
        timeout_seconds=overrides.timeout_seconds or spec.timeout_seconds,
    )


def _fill_refs(command: tuple[str, ...], parameters: Mapping[str, str]) -> tuple[str, ...]:
    """AWS Batch's ``Ref::name`` arguments replaced by the job's parameters."""
    return tuple(
        parameters.get(arg[5:], arg) if arg.startswith("Ref::") else arg for arg in command
    )
