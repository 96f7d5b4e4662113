"""The tokens port: API tokens, stored by the SHA-256 of their secret."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from dockyard.domain.tokens import Token

__all__ = ["TokenStore"]


class TokenStore(Protocol):
    async def insert(self, token: Token, secret_hash: str) -> None:
        """Store a new token (with its expiry, if it has one)."""
        ...

    async def find(self, secret_hash: str) -> Token | None:
        """The token with this hash, revoked or expired or not."""
        ...

    async def all(self) -> list[Token]:
        """Every token, oldest first."""
        ...

    async def revoke(self, token_id: str, now: datetime) -> Token | None:
        """Revoke a token (once: a second revoke keeps the first time); None when unknown."""
        ...

    async def touch(self, token_id: str, now: datetime, stale_before: datetime) -> None:
        """Record a use of the token at ``now``, unless a use at or after ``stale_before`` is
        recorded already: processes sharing the store write it at most once per interval."""
        ...
