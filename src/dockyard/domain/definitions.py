"""Definition documents: parse and validate what users write, and write it back the same way.

A definition document is the mapping a user writes in YAML or JSON (or that the CLI builds from
flags). :func:`parse_definition` checks every field and names the first one at fault;
:func:`definition_document` turns a spec back into the same shape, so storage, the CLI and the API
all speak one format. Hand-written rather than pydantic because the domain is standard library only
(DESIGN.md §4); pydantic validates at the HTTP edge.

This module owns the fields every definition has (:data:`COMMON_FIELDS`); the executor's fields
belong to its kind, which both functions look up in :mod:`dockyard.domain.specs.registry`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dockyard.domain.fields import (
    check_env_name,
    mapping,
    non_negative_int,
    non_negative_number,
    optional,
    positive_int,
    positive_number,
    string,
    string_map,
)
from dockyard.domain.records import (
    DEFAULT_KILL_GRACE,
    DEFAULT_LOG_MAX_BYTES,
    DEFAULT_QUEUE,
    DefinitionSpec,
    ProcessSpec,
    Resources,
)
from dockyard.domain.retry import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_MAX,
    ExitAction,
    ExitRule,
    RetryPolicy,
    is_valid_exit_code_glob,
    is_valid_reason_glob,
)
from dockyard.domain.specs.registry import executor_kind, kind_of
from dockyard.domain.staging import (
    check_work_path,
    input_document,
    output_document,
    parse_inputs,
    parse_outputs,
)
from dockyard.errors import ValidationError

__all__ = [
    "COMMON_FIELDS",
    "MAX_LOG_MAX_BYTES",
    "admit_definition",
    "check_attempts",
    "check_name",
    "check_queue",
    "check_timeout",
    "definition_document",
    "parse_definition",
    "parse_definition_ref",
    "parse_environment",
]

MAX_ATTEMPTS = 10
#: The largest ``log_max_bytes``: an attempt's log is read and served whole by whoever may read
#: it, and its writer holds up to half of it in memory until the attempt ends.
MAX_LOG_MAX_BYTES = 1024 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
#: The fields of every definition, whatever its executor; a kind's own fields come on top.
COMMON_FIELDS = frozenset(
    {
        "name",
        "executor",
        "environment",
        "resources",
        "timeout",
        "kill_grace",
        "retry",
        "queue",
        "log_max_bytes",
        "parameters",
        "description",
        "inputs",
        "outputs",
    }
)


def check_name(name: object, field: str = "name") -> str:
    """Definition names follow AWS Batch: 1–128 letters, digits, hyphens and underscores."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            field, "must be 1-128 letters, digits, hyphens or underscores, starting alphanumeric"
        )
    return name


def check_queue(queue: object, field: str = "queue") -> str:
    return check_name(queue, field)


def parse_definition_ref(ref: str) -> tuple[str, int | None]:
    """``name`` or ``name:revision`` → (name, revision or None for the latest ACTIVE)."""
    name, sep, revision = ref.partition(":")
    check_name(name, "definition")
    if not sep:
        return name, None
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses; and at most 18 of
    # them, so that the number fits a 64-bit SQLite INTEGER.
    if not (revision.isascii() and revision.isdigit()) or len(revision) > 18 or int(revision) < 1:
        raise ValidationError("definition", f"revision in {ref!r} must be a positive integer")
    return name, int(revision)


def admit_definition(spec: DefinitionSpec) -> DefinitionSpec:
    """``spec`` if it may be registered now: what its kind's ``admit`` refuses (rules added
    after definitions were stored) raises :class:`ValidationError`. Stored definitions are
    read with :func:`parse_definition` alone."""
    kind_of(spec.executor).admit(spec.executor)
    return spec


def parse_definition(doc: Mapping[str, Any]) -> DefinitionSpec:
    """Validate a definition document; raise :class:`ValidationError` naming the first bad field."""
    if not isinstance(doc, Mapping):
        raise ValidationError("definition", "must be a mapping of fields")
    kind = executor_kind(doc.get("executor"))
    for key in doc:
        if key not in COMMON_FIELDS and key not in kind.fields:
            raise ValidationError(str(key), f"is not a field of a {kind.name} definition")
    executor = kind.parse(doc)
    inputs = parse_inputs(doc.get("inputs") or [])
    outputs = parse_outputs(doc.get("outputs") or [])
    _check_staging(kind.name, executor, inputs, outputs)
    return DefinitionSpec(
        executor=executor,
        environment=parse_environment(doc.get("environment", {}), "environment"),
        resources=_parse_resources(doc.get("resources", {})),
        timeout_seconds=optional(doc, "timeout", check_timeout),
        kill_grace_seconds=optional(doc, "kill_grace", non_negative_number) or DEFAULT_KILL_GRACE,
        retry=_parse_retry(doc.get("retry", {})),
        queue=check_queue(doc.get("queue", DEFAULT_QUEUE)),
        log_max_bytes=optional(doc, "log_max_bytes", _log_cap) or DEFAULT_LOG_MAX_BYTES,
        parameters=string_map(doc.get("parameters", {}), "parameters"),
        description=string(doc.get("description", ""), "description"),
        inputs=inputs,
        outputs=outputs,
    )


#: The kinds whose attempts run in a work directory (a process's cwd, a container's bind mount)
#: and start in STARTING, when inputs are fetched. http and lambda jobs have no files; python
#: jobs are claimed straight to RUNNING and run in the worker (or a child sharing its cwd).
STAGING_KINDS = ("process", "docker")


def _check_staging(
    kind: str, executor: object, inputs: tuple[object, ...], outputs: tuple[object, ...]
) -> None:
    for field, items in (("inputs", inputs), ("outputs", outputs)):
        if items and kind not in STAGING_KINDS:
            raise ValidationError(
                field, f"is only for process and docker definitions, not a {kind} definition"
            )
    # A process with inputs or outputs runs in its work directory: its working_dir is a folder
    # inside it (a container's working_dir is where the work directory is mounted).
    if (inputs or outputs) and isinstance(executor, ProcessSpec) and executor.working_dir:
        check_work_path(executor.working_dir, "working_dir", glob=False)


def parse_environment(value: object, field: str) -> dict[str, str]:
    if isinstance(value, dict) and not value:
        return {}
    env = string_map(value, field)
    for name in env:
        check_env_name(name, f"{field}.{name}")
    return env


def _parse_resources(value: object) -> Resources:
    doc = mapping(value, "resources", {"vcpus", "memory_mib", "gpus"})
    return Resources(
        vcpus=optional(doc, "vcpus", positive_number, "resources."),
        memory_mib=optional(doc, "memory_mib", positive_int, "resources."),
        gpus=optional(doc, "gpus", non_negative_int, "resources."),
    )


def _parse_retry(value: object) -> RetryPolicy:
    doc = mapping(value, "retry", {"attempts", "backoff_base", "backoff_max", "evaluate_on_exit"})
    attempts = optional(doc, "attempts", check_attempts, "retry.") or 1
    base = optional(doc, "backoff_base", non_negative_number, "retry.")
    maximum = optional(doc, "backoff_max", non_negative_number, "retry.")
    rules = doc.get("evaluate_on_exit", [])
    if not isinstance(rules, list) or len(rules) > 5:
        raise ValidationError("retry.evaluate_on_exit", "must be a list of at most 5 rules")
    return RetryPolicy(
        attempts=attempts,
        backoff_base=DEFAULT_BACKOFF_BASE if base is None else base,
        backoff_max=DEFAULT_BACKOFF_MAX if maximum is None else maximum,
        evaluate_on_exit=tuple(
            _parse_rule(rule, f"retry.evaluate_on_exit[{i}]") for i, rule in enumerate(rules)
        ),
    )


_REASON_GLOB = "letters, digits, '.', ':' and spaces, optional trailing *"


def _parse_rule(value: object, field: str) -> ExitRule:
    doc = mapping(value, field, {"action", "on_exit_code", "on_reason", "on_status_reason"})
    action = doc.get("action")
    if not isinstance(action, str) or action.upper() not in ExitAction.__members__:
        raise ValidationError(f"{field}.action", "must be RETRY or EXIT")
    globs: dict[str, str | None] = {}
    for key, check, rule in (
        ("on_exit_code", is_valid_exit_code_glob, "digits with an optional trailing *"),
        ("on_reason", is_valid_reason_glob, _REASON_GLOB),
        ("on_status_reason", is_valid_reason_glob, _REASON_GLOB),
    ):
        glob = doc.get(key)
        if glob is not None and (not isinstance(glob, str | int) or not check(str(glob))):
            raise ValidationError(
                f"{field}.{key}", f"must be a glob of {rule} (at most 512 characters)"
            )
        globs[key] = None if glob is None else str(glob)
    if not any(globs.values()):
        raise ValidationError(
            field, "needs at least one of on_exit_code, on_reason, on_status_reason"
        )
    return ExitRule(action=ExitAction(action.upper()), **globs)


def check_attempts(value: object, field: str = "attempts") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPTS:
        raise ValidationError(field, f"must be an integer from 1 to {MAX_ATTEMPTS}")
    return value


def check_timeout(value: object, field: str = "timeout") -> float:
    return positive_number(value, field)


def _log_cap(value: object, field: str) -> int:
    cap = positive_int(value, field)
    if cap < 1024:
        raise ValidationError(field, "must be at least 1024 bytes")
    if cap > MAX_LOG_MAX_BYTES:
        raise ValidationError(field, f"must be at most {MAX_LOG_MAX_BYTES} bytes (1 GiB)")
    return cap


def definition_document(name: str, spec: DefinitionSpec) -> dict[str, Any]:
    """The spec as a document that :func:`parse_definition` reads back to an equal spec."""
    doc: dict[str, Any] = {"name": name, "executor": spec.executor.kind}
    doc.update(executor_kind(spec.executor.kind).document(spec.executor))
    resources = {
        key: value
        for key, value in (
            ("vcpus", spec.resources.vcpus),
            ("memory_mib", spec.resources.memory_mib),
            ("gpus", spec.resources.gpus),
        )
        if value is not None
    }
    doc.update(
        environment=dict(spec.environment),
        resources=resources,
        timeout=spec.timeout_seconds,
        kill_grace=spec.kill_grace_seconds,
        retry=_retry_document(spec.retry),
        queue=spec.queue,
        log_max_bytes=spec.log_max_bytes,
        parameters=dict(spec.parameters),
        description=spec.description,
    )
    if spec.inputs:
        doc["inputs"] = [input_document(item) for item in spec.inputs]
    if spec.outputs:
        doc["outputs"] = [output_document(item) for item in spec.outputs]
    return doc


def _retry_document(retry: RetryPolicy) -> dict[str, Any]:
    return {
        "attempts": retry.attempts,
        "backoff_base": retry.backoff_base,
        "backoff_max": retry.backoff_max,
        "evaluate_on_exit": [
            {
                key: value
                for key, value in (
                    ("action", rule.action.value),
                    ("on_exit_code", rule.on_exit_code),
                    ("on_reason", rule.on_reason),
                    ("on_status_reason", rule.on_status_reason),
                )
                if value is not None
            }
            for rule in retry.evaluate_on_exit
        ],
    }
