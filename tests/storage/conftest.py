"""Fixtures of the storage conformance suite: a fresh, migrated store per test, on each backend.

Every test here depends on ``backend`` (through ``storage``), so the root conftest runs it twice:
on SQLite (a file in the test's folder) and on PostgreSQL (a schema of its own, dropped after the
test). Tests talk to the store only through its ports, so a third backend passes or fails the
same suite.

The store and the test share one event loop for the whole test (an :class:`asyncio.Runner`):
a store's connections belong to the loop that opened them, and the project has no
pytest-asyncio. A test calls ``run(storage.jobs.claim(...))`` for each step, or runs a scenario
of concurrent steps as one coroutine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from dockyard.domain.records import Definition
from dockyard.storage import Storage, open_storage
from tests.helpers.loops import Run
from tests.storage.records import T0, definition_spec


@pytest.fixture
def store_address(tmp_path: Path, store_url: str | None) -> str:
    """The URL of the test's store: its own SQLite file, or its own PostgreSQL schema."""
    return store_url or f"sqlite:///{tmp_path / 'dockyard.db'}"


@pytest.fixture
def storage(runner: asyncio.Runner, store_address: str) -> Iterator[Storage]:
    """A store opened and migrated for this test alone; closed after it."""
    store = open_storage(store_address)
    try:
        runner.run(store.migrate())
        yield store
    finally:
        runner.run(store.close())


@pytest.fixture
def open_store(runner: asyncio.Runner, store_address: str) -> Iterator[Callable[[], Storage]]:
    """``open_store()`` → another store object on the test's database (as another process
    opens it: its own connections), closed after the test."""
    opened: list[Storage] = []

    def open_another() -> Storage:
        store = open_storage(store_address)
        opened.append(store)
        return store

    yield open_another
    for store in opened:
        runner.run(store.close())


@pytest.fixture
def definition(storage: Storage, run: Run) -> Definition:
    """Revision 1 of ``build``, a process definition on the ``default`` queue."""
    return run(storage.definitions.insert("build", definition_spec(), T0))


async def elapsed(awaitable: Awaitable[object]) -> float:
    """Seconds ``awaitable`` took, by the monotonic clock."""
    started = time.monotonic()
    await awaitable
    return time.monotonic() - started


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> bool:
    """True once ``check()`` is, retried every 20 ms for up to ``timeout`` seconds.

    Only for what no verb can await: a lock the database server releases after it has seen
    the session end. Everything a verb can wait for (the change feed) is awaited instead.
    """
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True
