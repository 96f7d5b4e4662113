"""The ``docker`` kind in definition documents: a container image on the worker's Docker engine.

A container starts with no Linux capability at all and ``no-new-privileges``; ``cap_add`` names
the few it keeps, as ECS's ``linuxParameters.capabilities.add`` does. Only Docker's default set
(:data:`ADDABLE_CAPABILITIES`: what every container had before) may be named: the others
(``SYS_ADMIN``, ``SYS_MODULE``, ``DAC_READ_SEARCH``, ``SYS_PTRACE``…) hand a container the
host, and whoever may register a definition must not get that. The capability names are the
kernel's (``linux/capability.h``), written out here because the standard library has no table
of them and the domain imports nothing else.

``network_mode: host`` and the image's registry are accepted here and judged by the worker that
runs the job (its policy, :mod:`dockyard.policy`): the worker's owner decides, not the
definition.
"""

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

__all__ = ["ADDABLE_CAPABILITIES", "CAPABILITIES", "DOCKER", "image_registry", "normal_registry"]

_PULL_POLICIES = ("always", "if-not-present", "never")
_NETWORK_MODES = ("bridge", "none", "host")
#: An image reference: [registry[:port]/]repository[:tag][@digest], as Docker accepts it.
_IMAGE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_ARGV = FieldShape(accepts=list[str] | str, writes=list[str])
#: Docker's ``--user``: a user name or uid, and optionally ``:`` a group name or gid.
_ID = r"(?:[0-9]{1,10}|[A-Za-z_][A-Za-z0-9_.-]{0,31})"
_USER = re.compile(rf"^{_ID}(?::{_ID})?$")
#: Every Linux capability, by bit number (``CAP_NET_RAW`` is bit 13).
CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
)
#: What a definition may add back: Docker's default set (moby ``oci/caps/defaults.go``).
ADDABLE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
#: Docker Hub, under the names it goes by.
_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


def image_registry(image: str) -> str:
    """The registry an image comes from, as Docker reads its name: the first part of a
    qualified name (``host[:port]`` or ``localhost``), else ``docker.io``; lower case."""
    first, slash, _ = image.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        return "docker.io"
    return normal_registry(first)


def normal_registry(name: str) -> str:
    """A registry name as compared: lower case, Docker Hub's aliases as ``docker.io``."""
    name = name.strip().lower().rstrip("/")
    return "docker.io" if name in _DOCKER_HUB else name


def _user(value: object, field: str) -> str:
    if not isinstance(value, str) or not _USER.match(value):
        raise ValidationError(
            field, "must be a user name or uid, optionally with :group or :gid (1000:1000)"
        )
    return value


def _capabilities(value: object, field: str) -> tuple[str, ...]:
    """Capability names, upper case without ``CAP_``, once each, in the order given."""
    if not isinstance(value, list | tuple):
        raise ValidationError(field, "must be a list of capability names such as NET_RAW")
    names: list[str] = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, str):
            raise ValidationError(where, "must be a capability name such as NET_RAW")
        name = item.strip().upper().removeprefix("CAP_")
        if name == "ALL":
            raise ValidationError(where, "ALL is refused: name each capability the job needs")
        if name not in CAPABILITIES:
            raise ValidationError(where, f"{item!r} is not a Linux capability name")
        if name not in ADDABLE_CAPABILITIES:
            raise ValidationError(
                where,
                f"{name} cannot be added: only Docker's default capabilities may be"
                f" ({', '.join(sorted(ADDABLE_CAPABILITIES))})",
            )
        if name not in names:
            names.append(name)
    return tuple(names)


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
        user=optional(doc, "user", _user),
        non_root=flag(doc.get("non_root", False), "non_root"),
        cap_add=_capabilities(doc.get("cap_add", []), "cap_add"),
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
        cap_add=list(spec.cap_add),
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
        "cap_add": FieldShape(accepts=list[str]),
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
