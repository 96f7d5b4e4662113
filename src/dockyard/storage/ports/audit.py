"""The audit port: the trail of changes made through the facade, newest first, pruned by age.

An entry is written after the change it records, by the process that made it; entries are only
ever added and pruned, never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dockyard.domain.tokens import AuditEntry

__all__ = ["AuditQuery", "AuditStore"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditQuery:
    """A page of the trail: at most ``limit`` entries, newest first, older than ``before``."""

    limit: int = 100
    #: The id of the last entry of the previous page (its entries are older); None: the newest.
    before: int | None = None


class AuditStore(Protocol):
    async def record(self, entry: AuditEntry) -> None:
        """Add ``entry`` to the trail (its ``id`` is given by the store; the one passed is
        ignored)."""
        ...

    async def entries(self, query: AuditQuery) -> list[AuditEntry]:
        """The page of the trail ``query`` asks for, newest first."""
        ...

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` entries recorded before ``before``, oldest first; return how
        many (a full batch: more may be left)."""
        ...
