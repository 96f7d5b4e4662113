"""The change feed: a wait returns soon after a write committed since its token was read (in this
process, or in another where the backend's capabilities say it can tell), else after its
timeout. Times are measured loosely: ``SOON`` is far below ``TIMEOUT``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable

from dockyard.domain.records import Definition
from dockyard.storage import Storage
from tests.helpers.loops import Run
from tests.storage.conftest import elapsed
from tests.storage.records import job

TIMEOUT = 5.0
SOON = 2.0

#: Another process inserts a job of ``build`` revision 1 into the store at ``argv[1]``.
WRITER = """
import asyncio, sys
from datetime import UTC, datetime
from dockyard.domain.jobs import SubmitRequest, new_job
from dockyard.storage import open_storage

async def main(url):
    store = open_storage(url)
    try:
        definition = await store.definitions.get("build", 1)
        moment = datetime(2030, 1, 1, tzinfo=UTC)
        await store.jobs.insert([new_job(SubmitRequest(definition="build"), definition, moment)])
    finally:
        await store.close()

asyncio.run(main(sys.argv[1]))
"""


async def start_watching(store: Storage) -> None:
    """A first wait, which starts the feed (a listener, a first look at the database).

    A feed that starts cannot know what it missed, so this wait may end at once: the waits
    measured after it are the ones a waiting loop makes.
    """
    await store.changes.wait(store.changes.token(), SOON)


def test_a_write_after_the_token_makes_the_wait_return_at_once(
    storage: Storage, run: Run, definition: Definition
) -> None:
    run(start_watching(storage))
    token = storage.changes.token()
    run(storage.jobs.insert([job(definition)]))
    assert run(elapsed(storage.changes.wait(token, TIMEOUT))) < SOON


def test_a_write_through_the_same_store_wakes_a_waiter(
    storage: Storage, run: Run, definition: Definition
) -> None:
    run(start_watching(storage))

    async def write_while_waiting() -> float:
        waiting = asyncio.create_task(
            elapsed(storage.changes.wait(storage.changes.token(), TIMEOUT))
        )
        await storage.jobs.insert([job(definition)])
        return await waiting

    assert run(write_while_waiting()) < SOON


def test_with_no_write_the_wait_returns_after_its_timeout(storage: Storage, run: Run) -> None:
    run(start_watching(storage))
    took = run(elapsed(storage.changes.wait(storage.changes.token(), 0.3)))
    assert 0.25 <= took < SOON


def test_a_write_through_another_store_in_this_process_wakes_a_waiter(
    storage: Storage, run: Run, definition: Definition, open_store: Callable[[], Storage]
) -> None:
    waiter = open_store()
    run(start_watching(waiter))

    async def write_elsewhere_while_waiting() -> float:
        waiting = asyncio.create_task(elapsed(waiter.changes.wait(waiter.changes.token(), TIMEOUT)))
        await storage.jobs.insert([job(definition)])
        return await waiting

    assert run(write_elsewhere_while_waiting()) < SOON


def test_a_write_in_another_process_wakes_a_waiter_where_the_backend_can_tell(
    storage: Storage, run: Run, definition: Definition, store_address: str
) -> None:
    run(start_watching(storage))
    notified = storage.capabilities.cross_process_notify
    # Long enough that the wait cannot end before the other process has written.
    timeout = 30.0 if notified else TIMEOUT

    async def write_in_another_process() -> float:
        waiting = asyncio.create_task(storage.changes.wait(storage.changes.token(), timeout))
        command = [sys.executable, "-c", WRITER, store_address]
        await asyncio.to_thread(subprocess.run, command, check=True, timeout=60)
        written = time.monotonic()
        await waiting
        return time.monotonic() - written

    after_the_write = run(write_in_another_process())
    if notified:
        assert after_the_write < SOON
    else:  # only the timeout is promised
        assert after_the_write < timeout + SOON
