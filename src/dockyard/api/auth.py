"""Bearer tokens: every ``/v1`` route needs one.

The API authenticates: the edge (:class:`~dockyard.api.edge.Authenticate`) turns the bearer
secret into a token from the headers alone, before the body is read, and the routes ask the
facade for a view acting for it (:meth:`Dockyard.acting_as`); the facade decides what the
token's role may do, as for every other edge. A route also names the facade operation it
performs (:func:`allowed`), so that a role the operation refuses gets its 403 before the body is
validated — the permission is the one the operation declares, not a second list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dockyard.api.edge import request_token
from dockyard.app import Dockyard, permission_of
from dockyard.domain.tokens import Token
from dockyard.errors import AuthenticationError, PermissionDeniedError

__all__ = ["acting_facade", "allowed", "caller", "declared_operation", "facade"]

#: Declares the bearer scheme in the OpenAPI document (the Authorize button of /docs); the
#: check itself is ours, so that every failure is a problem+json 401.
_bearer = HTTPBearer(auto_error=False, description="A token from `dockyard tokens create`")


async def facade(request: Request) -> Dockyard:
    """The process's facade. Async on purpose: FastAPI runs a plain ``def`` dependency in its
    threadpool."""
    dockyard: Dockyard = request.app.state.dockyard
    return dockyard


async def caller(
    request: Request,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Token:
    """The live token the edge found in the request's headers. A route the edge did not
    authenticate gets none and answers 401: authentication fails closed."""
    token = request_token(request.scope)
    if token is None:
        raise AuthenticationError("a bearer token is required")
    return token


async def acting_facade(request: Request, token: Annotated[Token, Depends(caller)]) -> Dockyard:
    """The facade acting for the request's token."""
    dockyard: Dockyard = request.app.state.dockyard
    return dockyard.acting_as(token)


def allowed(operation: Callable[..., Any]) -> Any:
    """A route dependency: 403 unless the caller's role may perform ``operation`` (a facade
    method declared with :func:`dockyard.app.core.requires`)."""
    permission = permission_of(operation)
    if permission is None:
        raise TypeError(f"{operation.__qualname__} declares no permission")

    async def check(token: Annotated[Token, Depends(caller)]) -> None:
        if not token.role.allows(permission):
            raise PermissionDeniedError(f"role {token.role} may not {permission}")

    check.__dict__["operation"] = operation  # what declared_operation reads back
    check_type: Callable[..., Awaitable[None]] = check
    return Depends(check_type)


def declared_operation(route: APIRoute) -> Callable[..., Any] | None:
    """The facade operation ``route`` names with :func:`allowed`; None when it names none (a
    ``/v1`` route without one is a mistake that a test catches)."""
    for dependency in route.dependencies:
        operation = getattr(dependency.dependency, "operation", None)
        if operation is not None:
            found: Callable[..., Any] = operation
            return found
    return None
