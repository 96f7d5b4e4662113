"""An in-process change signal that waiters on any event loop or thread can await."""

from __future__ import annotations

import asyncio
import threading

__all__ = ["ChangeSignal"]


class ChangeSignal:
    """A generation counter: ``notify`` bumps it and wakes every waiter, on whichever loop it waits.

    Waiters pass the generation they last saw, so a change made between reading the counter and
    starting to wait is never missed.
    """

    def __init__(self) -> None:
        self.generation = 0
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def notify(self) -> None:
        with self._lock:
            self.generation += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    async def wait(self, seen: int, timeout: float) -> bool:
        """True as soon as the generation differs from ``seen``; False after ``timeout``."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._lock:
            if self.generation != seen:
                return True
            self._waiters.add(waiter)
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters.discard(waiter)
