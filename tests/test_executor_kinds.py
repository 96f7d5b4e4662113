"""Which executors a worker offers (issue 26): a worker claims only jobs of the kinds it offers.

``dockyard worker --executors`` and ``dockyard up --executors`` choose them, else the settings'
policy (``DOCKYARD_EXECUTORS``): every kind on the embedded SQLite store, ``docker,http,lambda``
on PostgreSQL, where process and python would run an operator's code on the worker's host. A job
of a kind no worker offers waits RUNNABLE. Everything is real: ``python -m dockyard`` processes,
the stores, and the migration run on a store made before the executor column.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

import dockyard
from dockyard import JobState
from dockyard.app import Dockyard, WorkerConfig
from dockyard.errors import ValidationError
from dockyard.policy import ALL_EXECUTORS
from dockyard.settings import Settings
from dockyard.storage import ClaimRequest, open_storage
from tests.conftest import ServerProcess, register_process, suite_settings
from tests.helpers.commands import run_dockyard
from tests.helpers.plans import postgres_claim_plans, sqlite_claim_plans

KNOWN = ", ".join(ALL_EXECUTORS)


def dockyard_command(
    settings: Settings, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m dockyard ARGS`` on ``settings``'s store, with the deployment's own policy:
    no ``DOCKYARD_EXECUTORS`` from the suite or the run's environment."""
    env = {**os.environ, "DOCKYARD_HOME": str(settings.home), "DOCKYARD_URL": settings.url}
    env.pop("DOCKYARD_EXECUTORS", None)
    env.pop("DOCKYARD_LOG_DIR", None)
    return run_dockyard(env, *args, timeout=timeout)


def test_a_postgres_worker_leaves_process_jobs_to_a_worker_that_offers_process(
    postgres_url: str, tmp_path: Path
) -> None:
    """On PostgreSQL a worker offers docker, http and lambda unless told: a burst worker finds
    nothing it may run and leaves the process job RUNNABLE; ``--executors process`` runs it."""
    settings = Settings.resolve(home=tmp_path / "home", url=postgres_url, environ={})
    assert settings.policy.executors == ("docker", "http", "lambda")
    with dockyard.DirectClient(settings) as client:
        register_process(client, "hello", "echo", "hello")
        job = client.submit("hello")

        default = dockyard_command(settings, "worker", "--burst")
        assert default.returncode == 0, default.stderr
        assert "executors on: docker, http, lambda" in default.stdout
        assert client.get(job.id).state is JobState.RUNNABLE

        offering = dockyard_command(settings, "worker", "--burst", "--executors", "process")
        assert offering.returncode == 0, offering.stderr
        assert "executors on: process" in offering.stdout
        done = client.get(job.id)
        assert (done.state, done.attempt_count) == (JobState.SUCCEEDED, 1)


def test_a_worker_offering_http_only_leaves_a_python_job_on_sqlite(tmp_path: Path) -> None:
    """The same through the facade on SQLite, where every kind is on by default: a worker told
    to offer http only finishes its burst without the python job, one left to the default
    policy runs it."""
    settings = suite_settings(tmp_path / "home")
    assert settings.policy.executors == ALL_EXECUTORS

    async def scenario() -> tuple[JobState, tuple[str, ...], JobState]:
        app = await Dockyard.open(settings)
        try:
            await app.definitions.register(
                {"executor": "python", "function": "tests.jobfunctions:echo"}, "fn"
            )
            (submitted,) = await app.jobs.submit_many([dockyard.SubmitRequest(definition="fn")])
            job_id = submitted.job.id
            web = app.worker(WorkerConfig(burst=True, executors=("http",), poll_seconds=0.05))
            await web.run()
            waiting = (await app.jobs.get(job_id)).state
            anyone = app.worker(WorkerConfig(burst=True, poll_seconds=0.05))
            await anyone.run()
            return waiting, anyone.executors, (await app.jobs.get(job_id)).state
        finally:
            await app.close()

    waiting, offered, finished = asyncio.run(scenario())
    assert (waiting, offered, finished) == (JobState.RUNNABLE, ALL_EXECUTORS, JobState.SUCCEEDED)


@pytest.mark.parametrize("command", [("worker",), ("up", "--port", "0")])
def test_an_unknown_executor_kind_is_refused_in_one_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    settings = Settings.resolve(home=tmp_path / "home", environ={})
    result = dockyard_command(settings, *command, "--executors", "process,bogus")
    assert result.returncode == 2
    assert result.stderr == f"error: --executors: 'bogus' is not an executor kind ({KNOWN})\n"
    assert result.stdout == ""
    empty = dockyard_command(settings, *command, "--executors", " , ")
    assert (empty.returncode, empty.stderr) == (
        2,
        f"error: --executors: name at least one of {KNOWN}\n",
    )


def test_the_facade_refuses_an_unknown_or_no_kind(tmp_path: Path) -> None:
    async def refusals() -> list[str]:
        app = await Dockyard.open(suite_settings(tmp_path / "home"))
        found = []
        try:
            for kinds in (("process", "raw_exec"), ()):
                with pytest.raises(ValidationError) as refused:
                    app.worker(WorkerConfig(executors=kinds))
                found.append(str(refused.value))
        finally:
            await app.close()
        return found

    assert asyncio.run(refusals()) == [
        f"executors: 'raw_exec' is not an executor kind ({KNOWN})",
        f"executors: name at least one of {KNOWN}",
    ]


def test_up_says_which_executors_are_on(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "home", environ={})
    log = tmp_path / "up.log"
    server = ServerProcess(settings, log, command=("up", "--executors", "http,lambda"))
    server.close()
    lines = log.read_text().splitlines()
    assert lines[0].startswith("Dockyard is up")
    assert "  a worker runs 4 jobs at once; executors on: http, lambda" in lines


# -- the column and its migration -----------------------------------------------------------------

DOCUMENT = {"executor": "process", "command": ["true"]}


def _store_before_the_column(backend: str, tmp_path: Path, postgres_url: str | None) -> str:
    """A store holding a process job, made as a store before the executor column was."""
    url = postgres_url or f"sqlite:///{tmp_path / 'old.db'}"

    async def submit() -> None:
        app = await Dockyard.open(suite_settings(tmp_path / "home", url))
        try:
            await app.definitions.register(DOCUMENT, "old")
            await app.jobs.submit_many([dockyard.SubmitRequest(definition="old")])
        finally:
            await app.close()

    asyncio.run(submit())
    if backend == "sqlite":
        with sqlite3.connect(tmp_path / "old.db") as db:
            db.execute("ALTER TABLE jobs DROP COLUMN executor")
            db.execute("DELETE FROM dockyard_migrations WHERE version = 10")
    else:
        assert postgres_url is not None
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE jobs DROP COLUMN executor")
            conn.execute("DELETE FROM dockyard_migrations WHERE version = 7")
    return url


def test_jobs_stored_before_the_column_take_their_definitions_kind(
    backend: str, store_url: str | None, tmp_path: Path
) -> None:
    """The migration gives every job its definition revision's kind: a worker offering docker,
    http and lambda leaves the old process job, one offering process takes it."""
    url = _store_before_the_column(backend, tmp_path, store_url)

    async def claims() -> tuple[list[str], list[str], list[str]]:
        storage = open_storage(url)
        try:
            applied = await storage.migrate()
            now = datetime.now(UTC)

            def offering(*kinds: str) -> ClaimRequest:
                lease = now + timedelta(seconds=30)
                return ClaimRequest(
                    worker_id="w", queues=None, limit=5, now=now, lease_until=lease, executors=kinds
                )

            web = await storage.jobs.claim(offering("docker", "http", "lambda"))
            host = await storage.jobs.claim(offering("process"))
            return applied, [job.name for job in web], [job.name for job in host]
        finally:
            await storage.close()

    applied, web, host = asyncio.run(claims())
    assert applied == ["0010_job_executor.sql" if backend == "sqlite" else "0007_job_executor.sql"]
    assert (web, host) == ([], ["old"])


# -- the claim's plan -------------------------------------------------------------------------------


def test_a_postgres_claim_of_some_kinds_still_walks_the_claim_order_index(
    postgres_url: str,
) -> None:
    """20,000 runnable jobs, 95 % of a kind the worker does not offer: the claim filters them on
    the partial claim-order index walk, never by reading and sorting the backlog."""
    backlog = (
        "INSERT INTO jobs (id, name, definition_name, definition_revision, state, queue,"
        " max_attempts, created_at, not_before, executor)"
        " SELECT 'j-' || g, 'x', 'x', 1, 'RUNNABLE', 'default', 1, now(), now(),"
        " CASE WHEN g % 20 = 0 THEN 'docker' ELSE 'process' END"
        " FROM generate_series(1, 20000) g"
    )
    web = ("docker", "http", "lambda")
    for plan in postgres_claim_plans(postgres_url, [backlog], limit=16, executors=web):
        assert "Index Scan using jobs_claim_order on jobs j" in plan, plan
        assert "executor = ANY ('{docker,http,lambda}'::text[])" in plan, plan
        assert "Sort Key: j.priority" not in plan, plan


def test_a_sqlite_claim_of_some_kinds_still_walks_the_claim_order_index(tmp_path: Path) -> None:
    found = [
        f"{sql}\n{plan}" for sql, plan in sqlite_claim_plans(tmp_path / "dockyard.db", ("http",))
    ]
    assert len(found) == 6
    for plan in found:
        assert "j.executor IN ('http')" in plan, plan
        assert "TEMP B-TREE" not in plan and "jobs_state" not in plan, plan
        assert any(index in plan for index in ("jobs_claim_order", "jobs_runnable")), plan
