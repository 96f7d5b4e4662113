"""Definition documents: parse and validate what users write, and write it back the same way.

A definition document is the mapping a user writes in YAML or JSON (or that the CLI builds from
flags). :func:`parse_definition` checks every field and names the first one at fault;
:func:`definition_document` turns a spec back into the same shape, so storage, the CLI and the API
all speak one format. Hand-written rather than pydantic because the domain is standard library only
(DESIGN.md §4); pydantic validates at the HTTP edge.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from dockyard.domain.records import (
    DEFAULT_KILL_GRACE,
    DEFAULT_LOG_MAX_BYTES,
    DEFAULT_QUEUE,
    DefinitionSpec,
    DockerSpec,
    ExecutorSpec,
    HmacSigning,
    HttpSpec,
    LambdaSpec,
    ProcessSpec,
    PythonSpec,
    Resources,
    SigV4Signing,
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
from dockyard.errors import ValidationError

__all__ = [
    "EXECUTOR_KINDS",
    "check_env_name",
    "check_name",
    "check_queue",
    "definition_document",
    "parse_definition",
    "parse_definition_ref",
    "string_map",
]

EXECUTOR_KINDS = ("process", "python", "docker", "http", "lambda")
MAX_ATTEMPTS = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_COMMON_FIELDS = frozenset(
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
    }
)
_EXECUTOR_FIELDS = {
    "process": frozenset({"command", "shell", "working_dir"}),
    "python": frozenset({"function", "isolation"}),
    "docker": frozenset(
        {
            "image",
            "command",
            "entrypoint",
            "working_dir",
            "user",
            "non_root",
            "network_mode",
            "read_only",
            "tmpfs",
            "pull",
            "registry_username",
            "registry_password_env",
        }
    ),
    "lambda": frozenset(
        {
            "function",
            "qualifier",
            "invocation_type",
            "region",
            "endpoint",
            "signing",
            "max_response_bytes",
        }
    ),
    "http": frozenset(
        {
            "method",
            "url",
            "headers",
            "json",
            "text",
            "expect_status",
            "max_response_bytes",
            "signing",
        }
    ),
}
_PULL_POLICIES = ("always", "if-not-present", "never")
_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_STATUS = re.compile(r"^(?:[1-5]xx|[1-5][0-9]{2}(?:-[1-5][0-9]{2})?)$")
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
_NETWORK_MODES = ("bridge", "none", "host")
#: An image reference: [registry[:port]/]repository[:tag][@digest], as Docker accepts it.
_IMAGE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)

T = TypeVar("T")


def check_name(name: object, field: str = "name") -> str:
    """Definition names follow AWS Batch: 1–128 letters, digits, hyphens and underscores."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            field, "must be 1-128 letters, digits, hyphens or underscores, starting alphanumeric"
        )
    return name


def check_queue(queue: object, field: str = "queue") -> str:
    return check_name(queue, field)


def check_env_name(name: object, field: str) -> str:
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise ValidationError(
            field, "must be a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
        )
    if name.startswith("DOCKYARD_"):
        raise ValidationError(field, "names starting with DOCKYARD_ are reserved")
    return name


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


def parse_definition(doc: Mapping[str, Any]) -> DefinitionSpec:
    """Validate a definition document; raise :class:`ValidationError` naming the first bad field."""
    if not isinstance(doc, Mapping):
        raise ValidationError("definition", "must be a mapping of fields")
    kind = doc.get("executor")
    if kind not in EXECUTOR_KINDS:
        raise ValidationError("executor", f"must be one of {', '.join(EXECUTOR_KINDS)}")
    allowed = _COMMON_FIELDS | _EXECUTOR_FIELDS[kind]
    for key in doc:
        if key not in allowed:
            raise ValidationError(str(key), f"is not a field of a {kind} definition")
    return DefinitionSpec(
        executor=_parse_executor(kind, doc),
        environment=parse_environment(doc.get("environment", {}), "environment"),
        resources=_parse_resources(doc.get("resources", {})),
        timeout_seconds=_optional(doc, "timeout", _positive_number),
        kill_grace_seconds=_optional(doc, "kill_grace", _non_negative_number) or DEFAULT_KILL_GRACE,
        retry=_parse_retry(doc.get("retry", {})),
        queue=check_queue(doc.get("queue", DEFAULT_QUEUE)),
        log_max_bytes=_optional(doc, "log_max_bytes", _log_cap) or DEFAULT_LOG_MAX_BYTES,
        parameters=string_map(doc.get("parameters", {}), "parameters"),
        description=_string(doc.get("description", ""), "description"),
    )


def _parse_executor(kind: str, doc: Mapping[str, Any]) -> ExecutorSpec:
    if kind == "process":
        shell = doc.get("shell", False)
        if not isinstance(shell, bool):
            raise ValidationError("shell", "must be true or false")
        working_dir = doc.get("working_dir")
        if working_dir is not None:
            _string(working_dir, "working_dir")
        return ProcessSpec(
            command=parse_command(doc.get("command"), "command", shell=shell),
            shell=shell,
            working_dir=working_dir,
        )
    if kind == "docker":
        return _parse_docker(doc)
    if kind == "http":
        return _parse_http(doc)
    if kind == "lambda":
        return _parse_lambda(doc)
    function = doc.get("function")
    if not isinstance(function, str) or not _FUNCTION.match(function):
        raise ValidationError("function", "must be 'package.module:function'")
    isolation = doc.get("isolation", "inline")
    if isolation not in ("inline", "subprocess"):
        raise ValidationError("isolation", "must be 'inline' or 'subprocess'")
    return PythonSpec(function=function, isolation=isolation)


def _parse_docker(doc: Mapping[str, Any]) -> DockerSpec:
    image = doc.get("image")
    if not isinstance(image, str) or not _IMAGE.match(image):
        raise ValidationError(
            "image", "must be an image reference like registry:5000/team/app:tag[@sha256:…]"
        )
    command, entrypoint = doc.get("command"), doc.get("entrypoint")
    pull = doc.get("pull", "if-not-present")
    if pull not in _PULL_POLICIES:
        raise ValidationError("pull", f"must be one of {', '.join(_PULL_POLICIES)}")
    network = doc.get("network_mode", "bridge")
    if network not in _NETWORK_MODES:
        raise ValidationError("network_mode", f"must be one of {', '.join(_NETWORK_MODES)}")
    tmpfs = string_map(doc.get("tmpfs", {}), "tmpfs")
    for mount in tmpfs:
        if not mount.startswith("/"):
            raise ValidationError(f"tmpfs.{mount}", "must be an absolute path")
    password_env = doc.get("registry_password_env")
    if password_env is not None:
        check_env_name(password_env, "registry_password_env")
    return DockerSpec(
        image=image,
        command=None if command is None else parse_command(command, "command"),
        entrypoint=None if entrypoint is None else parse_command(entrypoint, "entrypoint"),
        working_dir=_optional(doc, "working_dir", _string),
        user=_optional(doc, "user", _string),
        non_root=_flag(doc.get("non_root", False), "non_root"),
        network_mode=network,
        read_only=_flag(doc.get("read_only", False), "read_only"),
        tmpfs=tmpfs,
        pull=pull,
        registry_username=_optional(doc, "registry_username", _string),
        registry_password_env=password_env,
    )


def _parse_http(doc: Mapping[str, Any]) -> HttpSpec:
    url = doc.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValidationError("url", "must be an http:// or https:// URL")
    method = doc.get("method", "POST")
    if not isinstance(method, str) or method.upper() not in _HTTP_METHODS:
        raise ValidationError("method", f"must be one of {', '.join(_HTTP_METHODS)}")
    if doc.get("json") is not None and doc.get("text") is not None:
        raise ValidationError("text", "give json or text, not both")
    statuses = doc.get("expect_status", ["2xx"])
    if isinstance(statuses, str | int):
        statuses = [statuses]
    if not isinstance(statuses, list) or not statuses:
        raise ValidationError("expect_status", "must be a list of codes like 200, 2xx, 200-204")
    for status in statuses:
        if not _STATUS.match(str(status)):
            raise ValidationError("expect_status", f"{status!r} is not like 200, 2xx or 200-204")
    cap = doc.get("max_response_bytes", 65536)
    if isinstance(cap, bool) or not isinstance(cap, int) or not 0 <= cap <= MAX_RESPONSE_BYTES:
        raise ValidationError(
            "max_response_bytes", f"must be an integer from 0 to {MAX_RESPONSE_BYTES}"
        )
    signing = doc.get("signing")
    parsed_signing = None if signing is None else _parse_signing(signing)
    text = doc.get("text")
    return HttpSpec(
        method=method.upper(),
        url=url,
        headers=string_map(doc.get("headers", {}), "headers"),
        json=doc.get("json"),
        text=None if text is None else _string(text, "text"),
        expect_status=tuple(str(status) for status in statuses),
        max_response_bytes=cap,
        signing=parsed_signing,
    )


_SIGV4_KEYS = {
    "kind",
    "service",
    "region",
    "access_key_env",
    "secret_key_env",
    "session_token_env",
}


def _parse_signing(value: object) -> HmacSigning | SigV4Signing:
    kind = value.get("kind") if isinstance(value, Mapping) else None
    if kind == "hmac-sha256":
        doc = _mapping(value, "signing", {"kind", "secret_env"})
        return HmacSigning(secret_env=check_env_name(doc.get("secret_env"), "signing.secret_env"))
    if kind == "aws-sigv4":
        doc = _mapping(value, "signing", _SIGV4_KEYS)
        defaults = SigV4Signing(service="x", region="x")

        def env(key: str, default: str) -> str:
            return check_env_name(doc.get(key, default), f"signing.{key}")

        return SigV4Signing(
            service=_word(doc.get("service"), "signing.service"),
            region=_word(doc.get("region"), "signing.region"),
            access_key_env=env("access_key_env", defaults.access_key_env),
            secret_key_env=env("secret_key_env", defaults.secret_key_env),
            session_token_env=env("session_token_env", defaults.session_token_env),
        )
    raise ValidationError("signing.kind", "must be hmac-sha256 or aws-sigv4")


def _word(value: object, field: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9-]{1,64}", value):
        raise ValidationError(field, "must be lower-case letters, digits and hyphens")
    return value


def _parse_lambda(doc: Mapping[str, Any]) -> LambdaSpec:
    function = doc.get("function")
    if not isinstance(function, str) or not re.fullmatch(r"[A-Za-z0-9_:.-]{1,170}", function):
        raise ValidationError("function", "must be a Lambda function name or ARN")
    invocation = doc.get("invocation_type", "RequestResponse")
    if invocation not in ("RequestResponse", "Event"):
        raise ValidationError("invocation_type", "must be RequestResponse or Event")
    region = _word(doc.get("region"), "region")
    endpoint = doc.get("endpoint")
    if endpoint is not None and (
        not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://"))
    ):
        raise ValidationError("endpoint", "must be an http:// or https:// URL")
    signing = doc.get("signing", {"kind": "aws-sigv4", "service": "lambda", "region": region})
    parsed = _parse_signing(signing)
    if not isinstance(parsed, SigV4Signing):
        raise ValidationError("signing.kind", "must be aws-sigv4 for lambda")
    cap = doc.get("max_response_bytes", 65536)
    if isinstance(cap, bool) or not isinstance(cap, int) or not 0 <= cap <= MAX_RESPONSE_BYTES:
        raise ValidationError(
            "max_response_bytes", f"must be an integer from 0 to {MAX_RESPONSE_BYTES}"
        )
    qualifier = doc.get("qualifier")
    return LambdaSpec(
        function=function,
        qualifier=None if qualifier is None else _string(qualifier, "qualifier"),
        invocation_type=invocation,
        region=region,
        endpoint=endpoint,
        signing=parsed,
        max_response_bytes=cap,
    )


def _flag(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, "must be true or false")
    return value


def parse_command(value: object, field: str, *, shell: bool = False) -> tuple[str, ...]:
    """A non-empty argv of strings; a plain string is taken as one shell line."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError(field, "must be a non-empty list of strings")
    if not all(isinstance(arg, str) for arg in value):
        raise ValidationError(field, "must be a list of strings")
    if value[0] == "":
        raise ValidationError(field, "the program must not be an empty string")
    if shell and len(value) != 1:
        raise ValidationError(field, "must be a single shell line when shell is true")
    return tuple(value)


def parse_environment(value: object, field: str) -> dict[str, str]:
    if isinstance(value, dict) and not value:
        return {}
    env = string_map(value, field)
    for name in env:
        check_env_name(name, f"{field}.{name}")
    return env


def _parse_resources(value: object) -> Resources:
    doc = _mapping(value, "resources", {"vcpus", "memory_mib", "gpus"})
    return Resources(
        vcpus=_optional(doc, "vcpus", _positive_number, "resources."),
        memory_mib=_optional(doc, "memory_mib", _positive_int, "resources."),
        gpus=_optional(doc, "gpus", _non_negative_int, "resources."),
    )


def _parse_retry(value: object) -> RetryPolicy:
    doc = _mapping(value, "retry", {"attempts", "backoff_base", "backoff_max", "evaluate_on_exit"})
    attempts = _optional(doc, "attempts", check_attempts, "retry.") or 1
    base = _optional(doc, "backoff_base", _non_negative_number, "retry.")
    maximum = _optional(doc, "backoff_max", _non_negative_number, "retry.")
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


def _parse_rule(value: object, field: str) -> ExitRule:
    doc = _mapping(value, field, {"action", "on_exit_code", "on_reason", "on_status_reason"})
    action = doc.get("action")
    if not isinstance(action, str) or action.upper() not in ExitAction.__members__:
        raise ValidationError(f"{field}.action", "must be RETRY or EXIT")
    globs: dict[str, str | None] = {}
    for key, check, rule in (
        ("on_exit_code", is_valid_exit_code_glob, "digits with an optional trailing *"),
        (
            "on_reason",
            is_valid_reason_glob,
            "letters, digits, '.', ':' and spaces, optional trailing *",
        ),
        (
            "on_status_reason",
            is_valid_reason_glob,
            "letters, digits, '.', ':' and spaces, optional trailing *",
        ),
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
    return _positive_number(value, field)


def _optional(
    doc: Mapping[str, Any], key: str, check: Callable[[object, str], T], prefix: str = ""
) -> T | None:
    value = doc.get(key)
    return None if value is None else check(value, prefix + key)


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, "must be a number")
    return float(value)


def _positive_number(value: object, field: str) -> float:
    number = _number(value, field)
    if number <= 0:
        raise ValidationError(field, "must be greater than 0")
    return number


def _non_negative_number(value: object, field: str) -> float:
    number = _number(value, field)
    if number < 0:
        raise ValidationError(field, "must not be negative")
    return number


def _integer(value: object, field: str, *, minimum: int, rule: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(field, rule)
    return value


def _positive_int(value: object, field: str) -> int:
    return _integer(value, field, minimum=1, rule="must be a positive integer")


def _non_negative_int(value: object, field: str) -> int:
    return _integer(value, field, minimum=0, rule="must be a non-negative integer")


def _log_cap(value: object, field: str) -> int:
    cap = _positive_int(value, field)
    if cap < 1024:
        raise ValidationError(field, "must be at least 1024 bytes")
    return cap


def _string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    return value


def _mapping(value: object, field: str, keys: frozenset[str] | set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a mapping")
    for key in value:
        if key not in keys:
            raise ValidationError(f"{field}.{key}", f"is not a field of {field}")
    return value


def string_map(value: object, field: str) -> dict[str, str]:
    """A mapping of names to strings (numbers are taken as their text), naming the bad entry."""
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a mapping of names to strings")
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValidationError(f"{field}.{key}", "must be a string")
        out[str(key)] = str(item)
    return out


def _signing_document(signing: HmacSigning | SigV4Signing) -> dict[str, Any]:
    if isinstance(signing, HmacSigning):
        return {"kind": signing.kind, "secret_env": signing.secret_env}
    return {
        "kind": signing.kind,
        "service": signing.service,
        "region": signing.region,
        "access_key_env": signing.access_key_env,
        "secret_key_env": signing.secret_key_env,
        "session_token_env": signing.session_token_env,
    }


def _without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _executor_document(executor: ExecutorSpec) -> dict[str, Any]:
    """The executor's fields of a definition document (optional ones only when set)."""
    match executor:
        case ProcessSpec(command=command, shell=shell, working_dir=working_dir):
            return _without_none(command=list(command), shell=shell, working_dir=working_dir)
        case PythonSpec(function=function, isolation=isolation):
            return {"function": function, "isolation": isolation}
        case HttpSpec() as http:
            return _without_none(
                method=http.method,
                url=http.url,
                headers=dict(http.headers),
                expect_status=list(http.expect_status),
                max_response_bytes=http.max_response_bytes,
                json=http.json,
                text=http.text,
                signing=None if http.signing is None else _signing_document(http.signing),
            )
        case LambdaSpec() as call:
            return _without_none(
                function=call.function,
                invocation_type=call.invocation_type,
                region=call.region,
                signing=_signing_document(call.signing),
                max_response_bytes=call.max_response_bytes,
                qualifier=call.qualifier,
                endpoint=call.endpoint,
            )
        case DockerSpec() as docker:
            return _without_none(
                image=docker.image,
                command=None if docker.command is None else list(docker.command),
                entrypoint=None if docker.entrypoint is None else list(docker.entrypoint),
                working_dir=docker.working_dir,
                user=docker.user,
                registry_username=docker.registry_username,
                registry_password_env=docker.registry_password_env,
                non_root=docker.non_root,
                network_mode=docker.network_mode,
                read_only=docker.read_only,
                tmpfs=dict(docker.tmpfs),
                pull=docker.pull,
            )


def definition_document(name: str, spec: DefinitionSpec) -> dict[str, Any]:
    """The spec as a document that :func:`parse_definition` reads back to an equal spec."""
    doc: dict[str, Any] = {"name": name, "executor": spec.executor.kind}
    doc.update(_executor_document(spec.executor))
    resources = {
        key: value
        for key, value in (
            ("vcpus", spec.resources.vcpus),
            ("memory_mib", spec.resources.memory_mib),
            ("gpus", spec.resources.gpus),
        )
        if value is not None
    }
    retry = spec.retry
    doc.update(
        environment=dict(spec.environment),
        resources=resources,
        timeout=spec.timeout_seconds,
        kill_grace=spec.kill_grace_seconds,
        retry={
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
        },
        queue=spec.queue,
        log_max_bytes=spec.log_max_bytes,
        parameters=dict(spec.parameters),
        description=spec.description,
    )
    return doc
