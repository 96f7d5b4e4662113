"""The definitions port: immutable revisions of named definitions."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from dockyard.domain.records import Definition, DefinitionSpec
from dockyard.domain.states import DefinitionStatus

__all__ = ["DefinitionStore"]


class DefinitionStore(Protocol):
    async def insert(self, name: str, spec: DefinitionSpec, now: datetime) -> Definition:
        """Store ``spec`` as the next revision of ``name`` (1 for a new name); concurrent
        registrations of one name get distinct revisions."""
        ...

    async def get(self, name: str, revision: int | None) -> Definition | None:
        """A fixed revision, or the latest ACTIVE one when ``revision`` is None."""
        ...

    async def revisions(self, name: str) -> list[Definition]:
        """Every revision of ``name``, oldest first (empty for an unknown name)."""
        ...

    async def latest(self) -> list[Definition]:
        """The latest revision (ACTIVE or not) of every name, by name."""
        ...

    async def set_status(
        self, name: str, revision: int, status: DefinitionStatus
    ) -> Definition | None:
        """Set a revision's status; None when there is no such revision."""
        ...
