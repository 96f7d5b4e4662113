"""The bundle of ports: its migrations apply once, whichever store object asks, and its
lifetime ends with a close that may be repeated."""

from __future__ import annotations

from collections.abc import Callable

from dockyard.storage import Capabilities, Storage
from tests.helpers.loops import Run


def test_migrations_apply_once_whichever_store_asks(
    run: Run, open_store: Callable[[], Storage]
) -> None:
    first, second = open_store(), open_store()
    applied = run(first.migrate())
    assert applied and len(set(applied)) == len(applied)
    assert run(first.migrate()) == []
    assert run(second.migrate()) == []
    assert run(second.tokens.all()) == []  # the schema is there for every store object


def test_a_store_says_its_capabilities_and_may_be_closed_twice(
    run: Run, open_store: Callable[[], Storage]
) -> None:
    store = open_store()
    run(store.migrate())
    assert isinstance(store.capabilities, Capabilities)
    run(store.close())
    run(store.close())
