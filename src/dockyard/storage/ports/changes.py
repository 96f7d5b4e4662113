"""The change feed: waiters sleep until a write commits, in this process or (where the backend
can tell) in another."""

from __future__ import annotations

from typing import Protocol

__all__ = ["ChangeFeed"]


class ChangeFeed(Protocol):
    def token(self) -> int:
        """A counter to pass to :meth:`wait`; read it before looking at what may change."""
        ...

    async def wait(self, token: int, timeout: float) -> None:
        """Return soon after a write committed since ``token`` was read, or after ``timeout``."""
        ...
