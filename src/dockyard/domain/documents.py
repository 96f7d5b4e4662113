"""Records as JSON documents: the shape users see in ``-o json`` and the API, and storage keeps."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dockyard.domain.definitions import definition_document, parse_definition
from dockyard.domain.records import Attempt, Definition, Job, JobId, Overrides
from dockyard.domain.staging import output_record_document, output_record_from
from dockyard.domain.states import DefinitionStatus, JobState
from dockyard.domain.tokens import AuditEntry, Token

__all__ = [
    "audit_entry_document",
    "definition_summary",
    "iso",
    "job_document",
    "overrides_document",
    "parse_definition_document",
    "parse_job_document",
    "parse_overrides",
    "token_document",
]


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
        "image": attempt.image,
        "outputs": [output_record_document(item) for item in attempt.outputs],
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
        "attempts_used": job.attempts_used,
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


def token_document(token: Token) -> dict[str, Any]:
    """A token as the CLI shows it and the API sends it (never its secret, which is not kept)."""
    return {
        "id": token.id,
        "name": token.name,
        "role": token.role.value,
        "created_at": iso(token.created_at),
        "expires_at": iso(token.expires_at),
        "last_used_at": iso(token.last_used_at),
        "revoked_at": iso(token.revoked_at),
    }


def audit_entry_document(entry: AuditEntry) -> dict[str, Any]:
    """An entry of the audit trail as the CLI shows it and the API sends it."""
    return {
        "id": entry.id,
        "at": iso(entry.at),
        "token_id": entry.token_id,
        "token_name": entry.token_name,
        "role": entry.role.value,
        "operation": entry.operation,
        "target": entry.target,
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


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def parse_job_document(doc: Mapping[str, Any]) -> Job:
    """Read back what :func:`job_document` wrote (the HTTP client's view of a job)."""
    name, _, revision = str(doc["definition"]).rpartition(":")
    return Job(
        id=JobId(doc["id"]),
        name=doc["name"],
        definition_name=name,
        definition_revision=int(revision),
        state=JobState(doc["state"]),
        status_reason=doc["status_reason"],
        queue=doc["queue"],
        group_key=doc["group"],
        priority=doc["priority"],
        idempotency_key=doc["idempotency_key"],
        payload=doc["payload"],
        overrides=parse_overrides(doc["overrides"]),
        parameters=doc["parameters"],
        max_attempts=doc["max_attempts"],
        attempt_count=len(doc["attempts"]),
        attempts_used=doc["attempts_used"],
        created_at=_at(doc["created_at"]),
        not_before=_at(doc["not_before"]),
        started_at=_when(doc["started_at"]),
        stopped_at=_when(doc["stopped_at"]),
        exit_code=doc["exit_code"],
        result=doc["result"],
        attempts=tuple(
            Attempt(
                number=a["number"],
                worker_id=a["worker"],
                started_at=_when(a["started_at"]),
                stopped_at=_when(a["stopped_at"]),
                exit_code=a["exit_code"],
                reason=a["reason"],
                status_reason=a["status_reason"],
                counted=a["counted"],
                image=a.get("image"),
                outputs=tuple(output_record_from(item) for item in a.get("outputs") or ()),
            )
            for a in doc["attempts"]
        ),
    )


def parse_definition_document(doc: Mapping[str, Any]) -> Definition:
    """Read back what :func:`definition_summary` wrote."""
    fields = {
        key: value
        for key, value in doc.items()
        if key not in ("name", "revision", "status", "created_at") and value is not None
    }
    return Definition(
        name=doc["name"],
        revision=doc["revision"],
        status=DefinitionStatus(doc["status"]),
        created_at=_at(doc["created_at"]),
        spec=parse_definition(fields),
    )
