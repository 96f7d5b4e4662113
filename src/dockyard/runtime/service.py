"""The one contract every long-running service keeps: start, stop, and events to wait on.

Modelled on River's ``rivershared/startstop`` (CONVENTIONS.md 12). A service

- :meth:`~Service.start`\\ s: returns once it is started, or raises why it could not start;
- :meth:`~Service.stop`\\ s when asked, from a signal handler or any task on its loop, as often
  as anyone likes, even before it started (then it never runs);
- announces both through ``started`` and ``stopped``, :class:`asyncio.Event`\\ s that the tests
  and the :class:`~dockyard.runtime.supervisor.Supervisor` await instead of sleeping;
- :meth:`~Service.run`\\ s: start, then wait until stopped (what callers used before the
  contract, kept for them).

A subclass writes one coroutine, :meth:`Service._serve`: set up, call
:meth:`Service._announce_started`, work until :attr:`Service.stopping`, clean up. The base runs it
in a task of its own and guarantees that

- ``stopped`` is set once the body has ended, however it ended, and ``started`` by then too (as
  River closes ``Started()`` on a failed start), so no one waiting for either waits forever;
- an error the body raises is kept, not lost in a task no one awaits: :meth:`~Service.start`
  raises it when it came before the start, :meth:`~Service.wait` and :meth:`~Service.run` when
  the service has stopped, and :attr:`~Service.error` holds it;
- a service runs at most once: a second start returns as the first did.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from typing import ClassVar

__all__ = ["Service"]


class Service(abc.ABC):
    """A long-running service: :meth:`start`, idempotent :meth:`stop`, ``started``, ``stopped``."""

    #: Names the service in logs, errors and its task.
    name: ClassVar[str] = "service"

    def __init__(self) -> None:
        #: Set once the service is started (or has stopped without starting: see :meth:`start`).
        self.started = asyncio.Event()
        #: Set once the service has stopped, by a stop, by itself or by failing.
        self.stopped = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._announced = False
        self._error: Exception | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for: the body winds down."""
        return self._stop_requested.is_set()

    @property
    def error(self) -> Exception | None:
        """The error the body failed with, if it did."""
        return self._error

    async def start(self) -> None:
        """Start the service and return once it is started.

        Raises the error the body failed with before it announced its start. A service stopped
        before it started never runs: its start returns at once, ``stopped`` set.
        """
        if self._task is None and not self.stopped.is_set():
            if self.stopping:
                self._finish()
            else:
                self._task = asyncio.create_task(self._body(), name=f"dockyard-{self.name}")
                self._task.add_done_callback(lambda _: self._finish())
        await self.started.wait()
        if not self._announced and self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Ask the service to stop and return at once; ``stopped`` is set once it has.

        Safe from a signal handler and from any task on the service's loop, any number of
        times, before or after the start.
        """
        if self.stopping:
            return
        self._stop_requested.set()
        self._on_stop()

    async def wait(self) -> None:
        """Until the service has stopped; raises the error its body failed with, if any."""
        await self.stopped.wait()
        if self._error is not None:
            raise self._error

    async def run(self) -> None:
        """Start, then wait until stopped. Cancelling the caller cancels the body too."""
        try:
            await self.start()
            await self.wait()
        except asyncio.CancelledError:
            task = self._task
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            raise

    # -- for subclasses -------------------------------------------------------------------------

    @abc.abstractmethod
    async def _serve(self) -> None:
        """The body: set up, :meth:`_announce_started`, work until :attr:`stopping`, clean up."""

    def _announce_started(self) -> None:
        """Mark the service started: :meth:`start` returns, ``started`` is set."""
        self._announced = True
        self.started.set()

    def _on_stop(self) -> None:
        """Called once, by the first :meth:`stop`: wake the body if it sleeps on something else."""
        return None  # most bodies wait on :meth:`_until_stopping`, which the stop wakes

    async def _until_stopping(self, timeout: float | None = None) -> bool:
        """Until a stop is asked for (True) or ``timeout`` seconds have passed (False)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), timeout)
        return self.stopping

    # -- the task -------------------------------------------------------------------------------

    async def _body(self) -> None:
        try:
            await self._serve()
        except Exception as error:  # kept for start(), wait() and run(), never lost in the task
            self._error = error

    def _finish(self) -> None:
        # Runs however the body ended, cancelled before its first step included.
        self.started.set()
        self.stopped.set()
