"""What the domain knows about one executor kind: its fields, its parser, its document writer.

An :class:`ExecutorKind` is the whole description of a kind for everything but running it: the
definition parser dispatches on it, the definition writer asks it for the kind's fields, the API
declares its fields in the request and response schemas, and the CLI lists it in
``--executor``. Running it is the executors layer's business (``dockyard.executors.registry``),
which the domain never imports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["ExecutorKind", "FieldShape", "without_none"]

S = TypeVar("S")


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldShape:
    """The JSON shape of one executor field, for the edges that declare fields by type.

    ``accepts`` is what a document may give (a type such as ``bool`` or ``list[str] | str``);
    ``writes`` is what the document writer gives back, when narrower (``list[str]``).
    """

    accepts: object
    writes: object = None

    @property
    def written(self) -> object:
        return self.accepts if self.writes is None else self.writes


def _admit_anything(spec: Any) -> None:
    """Every spec of the right shape may be registered."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorKind(Generic[S]):
    """One executor kind of definition documents, ``executor: <name>``.

    ``parse`` reads the whole document (it may look at common fields) and returns the kind's
    spec record, raising :class:`~dockyard.errors.ValidationError` naming the first bad field;
    ``document`` writes that record's fields back so that ``parse`` reads an equal record.
    ``fields`` holds every key the kind adds to the common ones, in the order help lists them.
    ``admit`` checks what a definition may ask for when it is registered, beyond its shape (a
    function of the standard library, a ``Host`` header…): those rules tighten over time, so a
    definition stored before one was added must still read back, and what it asks for is then
    refused where it would run.
    """

    name: str
    record: type[S]
    fields: Mapping[str, FieldShape]
    parse: Callable[[Mapping[str, Any]], S]
    document: Callable[[S], dict[str, Any]]
    admit: Callable[[S], None] = _admit_anything


def without_none(**fields: Any) -> dict[str, Any]:
    """The fields that are set: documents leave out optional fields that are not."""
    return {key: value for key, value in fields.items() if value is not None}
