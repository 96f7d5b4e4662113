"""The service contract, the supervisor and the leader loop, on each backend.

The services are the real ones (a worker, the scheduler, the rules engine, the API server) on
the test's store, beside small probes the test drives to fail on cue. Every wait is on an event
a service sets (``started``, ``stopped``, ``leads``) or on the task that runs it, never a sleep.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

import httpx
import pytest

from dockyard.app import Dockyard, WorkerConfig
from dockyard.cli.services import ApiServer
from dockyard.runtime import SchedulerConfig, Service, Supervisor
from dockyard.runtime.scheduler import ROLE as SCHEDULER_ROLE
from dockyard.settings import Settings

#: Quick enough that a follower notices a leader gone within moments.
FAST = SchedulerConfig(poll_seconds=0.02)
WORKER = WorkerConfig(concurrency=1, poll_seconds=0.05, check_seconds=0.05)


class Probe(Service):
    """A service the test drives: it fails to start, or fails once started, when told to.

    Each probe appends its label to ``ends`` when its body ends, so a test sees the order in
    which a supervisor stopped them.
    """

    name = "probe"

    def __init__(
        self, label: str, ends: list[str], *, start_error: Exception | None = None
    ) -> None:
        super().__init__()
        self.label = label
        self._ends = ends
        self._start_error = start_error
        self._failure: Exception | None = None
        self._failing = asyncio.Event()

    def fail(self, error: Exception) -> None:
        self._failure = error
        self._failing.set()

    async def _serve(self) -> None:
        if self._start_error is not None:
            raise self._start_error
        self._announce_started()
        try:
            waits = {
                asyncio.create_task(self._failing.wait()),
                asyncio.create_task(self._until_stopping()),
            }
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
            if self._failure is not None:
                raise self._failure
        finally:
            self._ends.append(self.label)


async def registered(app: Dockyard, worker_id: str) -> tuple[bool, bool]:
    """Whether the store lists the worker, and whether it lists it as stopped."""
    found = [info for info in await app.storage.queues.workers() if info.id == worker_id]
    return bool(found), bool(found) and found[0].stopped_at is not None


def test_start_returns_started_and_stop_is_idempotent(settings: Settings) -> None:
    async def scenario() -> None:
        app = await Dockyard.open(settings)
        try:
            worker, scheduler = app.worker(WORKER), app.scheduler(FAST)
            assert not worker.started.is_set()
            await worker.start()
            # Started means registered and claiming, with nothing left to wait for.
            assert worker.started.is_set() and not worker.stopped.is_set()
            assert await registered(app, worker.id) == (True, False)
            await worker.start()  # a second start returns as the first did
            await scheduler.start()
            await scheduler.leads.wait()  # the only scheduler on this store leads
            for service in (worker, scheduler):
                service.stop()
                service.stop()
                await service.wait()
                assert service.stopped.is_set() and service.error is None
                service.stop()  # after it stopped, too
                await service.run()  # a service runs once: this returns at once
            assert await registered(app, worker.id) == (True, True)
        finally:
            await app.close()

    asyncio.run(scenario())


def test_a_stop_before_the_start_means_it_never_runs(settings: Settings) -> None:
    async def scenario() -> None:
        app = await Dockyard.open(settings)
        try:
            worker, scheduler = app.worker(WORKER), app.scheduler(FAST)
            for service in (worker, scheduler):
                service.stop()
                await service.run()
                assert service.started.is_set() and service.stopped.is_set()
            assert not scheduler.leading
            assert await registered(app, worker.id) == (False, False)
        finally:
            await app.close()

    asyncio.run(scenario())


def test_a_failing_service_stops_the_others_in_reverse_and_its_error_is_raised(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        app = await Dockyard.open(settings)
        try:
            ends: list[str] = []
            first, failing, last = Probe("first", ends), Probe("failing", ends), Probe("last", ends)
            worker, scheduler = app.worker(WORKER), app.scheduler(FAST)
            supervisor = Supervisor([first, worker, scheduler, failing, last], signals=())
            running = asyncio.create_task(supervisor.run())
            await supervisor.started.wait()
            assert all(service.started.is_set() for service in supervisor.services)
            failing.fail(RuntimeError("the probe broke"))
            with pytest.raises(RuntimeError, match="the probe broke"):
                await running
            assert ends == ["failing", "last", "first"]
            assert all(service.stopped.is_set() for service in supervisor.services)
            assert await registered(app, worker.id) == (True, True)
            assert supervisor.error is not None and supervisor.stopped.is_set()
        finally:
            await app.close()

    asyncio.run(scenario())


def test_a_service_that_cannot_start_stops_those_started_and_no_later_one_starts(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        app = await Dockyard.open(settings)
        try:
            ends: list[str] = []
            first, later = Probe("first", ends), Probe("later", ends)
            broken = Probe("broken", ends, start_error=RuntimeError("cannot start"))
            worker = app.worker(WORKER)
            supervisor = Supervisor([first, worker, broken, later], signals=())
            with pytest.raises(RuntimeError, match="cannot start"):
                await supervisor.run()
            # Its start raised, and its events are set: no one waiting on them waits forever.
            assert broken.started.is_set() and broken.stopped.is_set()
            with pytest.raises(RuntimeError, match="cannot start"):
                await broken.start()
            assert ends == ["first"] and worker.stopped.is_set()
            assert not later.started.is_set()
        finally:
            await app.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_them_all(settings: Settings, signum: signal.Signals) -> None:
    async def scenario() -> None:
        app = await Dockyard.open(settings)
        try:
            worker = app.worker(WORKER)
            services: list[Service] = [worker, app.scheduler(FAST), app.rules_engine()]
            supervisor = Supervisor(services)
            running = asyncio.create_task(supervisor.run())
            await supervisor.started.wait()
            # The supervisor's handler replaced the default one (which would end the test run).
            assert signal.getsignal(signum) not in (signal.SIG_DFL, signal.default_int_handler)
            os.kill(os.getpid(), signum)
            await running
            assert all(service.stopped.is_set() for service in services)
            assert await registered(app, worker.id) == (True, True)
        finally:
            await app.close()

    previous = signal.getsignal(signum)
    asyncio.run(scenario())
    assert signal.getsignal(signum) == previous


def test_the_leader_loop_hands_over_when_the_leader_stops(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dockyard.scheduler")

    async def scenario() -> None:
        first, second = await Dockyard.open(settings), await Dockyard.open(settings)
        try:
            leader, follower = first.scheduler(FAST), second.scheduler(FAST)
            await leader.start()
            await leader.leads.wait()
            # The leader holds the role: the follower's store cannot take it meanwhile.
            assert not await second.storage.leadership.try_lead(SCHEDULER_ROLE)
            await follower.start()
            leader.stop()
            await leader.wait()
            await first.close()  # the leader's process is gone: the role is free
            async with asyncio.timeout(30):
                await follower.leads.wait()
            follower.stop()
            await follower.wait()
        finally:
            await second.close()

    asyncio.run(scenario())
    took = [r for r in caplog.records if r.getMessage() == "took the scheduler leadership"]
    assert len(took) == 2  # once per process, however many rounds each led
    assert not [r for r in caplog.records if "lost the scheduler" in r.getMessage()]


def test_the_api_server_is_a_service(settings: Settings) -> None:
    async def scenario() -> None:
        app = await Dockyard.open(settings)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        try:
            server = ApiServer(app, sock, "127.0.0.1", port)
            await server.start()
            # Started means listening: the first request is answered, no retry needed.
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                assert (await http.get("/healthz")).status_code == 200
            server.stop()
            server.stop()
            await server.wait()
            assert sock.fileno() == -1  # closed with the server
        finally:
            sock.close()
            await app.close()

    asyncio.run(scenario())
