"""The scheduler on each backend: fires on time, each exactly once, under every policy.

Times come from a clock the test moves (``FakeClock``), so "three hours of downtime" takes no
time; each round is one :meth:`Scheduler.run_once`, as the leader's loop runs it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from dockyard import ConflictError, NotFoundError, ValidationError
from dockyard.app import Dockyard
from dockyard.domain.records import Job
from dockyard.domain.states import JobState
from dockyard.runtime import Scheduler, SchedulerConfig
from dockyard.settings import Settings
from dockyard.storage.ports import JobQuery
from tests.conftest import FakeClock

T = TypeVar("T")
START = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def run(settings: Settings, scenario: Callable[[Dockyard, FakeClock], Awaitable[T]]) -> T:
    """Run ``scenario`` on a Dockyard over the test's store with a clock at START."""

    async def main() -> T:
        clock = FakeClock(START)
        app = await Dockyard.open(settings, clock=clock)
        try:
            await app.definitions.register(
                {"executor": "python", "function": "tests.jobfunctions:echo"},
                name="report",
            )
            return await scenario(app, clock)
        finally:
            await app.close()

    return asyncio.run(main())


def move_to(clock: FakeClock, moment: datetime) -> None:
    clock.advance((moment - clock.now()).total_seconds())


def scheduler(app: Dockyard, **config: Any) -> Scheduler:
    return app.scheduler(SchedulerConfig(**config), rng=random.Random(7))


async def jobs(app: Dockyard) -> list[Job]:
    """Every job, oldest first."""
    return list(reversed(await app.storage.jobs.select(JobQuery(limit=1000))))


def schedule_doc(expression: str, **fields: Any) -> dict[str, Any]:
    target = {"definition": "report", **fields.pop("target", {})}
    return {"expression": expression, "target": target, **fields}


def test_a_cron_schedule_fires_each_minute_once_with_the_fire_time_in_its_payload(
    settings: Settings,
) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        payload = {"at": "<aws.scheduler.scheduled-time>", "by": "<aws.scheduler.schedule-arn>"}
        created = await app.schedules.create(
            schedule_doc("cron(* * * * ? *)", target={"payload": payload}), name="minutely"
        )
        assert created.next_fire_at == at("2026-06-01T12:01:00+00:00")
        firing = scheduler(app)
        assert (await firing.run_once()).fired == 0  # nothing is due yet

        move_to(clock, at("2026-06-01T12:01:00.200+00:00"))
        assert (await firing.run_once()).fired == 1
        assert (await firing.run_once()).fired == 0  # the same minute never fires twice
        move_to(clock, at("2026-06-01T12:02:00.100+00:00"))
        assert (await firing.run_once()).fired == 1

        made = await jobs(app)
        assert [job.payload for job in made] == [
            {"at": "2026-06-01T12:01:00Z", "by": "dockyard:schedule/minutely"},
            {"at": "2026-06-01T12:02:00Z", "by": "dockyard:schedule/minutely"},
        ]
        assert [job.idempotency_key for job in made] == [
            "schedule:minutely:2026-06-01T12:01:00Z",
            "schedule:minutely:2026-06-01T12:02:00Z",
        ]
        assert [job.not_before for job in made] == [
            at("2026-06-01T12:01:00+00:00"),
            at("2026-06-01T12:02:00+00:00"),
        ]
        shown = await app.schedules.get("minutely")
        assert shown.fires == 2
        assert shown.last_fire_at == at("2026-06-01T12:02:00+00:00")
        assert shown.last_job_id == made[-1].id
        assert shown.next_fire_at == at("2026-06-01T12:03:00+00:00")

    run(settings, scenario)


def test_a_rate_fires_at_once_then_every_period_and_an_at_fires_once(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        rate = await app.schedules.create(schedule_doc("rate(5 minutes)"), name="rate")
        assert rate.next_fire_at == START  # AWS: a rate without a start fires immediately
        clock.advance(0.75)  # fire times are whole seconds: a rate created now fires at once too
        soon = await app.schedules.create(schedule_doc("rate(1 day)"), name="soon")
        assert soon.next_fire_at == START
        await app.schedules.delete("soon")
        clock.advance(-0.75)
        once = await app.schedules.create(
            schedule_doc("at(2026-06-01T14:05:00)", timezone="Europe/Paris"), name="once"
        )
        assert once.next_fire_at == at("2026-06-01T12:05:00+00:00")  # 14:05 in Paris (CEST)
        firing = scheduler(app)
        assert (await firing.run_once()).fired == 1
        move_to(clock, START + timedelta(minutes=5))
        assert (await firing.run_once()).fired == 2  # the rate's second fire, and the at
        done = await app.schedules.get("once")
        assert done.next_fire_at is None and done.fires == 1  # kept: no delete_after_completion

        later = await app.schedules.create(
            schedule_doc("at(2026-06-01T15:00:00)", delete_after_completion=True),
            name="later",
        )
        assert later.next_fire_at == at("2026-06-01T15:00:00+00:00")
        move_to(clock, at("2026-06-01T15:00:01+00:00"))
        report = await firing.run_once()
        # The at fires; the rate's 34 fires from 12:10:30 to 14:55:30 were missed (no scheduler
        # ran) and its catch-up policy, none, skips them.
        assert (report.fired, report.skipped) == (1, 34)
        with pytest.raises(NotFoundError):
            await app.schedules.get("later")  # the at deleted itself after firing
        keys = [job.idempotency_key for job in await jobs(app)]
        assert "schedule:later:2026-06-01T15:00:00Z" in keys
        assert sum(key is not None and key.startswith("schedule:rate:") for key in keys) == 2
        assert (await app.schedules.get("rate")).next_fire_at == at("2026-06-01T15:00:30+00:00")

    run(settings, scenario)


@pytest.mark.parametrize(
    ("policy", "limit", "fired"),
    [
        ("none", 100, []),
        ("latest", 100, ["15:00"]),
        ("all", 100, ["13:00", "14:00", "15:00"]),
        ("all", 2, ["14:00", "15:00"]),
    ],
)
def test_catch_up_after_downtime(
    settings: Settings, policy: str, limit: int, fired: list[str]
) -> None:
    """Hourly fires at 13:00, 14:00 and 15:00 were missed while no scheduler ran until 15:30."""

    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.schedules.create(
            schedule_doc("cron(0 * * * ? *)", catch_up=policy, catch_up_limit=limit),
            name="hourly",
        )
        move_to(clock, at("2026-06-01T15:30:00+00:00"))
        report = await scheduler(app).run_once()
        assert report.skipped == 3 - len(fired)
        made = await jobs(app)
        assert [job.idempotency_key for job in made] == [
            f"schedule:hourly:2026-06-01T{hour}:00Z" for hour in fired
        ]
        assert (await app.schedules.get("hourly")).next_fire_at == at("2026-06-01T16:00:00+00:00")

    run(settings, scenario)


def test_overlap_skip_waits_for_the_previous_job_and_queue_orders_them(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.schedules.create(schedule_doc("cron(* * * * ? *)", overlap="skip"), name="skip")
        await app.schedules.create(schedule_doc("cron(* * * * ? *)", overlap="queue"), name="queue")
        firing = scheduler(app)
        for minute in (1, 2, 3):
            move_to(clock, at(f"2026-06-01T12:0{minute}:00.5+00:00"))
            await firing.run_once()
        skip_jobs = [j for j in await jobs(app) if j.idempotency_key.startswith("schedule:skip:")]  # type: ignore[union-attr]
        # The 12:01 job never ran: 12:02 and 12:03 were skipped.
        assert [job.idempotency_key for job in skip_jobs] == ["schedule:skip:2026-06-01T12:01:00Z"]
        await app.jobs.cancel(skip_jobs[0].id)
        move_to(clock, at("2026-06-01T12:04:00.5+00:00"))
        await firing.run_once()
        skip_jobs = [j for j in await jobs(app) if j.idempotency_key.startswith("schedule:skip:")]  # type: ignore[union-attr]
        assert len(skip_jobs) == 2

        queued = [j for j in await jobs(app) if j.idempotency_key.startswith("schedule:queue:")]  # type: ignore[union-attr]
        assert len(queued) == 4
        assert {job.group_key for job in queued} == {"schedule:queue"}

    run(settings, scenario)


def test_a_flexible_window_delays_each_job_within_the_window(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.schedules.create(
            schedule_doc("cron(0 * * * ? *)", flexible_window_minutes=15), name="flex"
        )
        firing = scheduler(app)
        delays = []
        for hour in range(13, 19):
            move_to(clock, at(f"2026-06-01T{hour}:00:01+00:00"))
            await firing.run_once()
        for job in await jobs(app):
            fire = at(job.idempotency_key.split(":", 2)[2].replace("Z", "+00:00"))  # type: ignore[union-attr]
            delays.append((job.not_before - fire).total_seconds())
        assert len(delays) == 6
        assert all(0 <= delay <= 15 * 60 for delay in delays)
        assert len(set(delays)) == 6  # a random moment each, not one fixed delay

    run(settings, scenario)


def test_start_end_and_a_missing_definition_are_visible(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        bounded = await app.schedules.create(
            schedule_doc(
                "cron(0 * * * ? *)",
                start="2026-06-01T14:30:00Z",
                end="2026-06-01T16:00:00Z",
                delete_after_completion=False,
            ),
            name="bounded",
        )
        assert bounded.next_fire_at == at("2026-06-01T15:00:00+00:00")
        firing = scheduler(app)
        for hour in (15, 16):
            move_to(clock, at(f"2026-06-01T{hour}:00:05+00:00"))
            await firing.run_once()
        done = await app.schedules.get("bounded")
        assert done.fires == 2 and done.next_fire_at is None  # 15:00 and 16:00, then the end

        await app.schedules.create(schedule_doc("cron(30 * * * ? *)"), name="orphan")
        await app.definitions.deregister("report:1")
        move_to(clock, at("2026-06-01T16:30:02+00:00"))
        report = await firing.run_once()
        assert report.failed == 1 and report.fired == 0
        orphan = await app.schedules.get("orphan")
        assert orphan.last_error is not None and "report" in orphan.last_error
        assert orphan.next_fire_at == at("2026-06-01T17:30:00+00:00")  # it moves on regardless

    run(settings, scenario)


def test_pause_resume_and_update(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.schedules.create(
            schedule_doc("cron(0 * * * ? *)", target={"payload": {"keep": 1}}), name="hourly"
        )
        paused = await app.schedules.set_enabled("hourly", False)
        assert paused.state == "DISABLED"
        move_to(clock, at("2026-06-01T15:10:00+00:00"))
        firing = scheduler(app)
        assert (await firing.run_once()).fired == 0  # paused: due but not fired
        resumed = await app.schedules.set_enabled("hourly", True)
        assert resumed.next_fire_at == at("2026-06-01T16:00:00+00:00")  # nothing caught up

        changed = await app.schedules.update(
            "hourly",
            {"expression": "cron(15 * * * ? *)", "target": {"queue": "reports"}},
        )
        assert changed.next_fire_at == at("2026-06-01T15:15:00+00:00")
        assert changed.spec.target.payload == {"keep": 1}  # the target merged
        assert changed.spec.target.queue == "reports"
        with pytest.raises(ValidationError) as bad:
            await app.schedules.update("hourly", {"expression": "cron(0 1 * * * *)"})
        assert bad.value.field == "expression"
        with pytest.raises(ValidationError) as bad:
            await app.schedules.update("hourly", {"target": None})
        assert bad.value.field == "target"
        assert (await app.schedules.get("hourly")).spec.expression == "cron(15 * * * ? *)"

        # Its definition gone, the schedule can still be paused (to stop the failed fires).
        await app.definitions.deregister("report:1")
        assert (await app.schedules.set_enabled("hourly", False)).state == "DISABLED"

    run(settings, scenario)


def test_bad_schedules_are_refused_whole(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        cases: list[tuple[dict[str, Any], str]] = [
            (schedule_doc("rate(5 minute)"), "expression"),
            (schedule_doc("cron(0 12 * * ? *)", timezone="Europe/Pariss"), "timezone"),
            (schedule_doc("at(2020-01-01T00:00:00)"), "expression"),  # nothing left to fire
            (schedule_doc("rate(1 hour)", overlap="sometimes"), "overlap"),
            (schedule_doc("rate(1 hour)", flexible_window_minutes=2000), "flexible_window_minutes"),
            (schedule_doc("rate(1 hour)", target={"definition": "nope"}), "target.definition"),
            (schedule_doc("rate(1 hour)", start="2026-06-02T00:00:00"), "start"),
            (schedule_doc("rate(1 hour)", start="0001-01-01T00:00:00+01:00"), "start"),
            (schedule_doc("rate(1 hour)", timezone="Europe"), "timezone"),
            (schedule_doc("rate(1 hour)", timezone=""), "timezone"),
            (schedule_doc("rate(1 hour)", target={"priority": 5000}), "target.priority"),
            (schedule_doc("rate(1 hour)", target={"payload": {1, 2}}), "target.payload"),
            (schedule_doc("rate(1 hour)", target={"command": ["echo"]}), "target.command"),
            ({"expression": "rate(1 hour)"}, "target"),
        ]
        for document, field in cases:
            with pytest.raises(ValidationError) as caught:
                await app.schedules.create(document, name="bad")
            assert caught.value.field == field, document
        assert await app.schedules.list() == []
        await app.schedules.create(schedule_doc("rate(1 hour)"), name="good")
        with pytest.raises(ConflictError):
            await app.schedules.create(schedule_doc("rate(2 hours)"), name="good")

    run(settings, scenario)


def test_two_schedulers_at_once_make_one_job_per_fire(settings: Settings) -> None:
    """Both read the same due schedules and race to write them: the idempotency keys and the
    guard on next_fire_at leave one job per fire time."""

    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        for index in range(20):
            await app.schedules.create(schedule_doc("cron(* * * * ? *)"), name=f"s{index}")
        other = await Dockyard.open(app.settings, clock=clock)
        try:
            first, second = scheduler(app), scheduler(other)
            for minute in range(1, 6):
                move_to(clock, at(f"2026-06-01T12:0{minute}:00.5+00:00"))
                await asyncio.gather(first.run_once(), second.run_once())
        finally:
            await other.close()
        keys = [job.idempotency_key for job in await jobs(app)]
        assert len(keys) == len(set(keys)) == 20 * 5
        for schedule in await app.schedules.list():
            assert schedule.fires >= 5 and schedule.next_fire_at == at("2026-06-01T12:06:00+00:00")

    run(settings, scenario)


def test_fall_back_fires_an_ambiguous_time_once_and_spring_forward_skips(
    settings: Settings,
) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        move_to(clock, at("2026-03-28T12:00:00+00:00"))
        await app.schedules.create(
            schedule_doc("cron(30 2 * * ? *)", timezone="Europe/Paris"), name="paris"
        )
        firing = scheduler(app)
        fired = []
        while clock.now() < at("2026-03-31T12:00:00+00:00"):
            clock.advance(600)
            if (await firing.run_once()).fired:
                fired.append(clock.now())
        keys = [job.idempotency_key for job in await jobs(app)]
        assert keys == [  # 02:30 Paris does not exist on the 29th
            "schedule:paris:2026-03-30T00:30:00Z",
            "schedule:paris:2026-03-31T00:30:00Z",
        ]

    run(settings, scenario)


def test_a_job_of_a_fire_runs_like_any_job(settings: Settings, start_worker: Any) -> None:
    """The worker runs what the scheduler submits (real time here: the fire is due at once)."""

    async def scenario(app: Dockyard, clock: FakeClock) -> str:
        await app.schedules.create(
            schedule_doc(
                "rate(1 day)", target={"payload": {"fired": "<aws.scheduler.scheduled-time>"}}
            ),
            name="daily",
        )
        await scheduler(app).run_once()
        (job,) = await jobs(app)
        return job.id

    job_id = run(settings, scenario)

    import dockyard

    with dockyard.DirectClient(settings) as client:
        start_worker(concurrency=1)
        done = client.wait(job_id, timeout=30)
    assert done.state is JobState.SUCCEEDED
    assert done.result == {"received": {"fired": START.strftime("%Y-%m-%dT%H:%M:%SZ")}, "ok": True}
