"""The supervisor: services that live and stop together, as ``dockyard up`` runs them.

:class:`Supervisor` is itself a :class:`~dockyard.runtime.service.Service`. It starts its
services in order, each once the one before it is started, and is started when they all are.
When one of them ends (it failed, or finished by itself as a burst worker does) or a stop is
asked for (SIGTERM or SIGINT, whose handlers it installs while it runs), it stops them all in
reverse order, each once the one after it has stopped: the API goes last, so it still answers
while the worker hands its jobs back. Then it raises the first error: a start that failed, or
the service that ended first, or the others in the order they were stopped.

It knows services only by their contract: the API server is an adapter the CLI builds around
uvicorn, so that the runtime never imports the layers above it.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable, Sequence

from dockyard.runtime.service import Service

__all__ = ["STOP_SIGNALS", "Supervisor"]

#: The signals that stop a supervisor, and with it every service it runs.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Supervisor(Service):
    """Runs ``services`` together; a stop, or the end of any one of them, stops them all."""

    name = "supervisor"

    def __init__(
        self, services: Sequence[Service], *, signals: Iterable[signal.Signals] = STOP_SIGNALS
    ) -> None:
        super().__init__()
        self.services = tuple(services)
        self._signals = tuple(signals)

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        # Installed before the first start, so that a signal during a slow start stops cleanly.
        for signum in self._signals:
            loop.add_signal_handler(signum, self.stop)
        try:
            await self._supervise()
        finally:
            for signum in self._signals:
                loop.remove_signal_handler(signum)

    async def _supervise(self) -> None:
        running: list[Service] = []
        ended: list[Service] = []
        try:
            for service in self.services:
                if self.stopping:
                    break
                running.append(service)
                await service.start()  # raises why it could not start; the finally stops the rest
            self._announce_started()
            ended = await self._first_to_end(running)
        finally:
            for service in reversed(running):
                service.stop()
                await service.stopped.wait()
        # The service that ended the others first, then the others in the order they stopped.
        for service in [*ended, *reversed(running)]:
            if service.error is not None:
                raise service.error

    async def _first_to_end(self, services: Sequence[Service]) -> list[Service]:
        """Until a stop is asked for or one of ``services`` stops; returns those that stopped."""
        ends = {asyncio.create_task(service.stopped.wait()): service for service in services}
        stop = asyncio.create_task(self._until_stopping())
        try:
            done, _ = await asyncio.wait({stop, *ends}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop, *ends):
                task.cancel()
        return [service for task, service in ends.items() if task in done]
