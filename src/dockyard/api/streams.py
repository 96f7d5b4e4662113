"""Live log streams, counted per token: a token follows at most :data:`MAX_FOLLOWS_PER_TOKEN`
logs at once, and the next one is refused (429) until one of them ends.

A follow stream holds a connection for as long as the job runs, so without a cap one token could
hold every connection the server allows. A slot is taken when the route answers and given back
when the response ends, whether the job ended, the client left or the server is stopping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

__all__ = ["MAX_FOLLOWS_PER_TOKEN", "FollowSlots", "SlotStream"]

#: Log streams one token may follow at once: a person watching several jobs, or a CI system
#: following a few, stays well under it.
MAX_FOLLOWS_PER_TOKEN = 8


class FollowSlots:
    """How many logs each token follows now (one event loop: no lock needed)."""

    def __init__(self, limit: int = MAX_FOLLOWS_PER_TOKEN) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def take(self, token_id: str) -> Callable[[], None] | None:
        """A slot for ``token_id`` as the function that gives it back; None when it has none
        left."""
        count = self._open.get(token_id, 0)
        if count >= self.limit:
            return None
        self._open[token_id] = count + 1
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            if given_back:
                return
            given_back = True
            left = self._open[token_id] - 1
            if left:
                self._open[token_id] = left
            else:
                del self._open[token_id]

        return give_back

    def open(self, token_id: str) -> int:
        """The streams ``token_id`` follows now."""
        return self._open.get(token_id, 0)


class SlotStream(StreamingResponse):
    """A streaming response that gives its slot back when it ends, however it ends."""

    def __init__(
        self, content: AsyncIterator[bytes], *, give_back: Callable[[], None], media_type: str
    ) -> None:
        super().__init__(content, media_type=media_type)
        self._give_back = give_back

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._give_back()
