"""Bearer tokens: every route but the health checks needs one whose role allows the operation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from dockyard.app import Dockyard
from dockyard.domain.tokens import Permission, Token
from dockyard.errors import PermissionDeniedError

__all__ = ["facade", "require"]


def facade(request: Request) -> Dockyard:
    dockyard: Dockyard = request.app.state.dockyard
    return dockyard


def require(permission: Permission) -> Callable[[Request], Awaitable[Token]]:
    """A dependency that authenticates the request and checks its role."""

    async def check(request: Request) -> Token:
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        token = await facade(request).authenticate(
            secret.strip() if scheme.lower() == "bearer" else None
        )
        if not token.role.allows(permission):
            raise PermissionDeniedError(f"role {token.role} may not {permission}")
        return token

    return check
