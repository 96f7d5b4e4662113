"""Bearer tokens: every route but the health checks needs one whose role allows the operation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dockyard.app import Dockyard
from dockyard.domain.tokens import Permission, Token
from dockyard.errors import PermissionDeniedError

__all__ = ["facade", "require"]

#: Declares the bearer scheme in the OpenAPI document (the Authorize button of /docs); the
#: check itself is ours, so that every failure is a problem+json 401.
_bearer = HTTPBearer(auto_error=False, description="A token from `dockyard tokens create`")


async def facade(request: Request) -> Dockyard:
    """Async on purpose: FastAPI runs a plain ``def`` dependency in its threadpool."""
    dockyard: Dockyard = request.app.state.dockyard
    return dockyard


def require(permission: Permission) -> Callable[..., Awaitable[Token]]:
    """A dependency that authenticates the request and checks its role."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Token:
        secret = credentials.credentials if credentials is not None else None
        dockyard: Dockyard = request.app.state.dockyard
        token = await dockyard.authenticate(secret)
        if not token.role.allows(permission):
            raise PermissionDeniedError(f"role {token.role} may not {permission}")
        return token

    return check
