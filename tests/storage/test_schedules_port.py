"""The schedules port: schedules as a resource, guarded replacement, due schedules, and the
scheduler's rounds of fires (schedules moved and jobs submitted in one transaction)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from dockyard.domain.events import Event, iso_time
from dockyard.domain.fire_plans import fire_request, plan_fires
from dockyard.domain.jobs import new_job
from dockyard.domain.records import Definition, Job, JobId, NewJob
from dockyard.domain.scheduling import Schedule, parse_schedule
from dockyard.storage import Fire, JobQuery, Storage
from tests.helpers.loops import Run
from tests.storage.records import T0, at, rule, schedule

GRACE = timedelta(minutes=1)


def fire_jobs(due: Schedule, definition: Definition, now: datetime) -> tuple[list[NewJob], Fire]:
    """The jobs of ``due``'s fires at ``now`` and the round that records them, as the
    scheduler plans them."""
    assert due.next_fire_at is not None
    plan = plan_fires(due, now=now, grace=GRACE)
    jobs = [new_job(fire_request(due, moment), definition, now) for moment in plan.fires]
    fire = Fire(
        schedule=due.name,
        expected_next=due.next_fire_at,
        next_fire_at=plan.next_fire_at,
        jobs=jobs,
        fired_at=plan.fires[-1] if plan.fires else None,
        now=now,
    )
    return jobs, fire


def ids(jobs: list[Job]) -> list[JobId]:
    return [item.id for item in jobs]


def current(storage: Storage, run: Run, name: str) -> Schedule:
    found = run(storage.schedules.get(name))
    assert found is not None, f"schedule {name} is gone"
    return found


def test_insert_stores_a_new_name_once(storage: Storage, run: Run) -> None:
    nightly = schedule("nightly", "cron(0 13 * * ? *)", description="daily at 13:00")
    assert nightly.next_fire_at == at(3600)
    assert run(storage.schedules.insert(nightly)) is True
    assert run(storage.schedules.insert(schedule("nightly", "rate(1 hour)", at(5)))) is False
    assert run(storage.schedules.get("nightly")) == nightly
    assert run(storage.schedules.get("nothing")) is None
    assert run(storage.schedules.insert(schedule("alpha", "rate(5 minutes)"))) is True
    assert [s.name for s in run(storage.schedules.all())] == ["alpha", "nightly"]


def test_replace_applies_only_while_next_fire_at_is_as_expected(storage: Storage, run: Run) -> None:
    nightly = schedule("nightly", "cron(0 13 * * ? *)")
    run(storage.schedules.insert(nightly))
    spec, enabled = parse_schedule(
        {"expression": "rate(2 hours)", "target": {"definition": "deploy"}, "state": "DISABLED"}
    )
    changed = replace(
        nightly,
        spec=spec,
        enabled=enabled,
        next_fire_at=at(7200),
        updated_at=at(5),
        last_error="deploy is missing",
    )
    assert run(storage.schedules.replace(changed, at(1))) is False
    assert current(storage, run, "nightly") == nightly
    assert run(storage.schedules.replace(changed, at(3600))) is True
    stored = current(storage, run, "nightly")
    assert (stored.spec, stored.enabled, stored.next_fire_at) == (spec, False, at(7200))
    assert (stored.updated_at, stored.last_error, stored.created_at) == (
        at(5),
        changed.last_error,
        T0,
    )
    # Moved meanwhile: the same expectation no longer holds.
    assert run(storage.schedules.replace(changed, at(3600))) is False
    # None is a value to expect, like any time.
    finished = replace(changed, next_fire_at=None)
    assert run(storage.schedules.replace(finished, at(7200))) is True
    assert run(storage.schedules.replace(replace(finished, last_error=None), None)) is True
    assert current(storage, run, "nightly").last_error is None
    assert run(storage.schedules.replace(schedule("nothing", "rate(1 hour)"), None)) is False


def test_due_lists_enabled_schedules_whose_time_came_earliest_first(
    storage: Storage, run: Run
) -> None:
    assert run(storage.schedules.next_fire_at()) is None
    for name, time in (("ten", "12:10"), ("five", "12:05"), ("twenty", "12:20")):
        run(storage.schedules.insert(schedule(name, f"at(2030-01-01T{time}:00)")))
    run(storage.schedules.insert(schedule("off", "at(2030-01-01T12:01:00)", state="DISABLED")))
    assert run(storage.schedules.next_fire_at()) == at(300)
    assert [s.name for s in run(storage.schedules.due(at(600), 10))] == ["five", "ten"]
    assert [s.name for s in run(storage.schedules.due(at(600), 1))] == ["five"]
    assert run(storage.schedules.due(at(299), 10)) == []


def test_record_fires_moves_schedules_and_submits_their_jobs(
    storage: Storage, run: Run, definition: Definition
) -> None:
    every = schedule("every", "rate(5 minutes)")  # fires at its creation first
    late = schedule("late", "rate(1 hour)", at(-3600))
    for item in (every, late):
        run(storage.schedules.insert(item))
    jobs, fire = fire_jobs(every, definition, at(1))
    # A round planned from an old read of ``late``: its next fire is no longer at(-60).
    _, stale = fire_jobs(replace(late, next_fire_at=at(-60)), definition, at(1))
    assert stale.jobs
    applied, skipped = run(storage.schedules.record_fires([fire, stale]))
    assert applied.applied and not skipped.applied and skipped.jobs == ()
    assert [(i.job.id, i.created) for i in applied.jobs] == [(jobs[0].id, True)]
    stored_job = run(storage.jobs.get(jobs[0].id))
    assert (
        stored_job is not None
        and stored_job.idempotency_key == "schedule:every:2030-01-01T12:00:00Z"
    )
    moved = current(storage, run, "every")
    assert (moved.next_fire_at, moved.last_fire_at, moved.fires) == (at(300), T0, 1)
    assert (moved.last_job_id, moved.last_error, moved.updated_at) == (jobs[0].id, None, at(1))
    assert current(storage, run, "late") == late
    assert all(run(storage.jobs.get(item.id)) is None for item in stale.jobs)
    # The same round again (a second scheduler): the schedule moved, nothing is submitted.
    (again,) = run(storage.schedules.record_fires([fire]))
    assert not again.applied and again.jobs == ()
    assert ids(run(storage.jobs.select(JobQuery()))) == [jobs[0].id]


def test_a_repeated_fire_key_returns_the_job_it_made(
    storage: Storage, run: Run, definition: Definition
) -> None:
    every = schedule("every", "rate(5 minutes)")
    run(storage.schedules.insert(every))
    first_jobs, first = fire_jobs(every, definition, at(1))
    run(storage.schedules.record_fires([first]))
    # The schedule is put back on the fire it made (an update, a restore); fired again, the
    # key of that fire time finds its job.
    run(storage.schedules.replace(every, at(300)))
    repeat_jobs, repeat = fire_jobs(every, definition, at(2))
    (result,) = run(storage.schedules.record_fires([repeat]))
    assert result.applied
    (inserted,) = result.jobs
    assert not inserted.created and inserted.job.id == first_jobs[0].id != repeat_jobs[0].id
    assert current(storage, run, "every").last_job_id == first_jobs[0].id
    assert run(storage.jobs.get(repeat_jobs[0].id)) is None


def test_a_round_records_errors_deletes_finished_schedules_and_puts_its_events(
    storage: Storage, run: Run, definition: Definition
) -> None:
    broken, once = schedule("broken", "rate(1 hour)"), schedule("once", "at(2030-01-01T12:00:30)")
    for item in (broken, once):
        run(storage.schedules.insert(item))
    run(storage.rules.insert(rule("watch", source="dockyard.schedule")))
    failed = Fire(
        schedule="broken",
        expected_next=T0,
        next_fire_at=at(3600),
        error="no definition",
        now=at(40),
    )
    jobs, last = fire_jobs(once, definition, at(40))
    announced = Event.new(
        "dockyard.schedule",
        "Schedule Fired",
        {"schedule": "once", "scheduledTime": iso_time(at(30)), "jobId": jobs[0].id},
        now=at(40),
    )
    final = replace(last, delete=True, events=[announced])
    assert final.next_fire_at is None
    assert [r.applied for r in run(storage.schedules.record_fires([failed, final]))] == [True, True]
    kept = current(storage, run, "broken")
    assert (kept.next_fire_at, kept.last_error, kept.last_fire_at, kept.fires) == (
        at(3600),
        "no definition",
        None,
        0,
    )
    assert run(storage.schedules.get("once")) is None
    assert run(storage.jobs.get(jobs[0].id)) is not None
    assert [e.envelope["id"] for e in run(storage.events.recent(10))] == [announced.id]


def test_delete_removes_a_schedule(storage: Storage, run: Run) -> None:
    run(storage.schedules.insert(schedule("a", "rate(1 hour)")))
    assert run(storage.schedules.delete("a")) is True
    assert run(storage.schedules.delete("a")) is False
    assert run(storage.schedules.get("a")) is None
    assert run(storage.schedules.all()) == []
