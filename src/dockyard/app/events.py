"""The event bus as a resource: put events (PutEvents), registry notifications, recent events,
and TestEventPattern.

Putting events needs only PUBLISH, which the *publisher* role has without anything else: the
credential a registry keeps in its configuration can put events and read nothing, run nothing.

Testing a pattern is open to viewers, and its cost grows with the pattern (at most
:data:`~dockyard.domain.patterns.MAX_PATTERN_CHARACTERS`) and with the event: it runs on a pool
of :data:`PATTERN_TEST_THREADS` threads of its own, never on the event loop, so that a costly
test delays other tests at most, never the requests the server is answering meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

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

__all__ = ["PATTERN_TEST_THREADS", "Events"]

READ, PUBLISH = Permission.READ, Permission.PUBLISH

#: Pattern tests run at once in one process: the event loop shares the interpreter with at most
#: this many of them, however many viewers test patterns at the same time.
PATTERN_TEST_THREADS: Final = 2
#: Its threads start with the first test; at exit, the tests under way finish first (as in
#: asyncio's default pool).
_pattern_tests = ThreadPoolExecutor(PATTERN_TEST_THREADS, thread_name_prefix="dockyard-pattern")


class Events(Resource):
    __slots__ = ()

    @requires(PUBLISH)
    async def put(self, entries: object) -> list[Event]:
        """Put up to ten events on the bus (``PutEvents``): all of them, or none when one is bad."""
        now = self._core.clock.now()
        events = parse_entries(entries, now=now)
        await self._core.storage.events.put(events, now)
        return events

    @requires(PUBLISH)
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
        """Whether ``event`` matches ``pattern``, as EventBridge's ``TestEventPattern`` says
        (the pattern is checked, compiled for this test only, and matched off the event loop)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_pattern_tests, pattern_matches, pattern, event)
