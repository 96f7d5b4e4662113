"""Tokens as a resource (admins only), and authentication: which token a secret is.

A token is looked up by the SHA-256 of its secret. Each process trusts a token it has just
checked for :data:`TOKEN_CACHE_SECONDS`, so a busy API server does not read the store on every
request; a revoke made through this process takes effect at once, one made through another
process within that time.
"""

from __future__ import annotations

import builtins
import os
import time
import uuid

from dockyard.app.core import Core, Resource, requires
from dockyard.domain.tokens import Permission, Token, generate_secret, hash_secret, parse_role
from dockyard.errors import AuthenticationError, NotFoundError, ValidationError

__all__ = ["TOKEN_CACHE_SECONDS", "Tokens", "authenticate", "ensure_admin_token"]

ADMINISTER = Permission.ADMINISTER
TOKEN_CACHE_SECONDS = 1.0
TOKEN_CACHE_SIZE = 1024


class Tokens(Resource):
    __slots__ = ()

    @requires(ADMINISTER)
    async def create(self, name: str, role: str) -> tuple[Token, str]:
        """A new token and its secret; the secret is not kept and cannot be shown again."""
        return await _create(self._core, name, role)

    @requires(ADMINISTER)
    async def list(self) -> builtins.list[Token]:
        return await self._core.storage.tokens.all()

    @requires(ADMINISTER)
    async def revoke(self, token_id: str) -> Token:
        token = await self._core.storage.tokens.revoke(token_id, self._core.clock.now())
        self._core.token_cache.clear()
        if token is None:
            raise NotFoundError("token", token_id)
        return token


async def _create(core: Core, name: str, role: str) -> tuple[Token, str]:
    if not isinstance(name, str) or not 1 <= len(name) <= 128 or not name.isprintable():
        raise ValidationError("name", "must be 1-128 printable characters")
    token = Token(
        id=uuid.uuid4().hex[:12], name=name, role=parse_role(role), created_at=core.clock.now()
    )
    secret = generate_secret()
    await core.storage.tokens.insert(token, hash_secret(secret))
    return token, secret


async def authenticate(core: Core, secret: str | None) -> Token:
    """The live token whose secret this is; AuthenticationError otherwise."""
    if not secret:
        raise AuthenticationError("a bearer token is required")
    digest = hash_secret(secret)
    now = time.monotonic()
    cached = core.token_cache.get(digest)
    if cached is not None and cached[1] > now:
        return cached[0]
    token = await core.storage.tokens.find(digest)
    if token is None or token.revoked_at is not None:
        core.token_cache.pop(digest, None)
        raise AuthenticationError("the token is unknown or revoked")
    if len(core.token_cache) >= TOKEN_CACHE_SIZE:
        core.token_cache.clear()
    core.token_cache[digest] = (token, now + TOKEN_CACHE_SECONDS)
    return token


async def ensure_admin_token(core: Core) -> str | None:
    """On first start, create an admin token and write it to ``<home>/token`` (mode 0600).

    Returns the secret when one was created, None when tokens already exist.
    """
    if await core.storage.tokens.all():
        return None
    _, secret = await _create(core, "admin (created by the first start)", "admin")
    path = core.settings.token_file
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    return secret
