"""Migrations that change stored documents: a store made before them reads them as they are now."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import psycopg

from dockyard.domain.definitions import MAX_LOG_MAX_BYTES
from dockyard.storage import open_storage

TOO_BIG = 100 * 1024**3  # accepted before the cap (the attack of issue 26)
DOCUMENT = {"name": "big", "executor": "process", "command": ["true"], "log_max_bytes": TOO_BIG}


async def _revisions(url: str) -> list[int]:
    storage = open_storage(url)
    try:
        await storage.migrate()
        return [d.spec.log_max_bytes for d in await storage.definitions.revisions("big")]
    finally:
        await storage.close()


def test_sqlite_definitions_stored_past_the_log_cap_take_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    asyncio.run(_revisions(url))  # the schema as it is now
    with sqlite3.connect(tmp_path / "old.db") as db:  # as a store before 0009 held it
        db.execute("DELETE FROM dockyard_migrations WHERE version = 9")
        db.execute(
            "INSERT INTO definitions (name, revision, status, created_at, document)"
            " VALUES ('big', 1, 'ACTIVE', 0, ?)",
            (json.dumps(DOCUMENT),),
        )
    assert asyncio.run(_revisions(url)) == [MAX_LOG_MAX_BYTES]


def test_postgres_definitions_stored_past_the_log_cap_take_it(postgres_url: str) -> None:
    asyncio.run(_revisions(postgres_url))
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("DELETE FROM dockyard_migrations WHERE version = 6")
        db.execute(
            "INSERT INTO definitions (name, revision, status, created_at, document)"
            " VALUES ('big', 1, 'ACTIVE', now(), %s::jsonb)",
            (json.dumps(DOCUMENT),),
        )
    assert asyncio.run(_revisions(postgres_url)) == [MAX_LOG_MAX_BYTES]
