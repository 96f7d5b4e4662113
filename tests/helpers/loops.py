"""One event loop per test for suites that drive async ports directly (storage, objects)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, Protocol, TypeVar

import pytest

T = TypeVar("T")


class Run(Protocol):
    """Run a coroutine to its end on the test's event loop and return its result."""

    def __call__(self, coroutine: Coroutine[Any, Any, T], /) -> T: ...


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@pytest.fixture
def run(runner: asyncio.Runner) -> Run:
    return runner.run
