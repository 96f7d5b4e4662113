"""Definitions from AWS documents as teams already have them: ECS task definitions, Batch job
definitions (``aws ecs describe-task-definition`` / ``register-task-definition`` JSON, and
``aws batch describe-job-definitions`` / ``register-job-definition`` JSON).

Each function returns a Dockyard definition document (for :func:`parse_definition`) and the
list of fields it did not carry over, which the caller shows as a warning: nothing is dropped
silently. A file that is not such a document gets a :class:`ValidationError` naming the field.

No library converts these (boto3 only sends them to AWS), so the mapping is written here:

- ECS: ``family`` → name; the first essential container's ``image``, ``command``,
  ``entryPoint``, ``environment``, ``workingDirectory``, ``user``,
  ``readonlyRootFilesystem``, ``linuxParameters.tmpfs``, ``linuxParameters.capabilities.add``
  (less ``drop``; a container keeps no other capability); its ``cpu`` units (1,024 = 1 vCPU)
  and ``memory`` (else ``memoryReservation``) in MiB, else the task-level ``cpu`` and
  ``memory``. ``privileged: true`` is refused: no Dockyard container runs privileged.
- Batch: ``jobDefinitionName`` → name; ``containerProperties`` as above plus
  ``resourceRequirements`` (VCPU, MEMORY, GPU); ``retryStrategy`` with ``evaluateOnExit``;
  ``timeout.attemptDurationSeconds``; ``parameters`` (defaults for ``Ref::name`` in the command).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dockyard.errors import ValidationError

__all__ = ["definition_from_batch", "definition_from_ecs"]

#: Container fields carried over, by ECS and Batch name (the rest is reported).
_CONTAINER_FIELDS = {
    "name",
    "image",
    "command",
    "entryPoint",
    "environment",
    "workingDirectory",
    "user",
    "readonlyRootFilesystem",
    "linuxParameters",
    "cpu",
    "memory",
    "memoryReservation",
    "essential",
    "privileged",
    "vcpus",
    "resourceRequirements",
}
#: Fields that only describe the document, or that AWS fills in: not worth a warning.
_ECS_QUIET = {
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
}
_BATCH_QUIET = {"jobDefinitionArn", "revision", "status", "type", "containerOrchestrationType"}
_UNITS = {"b": 1 / 2**20, "kb": 1 / 1024, "mb": 1, "mib": 1, "gb": 1024, "gib": 1024}


def definition_from_ecs(doc: object) -> tuple[dict[str, Any], list[str]]:
    """A definition document from an ECS task definition, and the fields it left out."""
    task = _unwrap(doc, "taskDefinition")
    family = task.get("family")
    if not isinstance(family, str) or not family:
        raise ValidationError("family", "is required: the task definition's family")
    containers = task.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        raise ValidationError("containerDefinitions", "must list at least one container")
    for index, container in enumerate(containers):
        if not isinstance(container, Mapping):
            raise ValidationError(f"containerDefinitions[{index}]", "must be a mapping")
    essential = [c for c in containers if c.get("essential", True)] or containers
    container = essential[0]
    ignored = [
        f"containerDefinitions[{containers.index(other)}] ({other.get('name', '?')})"
        for other in containers
        if other is not container
    ]
    document, left_out = _container(container, "containerDefinitions[0]")
    document["name"] = family
    ignored += left_out
    resources = document.setdefault("resources", {})
    if "vcpus" not in resources and task.get("cpu") is not None:
        resources["vcpus"] = _task_cpu(task["cpu"])
    if "memory_mib" not in resources and task.get("memory") is not None:
        resources["memory_mib"] = _task_memory(task["memory"])
    if not resources:
        del document["resources"]
    network = task.get("networkMode")
    if network in ("none", "host", "bridge"):
        document["network_mode"] = network
    elif network is not None:
        ignored.append(f"networkMode ({network}: runs as bridge)")
    known = {"family", "containerDefinitions", "cpu", "memory", "networkMode"} | _ECS_QUIET
    ignored += sorted(key for key in task if key not in known)
    return document, ignored


def definition_from_batch(doc: object) -> tuple[dict[str, Any], list[str]]:
    """A definition document from an AWS Batch job definition, and the fields it left out."""
    job = _unwrap(doc, "jobDefinitions")
    name = job.get("jobDefinitionName")
    if not isinstance(name, str) or not name:
        raise ValidationError("jobDefinitionName", "is required")
    if job.get("type", "container") != "container":
        raise ValidationError("type", "only container job definitions can be imported")
    properties = job.get("containerProperties")
    if not isinstance(properties, Mapping):
        raise ValidationError("containerProperties", "is required: the container to run")
    document, ignored = _container(properties, "containerProperties")
    document["name"] = name
    retry = job.get("retryStrategy")
    if retry is not None:
        document["retry"] = _retry(retry)
    timeout = job.get("timeout")
    if timeout is not None:
        if not isinstance(timeout, Mapping) or "attemptDurationSeconds" not in timeout:
            raise ValidationError("timeout", "must be {attemptDurationSeconds: N}")
        document["timeout"] = timeout["attemptDurationSeconds"]
    parameters = job.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, Mapping):
            raise ValidationError("parameters", "must be a mapping of names to defaults")
        document["parameters"] = {str(k): str(v) for k, v in parameters.items()}
    known = {
        "jobDefinitionName",
        "containerProperties",
        "retryStrategy",
        "timeout",
        "parameters",
    } | _BATCH_QUIET
    ignored += sorted(key for key in job if key not in known)
    return document, ignored


def _unwrap(doc: object, plural_or_key: str) -> Mapping[str, Any]:
    """The document itself, or the one inside a describe-… answer."""
    if not isinstance(doc, Mapping):
        raise ValidationError("file", "must hold a JSON object")
    inner = doc.get(plural_or_key)
    if isinstance(inner, Mapping):
        return inner
    if isinstance(inner, list):
        if len(inner) != 1 or not isinstance(inner[0], Mapping):
            raise ValidationError(plural_or_key, "must hold exactly one definition to import")
        return inner[0]
    return doc


def _container(container: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    image = container.get("image")
    if not isinstance(image, str) or not image:
        raise ValidationError(f"{where}.image", "is required")
    document: dict[str, Any] = {"executor": "docker", "image": image}
    for source, target in (("command", "command"), ("entryPoint", "entrypoint")):
        value = container.get(source)
        if value is not None:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValidationError(f"{where}.{source}", "must be a list of strings")
            document[target] = list(value)
    environment = container.get("environment")
    if environment is not None:
        document["environment"] = _environment(environment, f"{where}.environment")
    for source, target in (
        ("workingDirectory", "working_dir"),
        ("user", "user"),
        ("readonlyRootFilesystem", "read_only"),
    ):
        if container.get(source) is not None:
            document[target] = container[source]
    if container.get("privileged"):
        raise ValidationError(
            f"{where}.privileged",
            "is refused: containers run with no capability but linuxParameters.capabilities.add",
        )
    ignored: list[str] = []
    linux = container.get("linuxParameters")
    if isinstance(linux, Mapping):
        ignored += _linux(linux, f"{where}.linuxParameters", document)
    resources = _resources(container, where)
    if resources:
        document["resources"] = resources
    ignored += [f"{where}.{key}" for key in container if key not in _CONTAINER_FIELDS]
    return document, ignored


def _linux(linux: Mapping[str, Any], where: str, document: dict[str, Any]) -> list[str]:
    """``tmpfs`` and ``capabilities`` into ``document``; the other fields, left out."""
    tmpfs = {
        str(mount.get("containerPath")): f"size={int(mount.get('size', 64))}m"
        for mount in linux.get("tmpfs") or []
        if isinstance(mount, Mapping)
    }
    if tmpfs:
        document["tmpfs"] = tmpfs
    added = _capabilities(linux.get("capabilities"), f"{where}.capabilities")
    if added:
        document["cap_add"] = added
    return [f"{where}.{key}" for key in linux if key not in ("tmpfs", "capabilities")]


def _capabilities(value: object, field: str) -> list[str]:
    """``add`` less ``drop``: the definition's ``cap_add`` checks the names."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be {add: [...], drop: [...]}")
    lists: list[list[str]] = []
    for key in ("add", "drop"):
        names = value.get(key) or []
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ValidationError(f"{field}.{key}", "must be a list of capability names")
        lists.append([name.upper().removeprefix("CAP_") for name in names])
    added, dropped = lists
    return [name for name in added if name not in dropped]


def _environment(value: object, field: str) -> dict[str, str]:
    if not isinstance(value, list):
        raise ValidationError(field, "must be a list of {name, value}")
    out: dict[str, str] = {}
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise ValidationError(f"{field}[{index}]", "must be {name, value}")
        out[item["name"]] = str(item.get("value", ""))
    return out


def _resources(container: Mapping[str, Any], where: str) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for requirement in container.get("resourceRequirements") or []:
        kind, value = requirement.get("type"), requirement.get("value")
        try:
            if kind == "VCPU":
                resources["vcpus"] = float(value)
            elif kind == "MEMORY":
                resources["memory_mib"] = int(value)
            elif kind == "GPU":
                resources["gpus"] = int(value)
        except (TypeError, ValueError):
            raise ValidationError(
                f"{where}.resourceRequirements", f"{kind} must be a number, not {value!r}"
            ) from None
    if "vcpus" not in resources:
        if container.get("vcpus") is not None:  # Batch's older field
            resources["vcpus"] = float(container["vcpus"])
        elif container.get("cpu"):  # ECS: CPU units, 1,024 per vCPU
            resources["vcpus"] = int(container["cpu"]) / 1024
    if "memory_mib" not in resources:
        memory = container.get("memory") or container.get("memoryReservation")
        if memory is not None:
            resources["memory_mib"] = int(memory)
    return resources


def _task_cpu(value: object) -> float:
    text = str(value).strip().lower()
    match = re.fullmatch(r"([0-9.]+)\s*vcpu", text)
    try:
        return float(match.group(1)) if match else int(text) / 1024
    except ValueError:
        raise ValidationError("cpu", f"must be CPU units or 'N vCPU', not {value!r}") from None


def _task_memory(value: object) -> int:
    text = str(value).strip().lower()
    match = re.fullmatch(r"([0-9.]+)\s*([a-z]*)", text)
    if match is None or match.group(2) not in ("", *_UNITS):
        raise ValidationError("memory", f"must be MiB or 'N GB', not {value!r}")
    number, unit = float(match.group(1)), match.group(2) or "mb"
    return int(number * _UNITS[unit])


def _retry(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError("retryStrategy", "must be {attempts, evaluateOnExit}")
    retry: dict[str, Any] = {}
    if value.get("attempts") is not None:
        retry["attempts"] = value["attempts"]
    rules = []
    for index, rule in enumerate(value.get("evaluateOnExit") or []):
        if not isinstance(rule, Mapping):
            raise ValidationError(f"retryStrategy.evaluateOnExit[{index}]", "must be a mapping")
        converted = {"action": str(rule.get("action", "")).upper()}
        for source, target in (
            ("onExitCode", "on_exit_code"),
            ("onReason", "on_reason"),
            ("onStatusReason", "on_status_reason"),
        ):
            if rule.get(source) is not None:
                converted[target] = str(rule[source])
        rules.append(converted)
    if rules:
        retry["evaluate_on_exit"] = rules
    return retry
