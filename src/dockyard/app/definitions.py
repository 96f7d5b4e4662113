"""Definitions as a resource: register revisions, read them, deregister, roll back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.app.core import Resource, requires
from dockyard.domain.definitions import (
    admit_definition,
    check_name,
    parse_definition,
    parse_definition_ref,
)
from dockyard.domain.records import Definition
from dockyard.domain.states import DefinitionStatus
from dockyard.domain.tokens import Permission
from dockyard.errors import ConflictError, NotFoundError, ValidationError

__all__ = ["Definitions"]

READ, OPERATE = Permission.READ, Permission.OPERATE


class Definitions(Resource):
    __slots__ = ()

    @requires(OPERATE)
    async def register(self, document: Mapping[str, Any], name: str | None = None) -> Definition:
        """Register ``document`` as the next revision of its name (``name`` wins over the
        document's)."""
        name = check_name(name if name is not None else document.get("name"), "name")
        spec = admit_definition(parse_definition({**document, "name": name}))
        return await self._core.storage.definitions.insert(name, spec, self._core.clock.now())

    @requires(READ)
    async def get(self, ref: str) -> Definition:
        """``name`` (latest ACTIVE revision) or ``name:revision``."""
        return await find_definition(self, ref)

    @requires(READ)
    async def revisions(self, name: str) -> list[Definition]:
        return await self._revisions(name)

    async def _revisions(self, name: str) -> list[Definition]:
        revisions = await self._core.storage.definitions.revisions(check_name(name, "definition"))
        if not revisions:
            raise NotFoundError("definition", name)
        return revisions

    @requires(READ)
    async def latest(self) -> list[Definition]:
        """The latest revision of every definition."""
        return await self._core.storage.definitions.latest()

    @requires(OPERATE)
    async def deregister(self, ref: str) -> Definition:
        name, revision = parse_definition_ref(ref)
        if revision is None:
            raise ValidationError("definition", "name the revision to deregister, as NAME:REVISION")
        definition = await self._core.storage.definitions.set_status(
            name, revision, DefinitionStatus.INACTIVE
        )
        if definition is None:
            raise NotFoundError("definition", ref)
        return definition

    @requires(OPERATE)
    async def rollback(self, name: str) -> Definition:
        """Register a new revision equal to the ACTIVE revision before the latest one, so the
        next job runs what ran before and the history stays linear."""
        active = [
            definition
            for definition in await self._revisions(name)
            if definition.status is DefinitionStatus.ACTIVE
        ]
        if len(active) < 2:
            raise ConflictError(f"definition {name} has no earlier ACTIVE revision to roll back to")
        previous = active[-2]
        return await self._core.storage.definitions.insert(
            name, previous.spec, self._core.clock.now()
        )


async def find_definition(resource: Resource, ref: str) -> Definition:
    """The definition ``ref`` names, for any resource that needs one (no permission of its own:
    the operation that asks has checked it)."""
    name, revision = parse_definition_ref(ref)
    store = resource._core.storage.definitions
    definition = await store.get(name, revision)
    if definition is None:
        if revision is None and await store.revisions(name):
            raise NotFoundError("active revision of definition", name)
        raise NotFoundError("definition", ref)
    return definition
