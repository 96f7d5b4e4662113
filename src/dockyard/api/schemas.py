"""Request and response bodies. Pydantic checks shapes and types; the domain checks the rules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AttemptOut",
    "BatchIn",
    "BatchOut",
    "CancelIn",
    "DefinitionIn",
    "DefinitionOut",
    "JobIn",
    "JobOut",
    "JobPage",
    "QueueOut",
    "TokenCreated",
    "TokenIn",
    "TokenOut",
    "WorkerOut",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DefinitionIn(_Strict):
    """A definition document, as in ``dockyard definitions register -f`` (see the README)."""

    name: str
    executor: str = "process"
    command: list[str] | str | None = None
    shell: bool | None = None
    working_dir: str | None = None
    function: str | None = None
    isolation: str | None = None
    environment: dict[str, str] | None = None
    resources: dict[str, float | int] | None = None
    timeout: float | None = None
    kill_grace: float | None = None
    retry: dict[str, Any] | None = None
    queue: str | None = None
    log_max_bytes: int | None = None
    parameters: dict[str, str] | None = None
    description: str | None = None


class DefinitionOut(BaseModel):
    name: str
    revision: int
    status: str
    created_at: str
    executor: str
    command: list[str] | None = None
    shell: bool | None = None
    working_dir: str | None = None
    function: str | None = None
    isolation: str | None = None
    environment: dict[str, str]
    resources: dict[str, float | int]
    timeout: float | None
    kill_grace: float
    retry: dict[str, Any]
    queue: str
    log_max_bytes: int
    parameters: dict[str, str]
    description: str


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


class AttemptOut(BaseModel):
    number: int
    worker: str
    exit_code: int | None
    reason: str | None
    status_reason: str | None
    started_at: str | None
    stopped_at: str | None
    counted: bool


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


class TokenIn(_Strict):
    name: str
    role: str = Field(description="admin, operator or viewer")


class TokenOut(BaseModel):
    id: str
    name: str
    role: str
    created_at: str
    revoked_at: str | None


class TokenCreated(TokenOut):
    secret: str = Field(description="Shown once; only its hash is stored")
