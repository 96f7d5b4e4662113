"""The events port: the bus that rules read (an outbox: Dockyard's own events are written by the
transaction of the change they announce)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from dockyard.domain.events import Event
from dockyard.storage.ports.rules import NewInvocation

__all__ = ["EventStore", "StoredEvent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvent:
    """An event on the bus: its envelope and its place in arrival order."""

    seq: int
    envelope: Mapping[str, Any]
    received_at: datetime
    #: The causation depth: of the job a ``dockyard.job`` event is about, else 0. Read by
    #: :meth:`EventStore.unrouted` (the rules leader's); 0 elsewhere.
    depth: int = 0


class EventStore(Protocol):
    async def put(self, events: Sequence[Event], now: datetime) -> int:
        """Put events on the bus, in one transaction; return how many were kept.

        The bus keeps events only while some rule is enabled (with none, nothing reads them):
        Dockyard's own events, written by the database with the change they announce, follow the
        same rule.
        """
        ...

    async def recent(self, limit: int, source: str | None = None) -> list[StoredEvent]:
        """The newest events first."""
        ...

    async def unrouted(self, limit: int) -> list[StoredEvent]:
        """Events no rules leader has matched yet, oldest first, with their causation depth."""
        ...

    async def route(
        self, seqs: Sequence[int], invocations: Sequence[NewInvocation], now: datetime
    ) -> int:
        """In one transaction: record the invocations (one per rule, target and event: a
        repeat is dropped, and so is one whose rule is gone; each in its state, PENDING or not
        made) and mark the events routed; return the invocations recorded."""
        ...

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` routed events received before ``before`` (invocations keep
        their copy), and up to ``limit`` invocations DELIVERED, THROTTLED or REFUSED before it
        (the dead list stays); return the larger count (a full batch: more may be left)."""
        ...
