"""The leadership port: one leader per role among every process sharing the store."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Leadership"]


class Leadership(Protocol):
    async def try_lead(self, role: str) -> bool:
        """Take or keep the leadership of ``role`` among every process sharing this store.

        True while this process holds it. A process that dies loses it at once (a lock the
        operating system or the database server releases), and the next caller takes over.
        """
        ...
