"""The embedded backend: one SQLite file in WAL mode."""

from __future__ import annotations

from dockyard.storage.sqlite.store import SQLiteStorage

__all__ = ["SQLiteStorage"]
