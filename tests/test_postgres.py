"""What only the PostgreSQL backend has: its schema, its claim plan, its wake-ups, its URL.

The behaviour suite (test_jobs, test_cli, test_api, test_reliability, …) runs on PostgreSQL too;
the failure modes of many hosts are in test_postgres_reliability.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

import dockyard
from dockyard import JobState, SubmitRequest
from dockyard.app import Dockyard, WorkerConfig
from dockyard.errors import StorageError
from dockyard.storage import ClaimRequest, open_storage
from dockyard.storage.postgres import PostgresStorage
from dockyard.storage.postgres.jobs import claim_sql
from dockyard.storage.postgres.migrator import apply_migrations, schema_sql
from tests.conftest import WorkerThread, register_process, suite_settings
from tests.helpers.plans import postgres_claim_plans

SCHEMA = Path(__file__).parent.parent / "src/dockyard/storage/postgres/schema.sql"


def test_migrations_produce_schema_sql(postgres_url: str) -> None:
    async def generate() -> tuple[list[str], list[str], str]:
        conn = await psycopg.AsyncConnection.connect(postgres_url, autocommit=True)
        async with conn:
            first = await apply_migrations(conn)
            again = await apply_migrations(conn)
            return first, again, await schema_sql(conn)

    first, again, generated = asyncio.run(generate())
    assert first and again == []  # idempotent
    checked_in = SCHEMA.read_text().split("\n\n", 1)[1]
    assert generated == checked_in, "run scripts/schema-sql to regenerate"


def test_several_processes_migrating_at_once_apply_each_migration_once(postgres_url: str) -> None:
    async def race() -> list[list[str]]:
        stores = [PostgresStorage(postgres_url) for _ in range(4)]
        try:
            return list(await asyncio.gather(*(store.migrate() for store in stores)))
        finally:
            for store in stores:
                await store.close()

    results = asyncio.run(race())
    applied = [name for names in results for name in names]
    assert sorted(applied) == sorted(set(applied)) and applied  # each once, by someone


def test_claims_read_the_backlog_not_the_history(postgres_url: str) -> None:
    """With 50,000 finished jobs and a few runnable ones, the claim walks the partial claim-order
    index and checks groups through the open-groups index: no scan of the jobs table, whose
    cost would grow with the history."""
    history = (
        "INSERT INTO jobs (id, name, definition_name, definition_revision, state, queue,"
        " group_key, max_attempts, created_at, not_before, stopped_at)"
        " SELECT 'old-' || g, 'x', 'x', 1, 'SUCCEEDED', 'default',"
        " CASE WHEN g % 2 = 0 THEN 'g' || (g % 100) END, 1, now(), now(), now()"
        " FROM generate_series(1, 50000) g"
    )
    backlog = (
        "INSERT INTO jobs (id, name, definition_name, definition_revision, state, queue,"
        " group_key, max_attempts, created_at, not_before)"
        " SELECT 'new-' || g, 'x', 'x', 1, 'RUNNABLE', 'default', 'g' || (g % 10), 1,"
        " now(), now() FROM generate_series(1, 20) g"
    )

    for plan in postgres_claim_plans(postgres_url, [history, backlog], limit=8):
        assert "Seq Scan on jobs" not in plan, plan
        assert "jobs_claim_order" in plan or "jobs_runnable" in plan, plan
        assert "jobs_open_groups" in plan, plan


def test_maintenance_gathers_statistics_a_bulk_submit_left_stale(postgres_url: str) -> None:
    """After 20,000 jobs arrive in a table never analyzed, the planner guesses the backlog is a
    dozen rows and claims by reading and sorting all of it; one maintenance pass gathers the
    statistics, the claim then walks the claim-order index, and the next pass has nothing to do."""

    async def scenario() -> tuple[bool, bool, str]:
        storage = PostgresStorage(postgres_url)
        await storage.migrate()
        conn = await psycopg.AsyncConnection.connect(postgres_url, autocommit=True)
        async with conn:
            await conn.execute(
                "INSERT INTO jobs (id, name, definition_name, definition_revision, state, queue,"
                " max_attempts, created_at, not_before)"
                " SELECT 'j-' || g, 'x', 'x', 1, 'RUNNABLE', 'default', 1, now(), now()"
                " FROM generate_series(1, 20000) g"
            )
            # Table statistics reach pg_stat_user_tables when a session ends or idles.
            await conn.execute("SELECT pg_stat_force_next_flush()")
            first = await storage.jobs.refresh_statistics()
            second = await storage.jobs.refresh_statistics()
            now = datetime.now(UTC)
            request = ClaimRequest(worker_id="w", queues=None, limit=16, now=now, lease_until=now)
            sql, args = claim_sql(request)
            rows = await (await conn.execute("EXPLAIN " + sql, args)).fetchall()
        await storage.close()
        return first, second, "\n".join(row[0] for row in rows)

    first, second, plan = asyncio.run(scenario())
    assert first and not second
    assert "Index Scan using jobs_claim_order on jobs j" in plan, plan
    assert "Sort Key: j.priority" not in plan, plan


def test_an_idle_worker_is_woken_by_notify_not_by_polling(
    postgres_url: str, tmp_path: Path
) -> None:
    """With polling every 30 s, a job submitted to an idle worker still starts at once."""
    settings = suite_settings(tmp_path / "home", postgres_url)
    with dockyard.DirectClient(settings) as client:
        register_process(client, "quick", "true")
        worker = WorkerThread(settings, WorkerConfig(poll_seconds=30, check_seconds=0.1)).start()
        try:
            for _ in range(5):
                job = client.submit("quick")
                done = client.wait(job.id, timeout=10)
                assert done.state is JobState.SUCCEEDED
                assert done.started_at is not None
                assert done.started_at - done.created_at < timedelta(seconds=2)
        finally:
            worker.stop()


def test_postgres_urls_and_a_wrong_database(postgres_url: str) -> None:
    assert isinstance(open_storage("postgresql://u@h/db"), PostgresStorage)
    assert isinstance(open_storage("postgres://u@h/db"), PostgresStorage)

    async def bad_database() -> None:
        storage = PostgresStorage("postgresql://postgres@127.0.0.1:5432/no_such_database")
        try:
            await storage.migrate()
        finally:
            await storage.close()

    started = time.monotonic()
    with pytest.raises(StorageError, match="no_such_database"):
        asyncio.run(bad_database())
    # A store never reached is a mistake to report at once, not an outage to wait out.
    assert time.monotonic() - started < 10


def test_dockyard_open_on_postgres_submits_and_lists(postgres_url: str, tmp_path: Path) -> None:
    settings = suite_settings(tmp_path / "home", postgres_url)

    async def scenario() -> list[str]:
        app = await Dockyard.open(settings)
        try:
            await app.definitions.register({"executor": "process", "command": ["true"]}, "t")
            await app.jobs.submit_many([SubmitRequest(definition="t") for _ in range(3)])
            return [job.state for job in await app.jobs.list()]
        finally:
            await app.close()

    assert asyncio.run(scenario()) == [JobState.RUNNABLE] * 3
