"""Bearer tokens: every route but the health checks needs one.

The API authenticates: it turns the bearer secret into a token and asks the facade for a view
acting for it (:meth:`Dockyard.acting_as`), and the facade decides what the token's role may do,
as for every other edge. A route also names the facade operation it performs
(:func:`allowed`), so that a role the operation refuses gets its 403 before the body is
validated — the permission is the one the operation declares, not a second list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dockyard.app import Dockyard, permission_of
from dockyard.domain.tokens import Token
from dockyard.errors import PermissionDeniedError

__all__ = ["acting_facade", "allowed", "caller", "facade"]

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
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Token:
    """The live token of the request (401 without one); FastAPI asks once per request."""
    dockyard: Dockyard = request.app.state.dockyard
    return await dockyard.authenticate(credentials.credentials if credentials else None)


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

    check_type: Callable[..., Awaitable[None]] = check
    return Depends(check_type)
