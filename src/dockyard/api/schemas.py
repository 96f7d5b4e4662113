"""Request and response bodies. Pydantic checks shapes and types; the domain checks the rules.

The executor fields of definitions are not listed here: they come from the domain's table of
executor kinds, each field typed as its kind declares, so a new kind needs no change here.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from pydantic.json_schema import SkipJsonSchema

from dockyard.domain.specs.registry import executor_kinds, kind_names
from dockyard.domain.tokens import MAX_LIFETIME

__all__ = [
    "AttemptOut",
    "BatchIn",
    "BatchOut",
    "CancelIn",
    "DefinitionIn",
    "DefinitionOut",
    "JobIn",
    "JobOut",
    "JobOutputOut",
    "JobPage",
    "OutputOut",
    "QueueOut",
    "ScheduleIn",
    "ScheduleOut",
    "SchedulePatch",
    "ScheduleTargetIn",
    "ScheduleTargetOut",
    "ScheduleTargetPatch",
    "TokenCreated",
    "TokenIn",
    "TokenOut",
    "WorkerOut",
]


class _Strict(BaseModel):
    """Refuses fields it does not know (a typo is an error, not a silent default)."""

    model_config = ConfigDict(extra="forbid")


def _executor_fields(*, written: bool) -> dict[str, Any]:
    """Every executor kind's fields, for ``create_model``: optional, typed as the kind declares.

    A field two kinds share with different shapes accepts either. ``written`` picks the shape
    the document writer gives back (responses) rather than what a request may give.
    """
    shapes: dict[str, Any] = {}
    for kind in executor_kinds():
        for name, shape in kind.fields.items():
            given = shape.written if written else shape.accepts
            earlier = shapes.get(name, given)
            shapes[name] = given if earlier == given else earlier | given
    fields: dict[str, Any] = {
        "executor": (
            str,
            Field(default="process", description=f"How jobs run: {', '.join(kind_names())}"),
        )
    }
    for name, shape in shapes.items():
        optional = shape if shape is Any else shape | None
        # A field named like a BaseModel method (json) takes another Python name, its own alias.
        python_name = f"{name}_field" if hasattr(BaseModel, name) else name
        fields[python_name] = (optional, Field(default=None, alias=name))
    return fields


# Built from the executor registry at import; to a type checker they are plain models.
if TYPE_CHECKING:
    _ExecutorFieldsIn = BaseModel
    _ExecutorFieldsOut = BaseModel
else:
    _ExecutorFieldsIn = create_model(
        "_ExecutorFieldsIn", __module__=__name__, **_executor_fields(written=False)
    )
    _ExecutorFieldsOut = create_model(
        "_ExecutorFieldsOut", __module__=__name__, **_executor_fields(written=True)
    )


class DefinitionIn(_Strict, _ExecutorFieldsIn):
    """A definition document, as in ``dockyard definitions register -f`` (see the README)."""

    name: str
    environment: dict[str, str] | None = None
    resources: dict[str, float | int] | None = None
    timeout: float | None = None
    kill_grace: float | None = None
    retry: dict[str, Any] | None = None
    queue: str | None = None
    log_max_bytes: int | None = None
    parameters: dict[str, str] | None = None
    description: str | None = None
    inputs: list[dict[str, Any]] | None = Field(
        default=None, description="Files fetched into the work directory before each attempt"
    )
    outputs: list[dict[str, Any]] | None = Field(
        default=None, description="Files uploaded from the work directory after each attempt"
    )


class DefinitionOut(_ExecutorFieldsOut):
    name: str
    revision: int
    status: str
    created_at: str
    environment: dict[str, str]
    resources: dict[str, float | int]
    timeout: float | None
    kill_grace: float
    retry: dict[str, Any]
    queue: str
    log_max_bytes: int
    parameters: dict[str, str]
    description: str
    inputs: list[dict[str, Any]] = Field(default_factory=list)
    outputs: list[dict[str, Any]] = Field(default_factory=list)


class JobIn(_Strict):
    definition: str = Field(description="NAME (latest ACTIVE revision) or NAME:REVISION")
    name: str | None = None
    queue: str | None = None
    group: str | None = None
    idempotency_key: str | None = None
    priority: int = 0
    payload: Any = None
    command: list[str] | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    timeout: float | None = None
    attempts: int | None = None
    parameters: dict[str, str] = Field(default_factory=dict)


class BatchIn(_Strict):
    jobs: list[JobIn] = Field(min_length=1, max_length=1000)


class OutputOut(BaseModel):
    """One output file an attempt uploaded."""

    uri: str
    size: int
    sha256: str
    path: str


class JobOutputOut(OutputOut):
    """One output file of a job, with the attempt that uploaded it."""

    attempt: int


class AttemptOut(BaseModel):
    number: int
    worker: str
    exit_code: int | None
    reason: str | None
    status_reason: str | None
    started_at: str | None
    stopped_at: str | None
    counted: bool
    image: str | None = None
    outputs: list[OutputOut] = Field(default_factory=list)


class JobOut(BaseModel):
    id: str
    name: str
    definition: str
    state: str
    status_reason: str | None
    queue: str
    group: str | None
    priority: int
    idempotency_key: str | None
    payload: Any
    overrides: dict[str, Any]
    parameters: dict[str, str]
    max_attempts: int
    attempts_used: int = Field(description="Attempts counted against max_attempts")
    created_at: str
    not_before: str
    started_at: str | None
    stopped_at: str | None
    exit_code: int | None
    result: Any
    payload_error: str | None = Field(default=None, description="Why payload is null: unshowable")
    result_error: str | None = Field(default=None, description="Why result is null: unshowable")
    attempts: list[AttemptOut]
    created: bool | None = Field(
        default=None, description="On submit: false when an earlier job had the idempotency key"
    )


class BatchOut(BaseModel):
    jobs: list[JobOut]


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page")


class CancelIn(_Strict):
    reason: str | None = None


class QueueOut(BaseModel):
    name: str
    paused: bool
    counts: dict[str, int]


class WorkerOut(BaseModel):
    id: str
    hostname: str
    pid: int
    queues: list[str] | None
    concurrency: int
    started_at: str
    heartbeat_at: str
    stopped_at: str | None
    running: list[str]


class ScheduleTargetIn(_Strict):
    """The job each fire submits: the fields of ``POST /v1/jobs`` but the idempotency key."""

    definition: str = Field(description="NAME (latest ACTIVE revision) or NAME:REVISION")
    name: str | None = None
    queue: str | None = None
    group: str | None = None
    priority: int = 0
    payload: Any = Field(
        default=None,
        description="<aws.scheduler.scheduled-time> and <aws.scheduler.schedule-arn> are filled in",
    )
    command: list[str] | None = None
    environment: dict[str, str] | None = None
    timeout: float | None = None
    attempts: int | None = None
    parameters: dict[str, str] | None = None


class ScheduleIn(_Strict):
    """A schedule document, as in ``dockyard schedules create -f`` (see the README)."""

    name: str
    expression: str = Field(description="cron(...), rate(...), at(...) or a five-field cron")
    timezone: str = Field(default="UTC", description="An IANA time zone, e.g. Europe/Paris")
    start: str | None = Field(default=None, description="ISO 8601 with a UTC offset")
    end: str | None = Field(default=None, description="ISO 8601 with a UTC offset")
    flexible_window_minutes: int = 0
    overlap: str = Field(default="allow", description="allow, skip or queue")
    catch_up: str = Field(default="none", description="none, latest or all")
    catch_up_limit: int = 100
    delete_after_completion: bool = False
    description: str | None = None
    state: str = Field(default="ENABLED", description="ENABLED or DISABLED")
    target: ScheduleTargetIn


def _refuse_null(value: object) -> object:
    """For a field that may be left out of a patch but has no default to reset to: a null is
    refused here, and ``SkipJsonSchema`` keeps null out of the documented schema."""
    if value is None:
        raise ValueError("has no default, so it cannot be null")
    return value


class ScheduleTargetPatch(_Strict):
    """Target keys to change; the others keep their values, and null resets one to its default.
    The definition has no default, so it cannot be null."""

    definition: str | SkipJsonSchema[None] = Field(
        default=None, description="NAME or NAME:REVISION"
    )
    name: str | None = None
    queue: str | None = None
    group: str | None = None
    priority: int | None = None
    payload: Any = None
    command: list[str] | None = None
    environment: dict[str, str] | None = None
    timeout: float | None = None
    attempts: int | None = None
    parameters: dict[str, str] | None = None

    _not_null = field_validator("definition")(_refuse_null)


class SchedulePatch(_Strict):
    """Fields to change; the others keep their values, ``target`` merges key by key, and null
    resets a field to its default. The expression and the target have none: never null."""

    name: str | None = Field(default=None, description="If given, the schedule's own name")
    expression: str | SkipJsonSchema[None] = Field(
        default=None, description="Changing it recomputes next_fire_at"
    )
    timezone: str | None = None
    start: str | None = None
    end: str | None = None
    flexible_window_minutes: int | None = None
    overlap: str | None = None
    catch_up: str | None = None
    catch_up_limit: int | None = None
    delete_after_completion: bool | None = None
    description: str | None = None
    state: str | None = Field(default=None, description="ENABLED or DISABLED")
    # Unset, the factory's value is left out by ``model_dump(exclude_unset=True)``.
    target: ScheduleTargetPatch = Field(default_factory=ScheduleTargetPatch)

    _not_null = field_validator("expression")(_refuse_null)


class ScheduleTargetOut(BaseModel):
    definition: str
    name: str | None
    queue: str | None
    group: str | None
    priority: int
    payload: Any
    command: list[str] | None
    environment: dict[str, str]
    timeout: float | None
    attempts: int | None
    parameters: dict[str, str]


class ScheduleOut(BaseModel):
    name: str
    expression: str
    timezone: str
    start: str | None
    end: str | None
    flexible_window_minutes: int
    overlap: str
    catch_up: str
    catch_up_limit: int
    delete_after_completion: bool
    description: str | None
    state: str = Field(description="ENABLED or DISABLED")
    target: ScheduleTargetOut
    next_fire_at: str | None = Field(description="The next fire time; null when none is left")
    last_fire_at: str | None
    last_job_id: str | None
    fires: int = Field(description="Fires that submitted a job")
    last_error: str | None = Field(description="Why the last fire failed; null after a success")
    created_at: str
    updated_at: str


class TokenIn(_Strict):
    name: str
    role: str = Field(description="admin, operator, publisher or viewer")
    expires_at: datetime | None = Field(None, description="When it stops working (ISO 8601)")
    expires_in_seconds: float | None = Field(
        None, gt=0, le=MAX_LIFETIME.total_seconds(), description="Or: how long it works"
    )


class TokenOut(BaseModel):
    id: str
    name: str
    role: str
    created_at: str
    revoked_at: str | None
    expires_at: str | None = None
    last_used_at: str | None = None


class TokenCreated(TokenOut):
    secret: str = Field(description="Shown once; only its hash is stored")


# -- events and rules ---------------------------------------------------------------------------

#: A rule's event pattern, in the request and in the answer.
