"""Records as JSON documents: the shape users see in ``-o json`` and the API, and storage keeps."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dockyard.domain.definitions import definition_document
from dockyard.domain.records import Attempt, Definition, Job, Overrides

__all__ = ["definition_summary", "iso", "job_document", "overrides_document", "parse_overrides"]


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def attempt_document(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "worker": attempt.worker_id,
        "exit_code": attempt.exit_code,
        "reason": attempt.reason,
        "status_reason": attempt.status_reason,
        "started_at": iso(attempt.started_at),
        "stopped_at": iso(attempt.stopped_at),
        "counted": attempt.counted,
    }


def job_document(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "definition": job.definition_ref,
        "state": job.state.value,
        "status_reason": job.status_reason,
        "queue": job.queue,
        "group": job.group_key,
        "priority": job.priority,
        "idempotency_key": job.idempotency_key,
        "payload": job.payload,
        "overrides": overrides_document(job.overrides),
        "parameters": dict(job.parameters),
        "max_attempts": job.max_attempts,
        "created_at": iso(job.created_at),
        "not_before": iso(job.not_before),
        "started_at": iso(job.started_at),
        "stopped_at": iso(job.stopped_at),
        "exit_code": job.exit_code,
        "result": job.result,
        "attempts": [attempt_document(attempt) for attempt in job.attempts],
    }


def definition_summary(definition: Definition) -> dict[str, Any]:
    return {
        **definition_document(definition.name, definition.spec),
        "revision": definition.revision,
        "status": definition.status.value,
        "created_at": iso(definition.created_at),
    }


def overrides_document(overrides: Overrides) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if overrides.command is not None:
        doc["command"] = list(overrides.command)
    if overrides.environment:
        doc["environment"] = dict(overrides.environment)
    if overrides.timeout_seconds is not None:
        doc["timeout"] = overrides.timeout_seconds
    if overrides.attempts is not None:
        doc["attempts"] = overrides.attempts
    return doc


def parse_overrides(doc: Mapping[str, Any]) -> Overrides:
    """Read back what :func:`overrides_document` wrote (already validated at submit)."""
    command = doc.get("command")
    return Overrides(
        command=None if command is None else tuple(command),
        environment=dict(doc.get("environment", {})),
        timeout_seconds=doc.get("timeout"),
        attempts=doc.get("attempts"),
    )
