"""The records Dockyard stores and passes around: definitions, jobs and attempts.

Records are frozen; a change is a new record made with :func:`dataclasses.replace`, and a change of a
job's state is a :class:`~dockyard.domain.transitions.Transition`. The spec records of the built-in
executor kinds are here too; how documents name, check and write them is in
:mod:`dockyard.domain.specs`, one module per kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NewType, Protocol, TypeAlias

from dockyard.domain.retry import RetryPolicy
from dockyard.domain.staging import InputSpec, OutputRecord, OutputSpec
from dockyard.domain.states import DefinitionStatus, JobState

__all__ = [
    "JSON",
    "Attempt",
    "Definition",
    "DefinitionSpec",
    "DockerSpec",
    "ExecutorSpec",
    "HmacSigning",
    "HttpSpec",
    "Job",
    "JobId",
    "LambdaSpec",
    "NewJob",
    "Overrides",
    "ProcessSpec",
    "PythonSpec",
    "Resources",
    "SigV4Signing",
    "Signing",
]

JobId = NewType("JobId", str)
JSON: TypeAlias = "dict[str, JSON] | list[JSON] | str | int | float | bool | None"

DEFAULT_QUEUE = "default"
DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KILL_GRACE = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSpec:
    """Run a program: ``command`` is an argv, or one shell line when ``shell`` is true."""

    kind: Literal["process"] = "process"
    command: tuple[str, ...]
    shell: bool = False
    working_dir: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonSpec:
    """Call ``package.module:function`` with the payload, in the worker or in a child process."""

    kind: Literal["python"] = "python"
    function: str
    isolation: Literal["inline", "subprocess"] = "inline"


@dataclass(frozen=True, slots=True, kw_only=True)
class DockerSpec:
    """Run a container image on the worker's Docker engine.

    ``command`` and ``entrypoint`` replace the image's (None keeps them); ``user`` None runs as
    the image's user, and ``non_root`` refuses to start a container that would run as root.
    """

    kind: Literal["docker"] = "docker"
    image: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str | None = None
    user: str | None = None
    non_root: bool = False
    #: Capabilities the container keeps (``NET_RAW``); every other one is dropped.
    cap_add: tuple[str, ...] = ()
    network_mode: str = "bridge"
    read_only: bool = False
    #: Mount point → mount options (``size=64m``), like ``docker run --tmpfs``.
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    pull: Literal["always", "if-not-present", "never"] = "if-not-present"
    #: Registry login: ``username`` and the name of the worker's environment variable that holds
    #: the password (secrets stay out of the store).
    registry_username: str | None = None
    registry_password_env: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HmacSigning:
    """``X-Dockyard-Signature: sha256=HEX`` over ``"<timestamp>.<body>"`` with the secret in the
    worker's environment variable ``secret_env``; the timestamp goes in ``X-Dockyard-Timestamp``."""

    kind: Literal["hmac-sha256"] = "hmac-sha256"
    secret_env: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SigV4Signing:
    """AWS Signature Version 4 for ``service`` in ``region``, with credentials from the worker's
    environment variables named here (AWS's own names by default)."""

    kind: Literal["aws-sigv4"] = "aws-sigv4"
    service: str
    region: str
    access_key_env: str = "AWS_ACCESS_KEY_ID"
    secret_key_env: str = "AWS_SECRET_ACCESS_KEY"
    session_token_env: str = "AWS_SESSION_TOKEN"


Signing: TypeAlias = HmacSigning | SigV4Signing


@dataclass(frozen=True, slots=True, kw_only=True)
class LambdaSpec:
    """Invoke an AWS Lambda function through the ``Invoke`` API, the payload as its event."""

    kind: Literal["lambda"] = "lambda"
    #: A name, a partial or a full ARN.
    function: str
    qualifier: str | None = None
    invocation_type: Literal["RequestResponse", "Event"] = "RequestResponse"
    region: str
    #: ``https://lambda.<region>.amazonaws.com`` unless given (a local emulator, a VPC endpoint).
    endpoint: str | None = None
    signing: SigV4Signing
    max_response_bytes: int = 65536


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSpec:
    """Call an HTTP endpoint. In ``url``, ``headers``, ``text`` and the strings of ``json``,
    ``${payload.a.b}``, ``${job.id}``, ``${job.name}`` and ``${job.attempt}`` are filled in from
    the job; a string that is only ``${payload.…}`` takes the value's JSON type. With neither
    ``json`` nor ``text``, a POST, PUT or PATCH sends the payload as JSON."""

    kind: Literal["http"] = "http"
    method: str = "POST"
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: JSON = None
    text: str | None = None
    #: Codes that mean success: ``200``, ``2xx``, ``200-204``.
    expect_status: tuple[str, ...] = ("2xx",)
    max_response_bytes: int = 65536
    signing: Signing | None = None


class ExecutorSpec(Protocol):
    """What every executor's spec record has: ``kind``, the name that picks its executor.

    An open protocol rather than a union of the records above, so that a new kind's record can
    live in its own module (:mod:`dockyard.domain.specs`) without being listed here; code that
    needs one kind's fields narrows with ``isinstance``.
    """

    @property
    def kind(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """What a job needs; the docker executor enforces them, the process executor records them."""

    vcpus: float | None = None
    memory_mib: int | None = None
    gpus: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DefinitionSpec:
    """Everything a user registers under a name; one revision of a definition holds one of these."""

    executor: ExecutorSpec
    environment: Mapping[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    timeout_seconds: float | None = None
    kill_grace_seconds: float = DEFAULT_KILL_GRACE
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    queue: str = DEFAULT_QUEUE
    log_max_bytes: int = DEFAULT_LOG_MAX_BYTES
    parameters: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    #: Files fetched into the attempt's work directory before it runs (domain/staging.py).
    inputs: tuple[InputSpec, ...] = ()
    #: Files uploaded from the work directory after the attempt.
    outputs: tuple[OutputSpec, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Definition:
    """One immutable revision of a named definition."""

    name: str
    revision: int
    status: DefinitionStatus
    created_at: datetime
    spec: DefinitionSpec

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.revision}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Overrides:
    """Per-job changes to the definition: the command replaces, the environment merges by name."""

    command: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float | None = None
    attempts: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One execution of a job. ``counted`` is false for an attempt handed back at shutdown."""

    number: int
    worker_id: str
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    status_reason: str | None = None
    counted: bool = True
    #: The container image that ran, as ``reference@digest`` (docker jobs).
    image: str | None = None
    #: The output files uploaded after the attempt (``outputs`` of the definition).
    outputs: tuple[OutputRecord, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """A validated request to run a definition revision; storage turns it into a :class:`Job`."""

    id: JobId
    name: str
    definition_name: str
    definition_revision: int
    queue: str
    group_key: str | None = None
    priority: int = 0
    idempotency_key: str | None = None
    payload: JSON = None
    #: ``payload`` as JSON text when validation already encoded it (stores encode it otherwise).
    payload_json: str | None = None
    overrides: Overrides = field(default_factory=Overrides)
    parameters: Mapping[str, str] = field(default_factory=dict)
    max_attempts: int = 1
    created_at: datetime
    not_before: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A job as stored. ``attempts`` is filled when the job is read with its history."""

    id: JobId
    name: str
    definition_name: str
    definition_revision: int
    state: JobState
    status_reason: str | None
    queue: str
    group_key: str | None
    priority: int
    idempotency_key: str | None
    payload: JSON
    overrides: Overrides
    parameters: Mapping[str, str]
    max_attempts: int
    attempt_count: int
    attempts_used: int
    created_at: datetime
    not_before: datetime
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    worker_id: str | None = None
    lease_expires_at: datetime | None = None
    exit_code: int | None = None
    result: JSON = None
    attempts: tuple[Attempt, ...] = ()

    @property
    def definition_ref(self) -> str:
        return f"{self.definition_name}:{self.definition_revision}"
