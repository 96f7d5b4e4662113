"""The ``/v1/definitions`` routes: register, read, roll back and deregister revisions.

``/definitions/{name}/active`` is declared before ``/definitions/{name}/{revision}``, so that
``active`` is never read as a revision number.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dockyard.api.auth import allowed
from dockyard.api.routes.dependencies import App
from dockyard.api.schemas import DefinitionIn, DefinitionOut
from dockyard.app import Definitions
from dockyard.domain.documents import definition_summary

__all__ = ["router"]

router = APIRouter()


@router.post(
    "/definitions",
    status_code=201,
    response_model=DefinitionOut,
    dependencies=[allowed(Definitions.register)],
)
async def register_definition(body: DefinitionIn, app: App) -> dict[str, Any]:
    """Register a definition: revision 1, or the next revision of an existing name."""
    document = body.model_dump(exclude_none=True, by_alias=True)
    return definition_summary(await app.definitions.register(document, name=body.name))


@router.get(
    "/definitions", response_model=list[DefinitionOut], dependencies=[allowed(Definitions.latest)]
)
async def list_definitions(app: App) -> list[dict[str, Any]]:
    """The latest revision of every definition."""
    return [definition_summary(d) for d in await app.definitions.latest()]


@router.get(
    "/definitions/{name}",
    response_model=list[DefinitionOut],
    dependencies=[allowed(Definitions.revisions)],
)
async def describe_definition(name: str, app: App) -> list[dict[str, Any]]:
    """Every revision of a definition, oldest first."""
    return [definition_summary(d) for d in await app.definitions.revisions(name)]


@router.get(
    "/definitions/{name}/active",
    response_model=DefinitionOut,
    dependencies=[allowed(Definitions.get)],
)
async def get_active(name: str, app: App) -> dict[str, Any]:
    """The latest ACTIVE revision: the one ``name`` means when submitting."""
    return definition_summary(await app.definitions.get(name))


@router.get(
    "/definitions/{name}/{revision}",
    response_model=DefinitionOut,
    dependencies=[allowed(Definitions.get)],
)
async def get_revision(name: str, revision: int, app: App) -> dict[str, Any]:
    return definition_summary(await app.definitions.get(f"{name}:{revision}"))


@router.post(
    "/definitions/{name}/rollback",
    status_code=201,
    response_model=DefinitionOut,
    dependencies=[allowed(Definitions.rollback)],
)
async def rollback_definition(name: str, app: App) -> dict[str, Any]:
    """Register a new revision equal to the ACTIVE one before the latest (409 if none)."""
    return definition_summary(await app.definitions.rollback(name))


@router.delete(
    "/definitions/{name}/{revision}",
    response_model=DefinitionOut,
    dependencies=[allowed(Definitions.deregister)],
)
async def deregister_definition(name: str, revision: int, app: App) -> dict[str, Any]:
    """Make a revision INACTIVE: it takes no new jobs."""
    return definition_summary(await app.definitions.deregister(f"{name}:{revision}"))
