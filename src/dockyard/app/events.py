"""The event bus as a resource: put events (PutEvents), registry notifications, recent events,
and TestEventPattern."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.app.core import Resource, requires
from dockyard.domain.events import Event, parse_entries
from dockyard.domain.patterns import matches as pattern_matches
from dockyard.domain.registry import (
    DOCKYARD_REGISTRY_SOURCE,
    IMAGE_PUSHED,
    parse_notifications,
    push_detail,
)
from dockyard.domain.tokens import Permission
from dockyard.storage import StoredEvent

__all__ = ["Events"]

READ, OPERATE = Permission.READ, Permission.OPERATE


class Events(Resource):
    __slots__ = ()

    @requires(OPERATE)
    async def put(self, entries: object) -> list[Event]:
        """Put up to ten events on the bus (``PutEvents``): all of them, or none when one is bad."""
        now = self._core.clock.now()
        events = parse_entries(entries, now=now)
        await self._core.storage.events.put(events, now)
        return events

    @requires(OPERATE)
    async def registry_notification(self, body: bytes, content_type: str | None) -> list[Event]:
        """A Docker Distribution notification: each tagged manifest push becomes an
        ``Image Pushed`` event (pulls, deletes and layer pushes are ignored)."""
        now = self._core.clock.now()
        events = [
            Event.new(
                DOCKYARD_REGISTRY_SOURCE,
                IMAGE_PUSHED,
                push_detail(push),
                now=now,
                resources=[f"dockyard:image/{push.image}"],
            )
            for push in parse_notifications(body, content_type)
        ]
        await self._core.storage.events.put(events, now)
        return events

    @requires(READ)
    async def recent(self, limit: int = 100, source: str | None = None) -> list[StoredEvent]:
        """The newest events first."""
        return await self._core.storage.events.recent(limit, source)

    @requires(READ)
    async def test_pattern(
        self, pattern: str | Mapping[str, Any], event: str | Mapping[str, Any]
    ) -> bool:
        """Whether ``event`` matches ``pattern``, as EventBridge's ``TestEventPattern`` says."""
        return pattern_matches(pattern, event)
