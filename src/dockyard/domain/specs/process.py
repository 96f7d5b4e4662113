"""The ``process`` kind in definition documents: a local program, as an argv or one shell line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.domain.fields import flag, optional, parse_command, string
from dockyard.domain.records import ProcessSpec
from dockyard.domain.specs.kind import ExecutorKind, FieldShape, without_none

__all__ = ["PROCESS"]


def parse(doc: Mapping[str, Any]) -> ProcessSpec:
    # shell first: it decides whether the command may be more than one string.
    shell = flag(doc.get("shell", False), "shell")
    working_dir = optional(doc, "working_dir", string)
    return ProcessSpec(
        command=parse_command(doc.get("command"), "command", shell=shell),
        shell=shell,
        working_dir=working_dir,
    )


def document(spec: ProcessSpec) -> dict[str, Any]:
    return without_none(command=list(spec.command), shell=spec.shell, working_dir=spec.working_dir)


PROCESS = ExecutorKind(
    name="process",
    record=ProcessSpec,
    fields={
        "command": FieldShape(accepts=list[str] | str, writes=list[str]),
        "shell": FieldShape(accepts=bool),
        "working_dir": FieldShape(accepts=str),
    },
    parse=parse,
    document=document,
)
