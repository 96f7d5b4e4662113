"""The table of executor kinds that definition documents may name, in the order users see them.

:func:`dockyard.domain.definitions.parse_definition` and ``definition_document`` dispatch on it;
the API's definition schemas and the CLI's ``--executor`` are built from it. Adding a kind is one
module in this package (its record, fields, parser and writer) and one line in ``_BUILT_IN``;
the executor that runs it registers in ``dockyard.executors.registry``.

The table is filled when this module is imported and may grow through :func:`register_kind`
(tests register toy kinds). The edges read it when they are imported, so a kind registered later
parses and runs but is missing from the API schema and the CLI's choices.
"""

from __future__ import annotations

from typing import Any

from dockyard.domain.specs.aws_lambda import LAMBDA
from dockyard.domain.specs.docker import DOCKER
from dockyard.domain.specs.http import HTTP
from dockyard.domain.specs.kind import ExecutorKind
from dockyard.domain.specs.process import PROCESS
from dockyard.domain.specs.python import PYTHON
from dockyard.errors import ValidationError

__all__ = ["executor_kind", "executor_kinds", "kind_names", "kind_of", "register_kind"]

_BUILT_IN: tuple[ExecutorKind[Any], ...] = (PROCESS, PYTHON, DOCKER, HTTP, LAMBDA)

# Insertion order is the order of every list users see ("must be one of process, python, …").
_KINDS: dict[str, ExecutorKind[Any]] = {}


def register_kind(kind: ExecutorKind[Any]) -> None:
    """Add ``kind``; a name is registered once (a second registration is a wiring mistake)."""
    if kind.name in _KINDS:
        raise ValueError(f"executor kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind


def executor_kind(name: object) -> ExecutorKind[Any]:
    """The kind ``executor: name`` names, or a :class:`ValidationError` listing the kinds."""
    kind = _KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ValidationError("executor", f"must be one of {', '.join(_KINDS)}")
    return kind


def kind_of(spec: object) -> ExecutorKind[Any]:
    """The kind whose record ``spec`` is."""
    for kind in _KINDS.values():
        if isinstance(spec, kind.record):
            return kind
    raise ValueError(f"no executor kind has records of type {type(spec).__name__}")


def executor_kinds() -> tuple[ExecutorKind[Any], ...]:
    return tuple(_KINDS.values())


def kind_names() -> tuple[str, ...]:
    return tuple(_KINDS)


for _kind in _BUILT_IN:
    register_kind(_kind)
