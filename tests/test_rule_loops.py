"""Rules that trigger themselves (issue 26): a causation depth with a cap, and a rate per rule.

A rule on ``Job State Change`` events whose target submits a job of the same definition fed
itself for ever (6,400 jobs in 9 s). Here it runs for real, with a worker and the rules engine as
services, and stops at the cap; the rest runs one engine round at a time on a clock the test
moves, so a minute of rate passes without waiting. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from dockyard import SubmitRequest, ValidationError
from dockyard.app import Dockyard
from dockyard.domain.clock import Clock, SystemClock
from dockyard.domain.jobs import new_job
from dockyard.domain.rules import Invocation, InvocationState, parse_rule, spec_document
from dockyard.domain.states import JobState
from dockyard.runtime import RulesConfig, RulesReport
from dockyard.runtime.rules import DEPTH_HEADER
from dockyard.settings import Settings
from dockyard.storage import open_storage
from dockyard.storage.ports import JobQuery
from dockyard.storage.postgres import migrator as postgres_migrator
from dockyard.storage.sqlite import migrator as sqlite_migrator
from tests.conftest import FakeClock, HttpServer

T = TypeVar("T")
START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
DELIVERED, THROTTLED, REFUSED = (
    InvocationState.DELIVERED,
    InvocationState.THROTTLED,
    InvocationState.REFUSED,
)

#: The loop of the issue: every job of ``loop`` that succeeds submits another one.
LOOP_RULE = {
    "event_pattern": {
        "source": ["dockyard.job"],
        "detail-type": ["Job State Change"],
        "detail": {"status": ["SUCCEEDED"], "jobDefinition": [{"prefix": "loop:"}]},
    },
    "targets": [{"id": "again", "kind": "submit-job", "definition": "loop"}],
}


def run(
    settings: Settings,
    scenario: Callable[[Dockyard, FakeClock], Awaitable[T]],
    clock: Clock | None = None,
) -> T:
    """``scenario`` on a store with the definitions ``loop`` and ``report`` (``true``), on a
    clock the test moves unless ``clock`` is given."""

    async def main() -> T:
        fake = FakeClock(START)
        app = await Dockyard.open(settings, clock=clock or fake)
        try:
            for name in ("loop", "report"):
                await app.definitions.register(
                    {"executor": "process", "command": ["true"]}, name=name
                )
            return await scenario(app, fake)
        finally:
            await app.close()

    return asyncio.run(main())


def put(source: str, **detail: Any) -> dict[str, Any]:
    return {"Source": source, "DetailType": "Happened", "Detail": json.dumps(detail)}


async def jobs_of(app: Dockyard, definition: str) -> list[Any]:
    jobs = await app.storage.jobs.select(JobQuery(limit=1000))
    return [job for job in jobs if job.definition_name == definition]


def states_by_event(history: list[Invocation]) -> dict[str, InvocationState]:
    return {invocation.event_id: invocation.state for invocation in history}


# -- the loop, for real -------------------------------------------------------------------------


def test_a_rule_that_triggers_itself_stops_at_the_causation_cap(
    settings: Settings, start_worker: Any
) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.rules.create(LOOP_RULE, name="loop")
        await app.jobs.submit(SubmitRequest(definition="loop"))  # depth 0, as a user's
        start_worker(concurrency=2)
        engine = app.rules_engine(RulesConfig(poll_seconds=0.05))  # the default cap: 16
        task = asyncio.create_task(engine.run())
        deadline = time.monotonic() + 60
        try:
            while not await app.rules.history("loop", REFUSED):
                jobs = await jobs_of(app, "loop")
                assert len(jobs) <= 17, f"a rule loop ran away: {len(jobs)} jobs"
                assert time.monotonic() < deadline, f"the loop stalled at {len(jobs)} jobs"
                await asyncio.sleep(0.05)  # a poll with a deadline: the loop runs in services
        finally:
            engine.stop()
            await task

        # The user's job and 16 links, each one deeper; all done, so nothing can follow.
        jobs = await jobs_of(app, "loop")
        assert len(jobs) == 17
        assert {job.state for job in jobs} == {JobState.SUCCEEDED}
        history = await app.rules.history("loop")
        delivered = sorted(i.depth for i in history if i.state is DELIVERED)
        assert delivered == list(range(1, 17))
        (refused,) = [i for i in history if i.state is REFUSED]
        assert refused.depth == 17
        assert refused.error == "causation depth 17 exceeds 16: a rule loop?"
        assert (refused.attempts, refused.result, refused.next_attempt_at) == (0, None, None)
        # The refused event is the state change of the sixteenth link.
        deepest = refused.event["detail"]["jobId"]
        assert f"job {deepest}" in {i.result for i in history if i.depth == 16}

    run(settings, scenario, clock=SystemClock())  # the worker's and the engine's own time


def test_the_depth_is_the_triggering_event_s_plus_one_up_to_the_cap(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        cancelled = {
            "source": ["dockyard.job"],
            "detail": {"status": ["CANCELLED"], "jobDefinition": [{"prefix": "loop:"}]},
        }
        targets = [{"id": "again", "kind": "submit-job", "definition": "loop"}]
        await app.rules.create({"event_pattern": cancelled, "targets": targets}, name="loop")
        engine = app.rules_engine()
        # A job 15 links deep (as the sixteenth rule in a row would have submitted it).
        definition = await app.definitions.get("loop")
        request = SubmitRequest(definition="loop", idempotency_key="fifteen")
        deep = await app.storage.rules.submit_job(new_job(request, definition, clock.now()), 15)
        await app.jobs.cancel(deep.job.id)
        await engine.run_once()
        (link,) = await app.rules.history("loop")
        assert (link.state, link.depth) == (DELIVERED, 16)  # the cap itself is allowed
        (sixteenth,) = [job for job in await jobs_of(app, "loop") if job.id != deep.job.id]
        assert link.result == f"job {sixteenth.id}"

        await app.jobs.cancel(sixteenth.id)
        report = await engine.run_once()
        assert (report.invocations, report.refused, report.delivered) == (1, 1, 0)
        refused = [i for i in await app.rules.history("loop") if i.state is REFUSED]
        assert [(i.depth, i.error) for i in refused] == [
            (17, "causation depth 17 exceeds 16: a rule loop?")
        ]
        assert len(await jobs_of(app, "loop")) == 2  # no seventeenth link
        assert await engine.run_once() == RulesReport()  # never tried again

        # A job submitted again under the same key keeps its depth.
        again = await app.storage.rules.submit_job(new_job(request, definition, clock.now()), 1)
        assert (again.created, again.job.id) == (False, deep.job.id)

    run(settings, scenario)


def test_a_smaller_cap_stops_sooner_and_users_events_start_at_depth_0(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.rules.create(
            {
                "event_pattern": {"source": ["shop"]},
                "targets": [{"id": "bill", "kind": "submit-job", "definition": "report"}],
            },
            name="bill",
        )
        await app.events.put([put("shop", order=1)])
        report = await app.rules_engine(RulesConfig(max_causation_depth=1)).run_once()
        assert (report.delivered, report.refused) == (1, 0)  # depth 1: a user's event is 0
        await app.events.put([put("shop", order=2)])
        report = await app.rules_engine(RulesConfig(max_causation_depth=0)).run_once()
        assert (report.delivered, report.refused) == (0, 1)
        refused = await app.rules.history("bill", REFUSED)
        assert [i.error for i in refused] == ["causation depth 1 exceeds 0: a rule loop?"]

    run(settings, scenario)


async def all_done(app: Dockyard, definition: str, deadline: float) -> list[Any]:
    """The jobs of ``definition``, once every one of them has ended (a worker runs them)."""
    while True:
        jobs = await jobs_of(app, definition)
        if all(job.state in (JobState.SUCCEEDED, JobState.FAILED) for job in jobs):
            return jobs
        assert time.monotonic() < deadline, "the worker did not finish the jobs"
        await asyncio.sleep(0.02)  # a poll with a deadline: the worker runs in its own thread


def test_a_loop_that_fans_out_is_held_to_its_rule_s_rate(
    settings: Settings, start_worker: Any
) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        targets = [
            {"id": "one", "kind": "submit-job", "definition": "loop"},
            {"id": "two", "kind": "submit-job", "definition": "loop"},
        ]
        # Every state change of every loop job (STARTING, RUNNING, SUCCEEDED) submits two more:
        # six a job, so the cap alone would allow 6**16 jobs. The clock stands still: no refill.
        storm = {"source": ["dockyard.job"], "detail": {"jobDefinition": [{"prefix": "loop:"}]}}
        await app.rules.create(
            {"event_pattern": storm, "targets": targets, "max_invocations_per_minute": 10},
            name="storm",
        )
        await app.jobs.submit(SubmitRequest(definition="loop"))
        start_worker(concurrency=4, clock=clock)
        engine = app.rules_engine()
        deadline = time.monotonic() + 60
        rounds = []
        while True:  # a round once every job has ended, until a round has nothing to do
            await all_done(app, "loop", deadline)
            report = await engine.run_once()
            if report == RulesReport():
                break
            rounds.append((report.delivered, report.throttled))
            assert len(rounds) <= 5, f"the loop ran away: {rounds}"
        assert rounds == [(6, 0), (4, 32), (0, 24)]
        assert len(await jobs_of(app, "loop")) == 1 + 10
        history = await app.rules.history("storm", limit=1000)
        delivered = sorted(i.depth for i in history if i.state is DELIVERED)
        assert delivered == [1] * 6 + [2] * 4

    run(settings, scenario)


# -- the rate of a rule -------------------------------------------------------------------------


def test_a_rule_over_its_rate_records_the_rest_throttled_and_others_go_on(
    settings: Settings,
) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        for name, rate in (("limited", {"max_invocations_per_minute": 3}), ("plain", {})):
            await app.rules.create(
                {
                    "event_pattern": {"source": ["shop"]},
                    "targets": [{"id": "bill", "kind": "submit-job", "definition": "report"}],
                    **rate,
                },
                name=name,
            )
        assert (await app.rules.get("plain")).spec.max_invocations_per_minute == 1000
        engine = app.rules_engine()
        burst = await app.events.put([put("shop", order=n) for n in range(5)])
        report = await engine.run_once()
        assert (report.events, report.invocations, report.delivered) == (5, 10, 8)
        assert (report.throttled, report.refused, report.failed) == (2, 0, 0)
        limited = await app.rules.history("limited")
        assert (
            states_by_event(limited)
            == {
                **{event.id: DELIVERED for event in burst[:3]},  # in the order they came
                **{event.id: THROTTLED for event in burst[3:]},
            }
        )
        for throttled in [i for i in limited if i.state is THROTTLED]:
            assert throttled.error == "throttled: over the rule's max_invocations_per_minute (3)"
            assert (throttled.attempts, throttled.next_attempt_at, throttled.depth) == (0, None, 1)
        assert {i.state for i in await app.rules.history("plain")} == {DELIVERED}  # all five
        assert len(await jobs_of(app, "report")) == 8
        assert (await engine.run_once()).delivered == 0  # throttled is never tried again
        assert await app.rules.retry_invocations("limited") == 0  # nor on the dead list

        # Three a minute: twenty seconds bring one back, a minute all three.
        clock.advance(20)
        later = await app.events.put([put("shop", order=n) for n in range(5, 7)])
        await engine.run_once()
        after = states_by_event(await app.rules.history("limited"))
        assert [after[event.id] for event in later] == [DELIVERED, THROTTLED]
        clock.advance(60)
        refilled = await app.events.put([put("shop", order=n) for n in range(7, 11)])
        await engine.run_once()
        after = states_by_event(await app.rules.history("limited", limit=1000))
        assert [after[event.id] for event in refilled] == [DELIVERED] * 3 + [THROTTLED]

    run(settings, scenario)


def test_the_rate_counts_each_target(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        targets = [
            {"id": "one", "kind": "submit-job", "definition": "report"},
            {"id": "two", "kind": "submit-job", "definition": "report"},
        ]
        await app.rules.create(
            {
                "event_pattern": {"source": ["shop"]},
                "targets": targets,
                "max_invocations_per_minute": 3,
            },
            name="pair",
        )
        await app.events.put([put("shop", order=1), put("shop", order=2)])
        report = await app.rules_engine().run_once()
        assert (report.delivered, report.throttled) == (3, 1)

    run(settings, scenario)


@pytest.mark.parametrize("value", [0, -1, 100_001, 1.5, "10", True, None])
def test_a_bad_rate_names_the_field_and_writes_nothing(settings: Settings, value: Any) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        document = {"event_pattern": {"source": ["shop"]}, "max_invocations_per_minute": value}
        with pytest.raises(ValidationError) as caught:
            await app.rules.create(document, name="bad")
        assert caught.value.field == "max_invocations_per_minute"
        assert "from 1 to 100000" in str(caught.value)
        assert await app.rules.list() == []

    run(settings, scenario)


# -- webhooks -----------------------------------------------------------------------------------


def test_a_webhook_is_told_the_depth(settings: Settings, http_server: HttpServer) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.rules.create(
            {
                "event_pattern": {"source": ["shop"]},
                "targets": [{"id": "bill", "kind": "submit-job", "definition": "report"}],
            },
            name="bill",
        )
        hook = {"id": "tell", "kind": "webhook", "url": f"{http_server.url}/hook"}
        cancelled = {"source": ["dockyard.job"], "detail": {"status": ["CANCELLED"]}}
        await app.rules.create({"event_pattern": cancelled, "targets": [hook]}, name="tell")
        engine = app.rules_engine()
        await app.events.put([put("shop", order=1)])
        await engine.run_once()
        (job,) = await jobs_of(app, "report")  # submitted by a rule: depth 1
        await app.jobs.cancel(job.id)
        await engine.run_once()
        (request,) = http_server.received
        assert request.headers[DEPTH_HEADER] == "2"
        (told,) = await app.rules.history("tell")
        assert (told.state, told.depth) == (DELIVERED, 2)

    run(settings, scenario)


# -- stores made before causation depths --------------------------------------------------------


async def _migrate_and_read(url: str) -> list[Invocation]:
    storage = open_storage(url)
    try:
        await storage.migrate()
        return await storage.rules.invocations("old", None, 10)
    finally:
        await storage.close()


def _old_rule_spec() -> str:
    spec, _ = parse_rule({"event_pattern": {"source": ["shop"]}})
    return json.dumps(spec_document(spec))


def _old_event() -> str:
    return json.dumps({"id": "e-1", "source": "shop", "detail-type": "Happened", "detail": {}})


def test_sqlite_history_made_before_depths_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    every = sqlite_migrator.available_migrations()
    before = [migration for migration in every if migration[0] < 11]
    monkeypatch.setattr(sqlite_migrator, "available_migrations", lambda: before)
    assert asyncio.run(_migrate_and_read(url)) == []  # the schema before 0011
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute("INSERT INTO rules VALUES ('old', ?, 1, 0, 0)", (_old_rule_spec(),))
        db.execute(
            "INSERT INTO invocations (id, rule, target, event_id, event, state, attempts, error,"
            " created_at, updated_at) VALUES ('i-1', 'old', 'hook', 'e-1', ?, 'DEAD', 3,"
            " 'HTTP 503', 0, 0)",
            (_old_event(),),
        )
    monkeypatch.undo()
    (kept,) = asyncio.run(_migrate_and_read(url))
    assert (kept.id, kept.state, kept.attempts, kept.error) == ("i-1", "DEAD", 3, "HTTP 503")
    assert kept.depth == 1


def test_postgres_history_made_before_depths_is_kept(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = postgres_migrator.available_migrations()
    before = [migration for migration in every if migration[0] < 8]
    monkeypatch.setattr(postgres_migrator, "available_migrations", lambda: before)
    assert asyncio.run(_migrate_and_read(postgres_url)) == []
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(
            "INSERT INTO rules VALUES ('old', %s::jsonb, true, now(), now())", (_old_rule_spec(),)
        )
        db.execute(
            "INSERT INTO invocations (id, rule, target, event_id, event, state, attempts, error,"
            " created_at, updated_at) VALUES ('i-1', 'old', 'hook', 'e-1', %s::jsonb, 'DEAD', 3,"
            " 'HTTP 503', now(), now())",
            (_old_event(),),
        )
    monkeypatch.undo()
    (kept,) = asyncio.run(_migrate_and_read(postgres_url))
    assert (kept.id, kept.state, kept.attempts, kept.error) == ("i-1", "DEAD", 3, "HTTP 503")
    assert kept.depth == 1
