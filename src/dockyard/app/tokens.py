"""Tokens as a resource (admins only), and authentication: which token a secret is.

A token is looked up by the SHA-256 of its secret. Each process trusts a token it has just
checked for :data:`TOKEN_CACHE_SECONDS`, so a busy API server does not read the store on every
request; a revoke made through this process takes effect at once, one made through another
process within that time. An expiry is checked on every request, cached or not.

A token's last use is written when the store is read for it (at most once a second per token
and process) and only when the recorded one is older than a minute, so a busy token costs about
one write a minute, not one per request.
"""

from __future__ import annotations

import builtins
import os
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from dockyard.app.core import Core, Resource, requires
from dockyard.domain.tokens import (
    LAST_USED_RESOLUTION,
    Permission,
    Token,
    expiry,
    generate_secret,
    hash_secret,
    parse_role,
)
from dockyard.errors import AuthenticationError, NotFoundError, ValidationError
from dockyard.settings import private_directory

__all__ = ["TOKEN_CACHE_SECONDS", "Tokens", "authenticate", "ensure_admin_token"]

ADMINISTER = Permission.ADMINISTER
TOKEN_CACHE_SECONDS = 1.0
TOKEN_CACHE_SIZE = 1024


class Tokens(Resource):
    __slots__ = ()

    @requires(ADMINISTER)
    async def create(
        self,
        name: str,
        role: str,
        *,
        expires_at: datetime | None = None,
        expires_in: timedelta | None = None,
    ) -> tuple[Token, str]:
        """A new token and its secret; the secret is not kept and cannot be shown again.

        It expires at ``expires_at`` or ``expires_in`` from now (give one at most); without
        either it lasts until revoked.
        """
        return await _create(self._core, name, role, expires_at=expires_at, expires_in=expires_in)

    @requires(ADMINISTER, changes=False)
    async def list(self) -> builtins.list[Token]:
        return await self._core.storage.tokens.all()

    @requires(ADMINISTER)
    async def revoke(self, token_id: str) -> Token:
        token = await self._core.storage.tokens.revoke(token_id, self._core.clock.now())
        self._core.token_cache.clear()
        if token is None:
            raise NotFoundError("token", token_id)
        return token


async def _create(
    core: Core,
    name: str,
    role: str,
    *,
    expires_at: datetime | None = None,
    expires_in: timedelta | None = None,
) -> tuple[Token, str]:
    if not isinstance(name, str) or not 1 <= len(name) <= 128 or not name.isprintable():
        raise ValidationError("name", "must be 1-128 printable characters")
    now = core.clock.now()
    token = Token(
        id=uuid.uuid4().hex[:12],
        name=name,
        role=parse_role(role),
        created_at=now,
        expires_at=expiry(now, expires_at=expires_at, expires_in=expires_in),
    )
    secret = generate_secret()
    await core.storage.tokens.insert(token, hash_secret(secret))
    return token, secret


async def authenticate(core: Core, secret: str | None) -> Token:
    """The live token whose secret this is; AuthenticationError otherwise."""
    if not secret:
        raise AuthenticationError("a bearer token is required")
    digest = hash_secret(secret)
    moment = time.monotonic()
    cached = core.token_cache.get(digest)
    if cached is not None and cached[1] > moment:
        token = cached[0]
    else:
        token = await _look_up(core, digest)
        if len(core.token_cache) >= TOKEN_CACHE_SIZE:
            core.token_cache.clear()
        core.token_cache[digest] = (token, moment + TOKEN_CACHE_SECONDS)
    if token.expires_at is not None and token.expired(core.clock.now()):
        raise AuthenticationError(f"the token expired at {token.expires_at.isoformat()}")
    return token


async def _look_up(core: Core, digest: str) -> Token:
    """The token with this hash from the store, its last use brought up to date."""
    token = await core.storage.tokens.find(digest)
    if token is None or token.revoked_at is not None:
        core.token_cache.pop(digest, None)
        raise AuthenticationError("the token is unknown or revoked")
    now = core.clock.now()
    if token.used_long_ago(now) and not token.expired(now):
        await core.storage.tokens.touch(token.id, now, now - LAST_USED_RESOLUTION)
        token = replace(token, last_used_at=now)
    return token


async def ensure_admin_token(core: Core, server_url: str | None = None) -> str | None:
    """On first start, create an admin token and write it to ``<home>/token`` (mode 0600).

    ``server_url`` is the URL of the server starting from this home: the token file is bound
    to it (``<home>/token.url``), so the CLI and the SDK send the file's token to that server
    only. Any server started from the home could read the file anyway, so each start binds it
    anew. Returns the secret when one was created, None when tokens already exist.
    """
    settings = core.settings
    secret = None
    if not await core.storage.tokens.all():
        _, secret = await _create(core, "admin (created by the first start)", "admin")
        _write_private(settings.token_file, secret)
    if server_url is not None and settings.token_file.exists():
        _write_private(settings.token_url_file, server_url)
    return secret


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` and a newline to a file only its owner may read (mode 0600)."""
    private_directory(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a file left by an older version may have been readable
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")
