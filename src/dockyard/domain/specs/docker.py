"""The ``docker`` kind in definition documents: a container image on the worker's Docker engine."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dockyard.domain.fields import (
    check_env_name,
    flag,
    optional,
    parse_command,
    string,
    string_map,
)
from dockyard.domain.records import DockerSpec
from dockyard.domain.specs.kind import ExecutorKind, FieldShape, without_none
from dockyard.errors import ValidationError

__all__ = ["DOCKER"]

_PULL_POLICIES = ("always", "if-not-present", "never")
_NETWORK_MODES = ("bridge", "none", "host")
#: An image reference: [registry[:port]/]repository[:tag][@digest], as Docker accepts it.
_IMAGE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_ARGV = FieldShape(accepts=list[str] | str, writes=list[str])


def parse(doc: Mapping[str, Any]) -> DockerSpec:
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
        working_dir=optional(doc, "working_dir", string),
        user=optional(doc, "user", string),
        non_root=flag(doc.get("non_root", False), "non_root"),
        network_mode=network,
        read_only=flag(doc.get("read_only", False), "read_only"),
        tmpfs=tmpfs,
        pull=pull,
        registry_username=optional(doc, "registry_username", string),
        registry_password_env=password_env,
    )


def document(spec: DockerSpec) -> dict[str, Any]:
    return without_none(
        image=spec.image,
        command=None if spec.command is None else list(spec.command),
        entrypoint=None if spec.entrypoint is None else list(spec.entrypoint),
        working_dir=spec.working_dir,
        user=spec.user,
        registry_username=spec.registry_username,
        registry_password_env=spec.registry_password_env,
        non_root=spec.non_root,
        network_mode=spec.network_mode,
        read_only=spec.read_only,
        tmpfs=dict(spec.tmpfs),
        pull=spec.pull,
    )


DOCKER = ExecutorKind(
    name="docker",
    record=DockerSpec,
    fields={
        "image": FieldShape(accepts=str),
        "command": _ARGV,
        "entrypoint": _ARGV,
        "working_dir": FieldShape(accepts=str),
        "user": FieldShape(accepts=str),
        "non_root": FieldShape(accepts=bool),
        "network_mode": FieldShape(accepts=str),
        "read_only": FieldShape(accepts=bool),
        "tmpfs": FieldShape(accepts=dict[str, str]),
        "pull": FieldShape(accepts=str),
        "registry_username": FieldShape(accepts=str),
        "registry_password_env": FieldShape(accepts=str),
    },
    parse=parse,
    document=document,
)
