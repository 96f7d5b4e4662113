"""The PostgreSQL backend: many API servers and workers on many hosts share one database."""

from __future__ import annotations

from dockyard.storage.postgres.store import PostgresStorage, listen_channel, with_search_path

__all__ = ["PostgresStorage", "listen_channel", "with_search_path"]
