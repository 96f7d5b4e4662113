"""The log store port. Executors see only a :class:`LogSink`; readers go through :class:`LogStore`."""

from __future__ import annotations

from typing import Protocol

__all__ = ["LogSink", "LogStore"]


class LogSink(Protocol):
    """Where an attempt's output goes while it runs. ``write`` never blocks on the network."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class LogStore(Protocol):
    def open(self, job_id: str, attempt: int, max_bytes: int) -> LogSink:
        """A sink for attempt ``attempt`` of ``job_id`` that keeps at most ``max_bytes``."""
        ...

    def read(
        self, job_id: str, attempt: int, offset: int = 0, limit: int | None = 1 << 20
    ) -> bytes:
        """Up to ``limit`` bytes (None: all) from ``offset``; empty when there is nothing (yet).
        Readers that serve others read in bounded pieces: a log may be as large as its cap."""
        ...

    def size(self, job_id: str, attempt: int) -> int:
        """How many bytes the attempt's log holds now; 0 when it has none. A log only grows
        while its attempt runs, so bytes below this size never change."""
        ...

    def remove(self, job_id: str) -> None:
        """Forget every attempt's log of ``job_id`` (the job was pruned); no error if none."""
        ...
