"""Rows to records, shared by the backends: each says how it stores times and JSON, nothing more."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from dockyard.domain.definitions import parse_definition
from dockyard.domain.documents import overrides_document, parse_overrides
from dockyard.domain.records import Attempt, Definition, Job, JobId, NewJob, Overrides
from dockyard.domain.rules import Invocation, InvocationState, Rule, RuleSpec, parse_rule
from dockyard.domain.scheduling import Schedule, ScheduleSpec, parse_schedule
from dockyard.domain.staging import OutputRecord, output_record_document, output_record_from
from dockyard.domain.states import DefinitionStatus, JobState
from dockyard.domain.tokens import Role, Token

__all__ = ["RowReader", "new_job_columns", "new_job_record", "outputs_json"]


class Row(Protocol):
    """A row read by column name (``sqlite3.Row``, psycopg's ``dict_row``)."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass(frozen=True, slots=True)
class RowReader:
    """Builds records from a backend's rows, given how it decodes a time and a JSON column."""

    time: Callable[[Any], datetime]
    json: Callable[[Any], Any]

    def maybe_time(self, value: Any) -> datetime | None:
        return None if value is None else self.time(value)

    def maybe_json(self, value: Any) -> Any:
        return None if value is None else self.json(value)

    def definition(self, row: Row) -> Definition:
        document = self.json(row["document"])
        return Definition(
            name=row["name"],
            revision=row["revision"],
            status=DefinitionStatus(row["status"]),
            created_at=self.time(row["created_at"]),
            spec=parse_definition({k: v for k, v in document.items() if k != "name"}),
        )

    def job(self, row: Row, attempts: tuple[Attempt, ...] = ()) -> Job:
        return Job(
            id=JobId(row["id"]),
            name=row["name"],
            definition_name=row["definition_name"],
            definition_revision=row["definition_revision"],
            state=JobState(row["state"]),
            status_reason=row["status_reason"],
            queue=row["queue"],
            group_key=row["group_key"],
            priority=row["priority"],
            idempotency_key=row["idempotency_key"],
            payload=self.maybe_json(row["payload"]),
            overrides=parse_overrides(self.json(row["overrides"])),
            parameters=self.json(row["parameters"]),
            max_attempts=row["max_attempts"],
            attempt_count=row["attempt_count"],
            attempts_used=row["attempts_used"],
            created_at=self.time(row["created_at"]),
            not_before=self.time(row["not_before"]),
            started_at=self.maybe_time(row["started_at"]),
            stopped_at=self.maybe_time(row["stopped_at"]),
            worker_id=row["worker_id"],
            lease_expires_at=self.maybe_time(row["lease_expires_at"]),
            exit_code=row["exit_code"],
            result=self.maybe_json(row["result"]),
            attempts=attempts,
        )

    def attempt(self, row: Row) -> Attempt:
        return Attempt(
            number=row["number"],
            worker_id=row["worker_id"],
            started_at=self.maybe_time(row["started_at"]),
            stopped_at=self.maybe_time(row["stopped_at"]),
            exit_code=row["exit_code"],
            reason=row["reason"],
            status_reason=row["status_reason"],
            counted=bool(row["counted"]),
            image=row["image"],
            outputs=tuple(
                output_record_from(item) for item in self.maybe_json(row["outputs"]) or ()
            ),
        )

    def schedule(self, row: Row) -> Schedule:
        raw = row["spec"]
        spec = _spec_from_text(raw) if isinstance(raw, str) else parse_schedule(raw)[0]
        return Schedule(
            name=row["name"],
            spec=spec,
            enabled=bool(row["enabled"]),
            created_at=self.time(row["created_at"]),
            updated_at=self.time(row["updated_at"]),
            next_fire_at=self.maybe_time(row["next_fire_at"]),
            last_fire_at=self.maybe_time(row["last_fire_at"]),
            last_job_id=None if row["last_job_id"] is None else JobId(row["last_job_id"]),
            fires=row["fires"],
            last_error=row["last_error"],
        )

    def rule(self, row: Row) -> Rule:
        raw = row["spec"]
        spec = _rule_from_text(raw) if isinstance(raw, str) else parse_rule(raw)[0]
        return Rule(
            name=row["name"],
            spec=spec,
            enabled=bool(row["enabled"]),
            created_at=self.time(row["created_at"]),
            updated_at=self.time(row["updated_at"]),
        )

    def invocation(self, row: Row) -> Invocation:
        return Invocation(
            id=row["id"],
            rule=row["rule"],
            target=row["target"],
            event=self.json(row["event"]),
            state=InvocationState(row["state"]),
            attempts=row["attempts"],
            next_attempt_at=self.maybe_time(row["next_attempt_at"]),
            result=row["result"],
            error=row["error"],
            depth=row["depth"],
            created_at=self.time(row["created_at"]),
            updated_at=self.time(row["updated_at"]),
        )

    def token(self, row: Row) -> Token:
        return Token(
            id=row["id"],
            name=row["name"],
            role=Role(row["role"]),
            created_at=self.time(row["created_at"]),
            revoked_at=self.maybe_time(row["revoked_at"]),
        )


def new_job_record(job: NewJob, *, payload: Any, created_at: datetime, not_before: datetime) -> Job:
    """The job that inserting ``job`` creates, as the backend would read it back (``payload`` and
    the times as it stores them), without a round trip."""
    return Job(
        id=job.id,
        name=job.name,
        definition_name=job.definition_name,
        definition_revision=job.definition_revision,
        state=JobState.RUNNABLE,
        status_reason=None,
        queue=job.queue,
        group_key=job.group_key,
        priority=job.priority,
        idempotency_key=job.idempotency_key,
        payload=payload,
        overrides=job.overrides,
        parameters=dict(job.parameters),
        max_attempts=job.max_attempts,
        attempt_count=0,
        attempts_used=0,
        created_at=created_at,
        not_before=not_before,
    )


@functools.lru_cache(maxsize=1024)
def _rule_from_text(text: str) -> RuleSpec:
    """A stored rule, parsed once while it is unchanged (RuleSpec is immutable)."""
    return parse_rule(json.loads(text))[0]


@functools.lru_cache(maxsize=16384)
def _spec_from_text(text: str) -> ScheduleSpec:
    """A stored spec, parsed once: the scheduler reads thousands of schedules a minute, most
    of them unchanged since the last time (ScheduleSpec is immutable, so sharing it is safe)."""
    return parse_schedule(json.loads(text))[0]


_NO_OVERRIDES = Overrides()


def new_job_columns(job: NewJob) -> tuple[str | None, str, str]:
    """The payload (None for none), overrides and parameters of ``job`` as JSON text, without
    encoding again what validation encoded or what is empty (most jobs of a bulk submit)."""
    payload = job.payload_json
    if payload is None and job.payload is not None:
        payload = json.dumps(job.payload)
    overrides = (
        "{}" if job.overrides == _NO_OVERRIDES else json.dumps(overrides_document(job.overrides))
    )
    parameters = json.dumps(dict(job.parameters)) if job.parameters else "{}"
    return payload, overrides, parameters


def outputs_json(outputs: Sequence[OutputRecord]) -> str | None:
    """An attempt's output records as stored (a JSON list), or None when there are none."""
    return json.dumps([output_record_document(item) for item in outputs]) if outputs else None
