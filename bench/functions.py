"""Importable job functions for the benchmark (``bench.functions:noop``)."""

from __future__ import annotations

from typing import Any


def noop(payload: Any) -> None:
    """The no-op Python job of scenario (b): takes the payload, returns None."""
    return None


async def async_noop(payload: Any) -> None:
    """The same as an ``async def`` (runs on the worker's loop instead of a thread)."""
    return None
