"""The jobs port: insert, claim, guarded transitions, leases and upkeep, as ``JobStore`` states
them, on every backend."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime

from dockyard.domain import transitions
from dockyard.domain.definitions import parse_definition
from dockyard.domain.fire_plans import fire_request
from dockyard.domain.jobs import new_job
from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import Definition, Job, JobId
from dockyard.domain.retry import RetryPolicy
from dockyard.domain.states import JobState
from dockyard.storage import Fire, Heartbeat, JobQuery, Storage
from dockyard.storage.ports.jobs import LeaseEnd
from tests.helpers.loops import Run
from tests.storage.records import (
    LEASE,
    T0,
    at,
    claim_request,
    definition_spec,
    finish,
    job,
    schedule,
)


def ids(jobs: list[Job]) -> list[JobId]:
    return [item.id for item in jobs]


def beat(
    worker_id: str, job_ids: tuple[JobId, ...], now: datetime, lease_until: datetime | None
) -> Heartbeat:
    return Heartbeat(worker_id=worker_id, job_ids=job_ids, now=now, lease_until=lease_until)


def current(storage: Storage, run: Run, job_id: JobId) -> Job:
    found = run(storage.jobs.get(job_id))
    assert found is not None, f"job {job_id} is gone"
    return found


def test_insert_stores_runnable_jobs_and_keeps_the_request_order(
    storage: Storage, run: Run, definition: Definition
) -> None:
    new = [
        job(definition, name=f"j{i}", payload={"i": i}, parameters={"n": str(i)}) for i in range(3)
    ]
    inserted = run(storage.jobs.insert(new))
    assert [item.job.id for item in inserted] == [item.id for item in new]
    assert all(item.created for item in inserted)
    for item, asked in zip(inserted, new, strict=True):
        stored = current(storage, run, asked.id)
        assert stored == item.job  # what insert returned is what was stored
        assert (stored.state, stored.name, stored.payload) == (
            JobState.RUNNABLE,
            asked.name,
            asked.payload,
        )
        assert (stored.created_at, stored.not_before) == (T0, T0)
        assert (stored.attempt_count, stored.attempts_used, stored.attempts) == (0, 0, ())
    assert run(storage.jobs.get(JobId("no-such-job"))) is None
    # Submitted together at one moment, they are claimed in the order they were given.
    claimed = [run(storage.jobs.claim(claim_request(limit=1))) for _ in new]
    assert [ids(batch) for batch in claimed] == [[item.id] for item in new]


def test_a_known_idempotency_key_returns_the_existing_job(
    storage: Storage, run: Run, definition: Definition
) -> None:
    first = job(definition, idempotency_key="order-1")
    (original,) = run(storage.jobs.insert([first]))
    again, other = job(definition, at(5), idempotency_key="order-1"), job(definition, at(5))
    repeated, fresh = run(storage.jobs.insert([again, other]))
    assert original.created and not repeated.created and fresh.created
    assert repeated.job.id == first.id and fresh.job.id == other.id
    # A key given twice in one batch makes one job too.
    twin_a, twin_b = (
        job(definition, at(6), idempotency_key="k2"),
        job(definition, at(6), idempotency_key="k2"),
    )
    made, kept = run(storage.jobs.insert([twin_a, twin_b]))
    assert made.created and made.job.id == twin_a.id
    assert not kept.created and kept.job.id == twin_a.id
    assert set(ids(run(storage.jobs.select(JobQuery())))) == {first.id, other.id, twin_a.id}


def test_claim_takes_priority_then_submission_order(
    storage: Storage, run: Run, definition: Definition
) -> None:
    low_1, high_1 = job(definition, T0), job(definition, at(1), priority=5)
    low_2, high_2 = job(definition, at(2)), job(definition, at(3), priority=5)
    run(storage.jobs.insert([low_1, high_1, low_2, high_2]))
    claimed = run(storage.jobs.claim(claim_request("w1", now=at(10), limit=3)))
    assert ids(claimed) == [high_1.id, high_2.id, low_1.id]
    for item in claimed:
        assert (item.state, item.worker_id) == (JobState.STARTING, "w1")
        assert (item.lease_expires_at, item.attempt_count, item.attempts_used) == (
            at(10) + LEASE,
            1,
            1,
        )
        (attempt,) = current(storage, run, item.id).attempts
        assert (attempt.number, attempt.worker_id, attempt.stopped_at) == (1, "w1", None)
    assert ids(run(storage.jobs.claim(claim_request("w2", now=at(10))))) == [low_2.id]
    assert run(storage.jobs.claim(claim_request("w2", now=at(10)))) == []


def test_a_job_is_claimable_from_its_not_before_time(
    storage: Storage, run: Run, definition: Definition
) -> None:
    later = job(definition, not_before=at(60))
    run(storage.jobs.insert([later]))
    assert run(storage.jobs.claim(claim_request(now=at(59)))) == []
    assert run(storage.jobs.next_runnable_at(None)) == at(60)
    assert run(storage.jobs.next_runnable_at(("elsewhere",))) is None
    assert ids(run(storage.jobs.claim(claim_request(now=at(60))))) == [later.id]
    assert run(storage.jobs.next_runnable_at(None)) is None


def test_claim_takes_only_jobs_of_the_executor_kinds_offered(
    storage: Storage, run: Run, definition: Definition
) -> None:
    """A worker offering http takes the http job and leaves the process job RUNNABLE, whatever
    their order; the job waits for a worker offering process. ``next_runnable_at`` sees only
    the kinds offered, so an idle worker is not woken for a job it cannot take."""
    hook_spec = parse_definition({"executor": "http", "url": "https://hooks.example.com/"})
    hook = run(storage.definitions.insert("hook", hook_spec, T0))
    process_job, http_job = job(definition, T0), job(hook, at(1))
    later = job(definition, at(2), not_before=at(60))
    run(storage.jobs.insert([process_job, http_job, later]))

    offered = claim_request("web", now=at(5), executors=("http", "docker"))
    assert ids(run(storage.jobs.claim(offered))) == [http_job.id]
    assert run(storage.jobs.claim(offered)) == []
    assert current(storage, run, process_job.id).state is JobState.RUNNABLE
    assert run(storage.jobs.next_runnable_at(None, ("http", "docker"))) is None

    host = claim_request("host", now=at(5), executors=("process",))
    assert ids(run(storage.jobs.claim(host))) == [process_job.id]
    assert run(storage.jobs.next_runnable_at(None, ("process",))) == at(60)
    assert ids(run(storage.jobs.claim(claim_request("any", now=at(60))))) == [later.id]


def test_every_way_in_stores_the_kind_and_a_retry_keeps_it(
    storage: Storage, run: Run, definition: Definition
) -> None:
    """A job a submit, a schedule's fire or a rule's target inserts, and one waiting to retry,
    is a process job: a worker offering http never takes it, one offering process does."""
    submitted = job(definition, T0, attempts=2)
    run(storage.jobs.insert([submitted]))
    every = schedule("every", "rate(5 minutes)")
    run(storage.schedules.insert(every))
    assert every.next_fire_at is not None
    fired = new_job(fire_request(every, every.next_fire_at), definition, at(1))
    fire = Fire(
        schedule="every",
        expected_next=every.next_fire_at,
        next_fire_at=at(300),
        jobs=[fired],
        fired_at=every.next_fire_at,
        now=at(1),
    )
    run(storage.schedules.record_fires([fire]))
    targeted = run(storage.rules.submit_job(job(definition, at(2)), depth=1)).job
    web = claim_request("web", now=at(5), executors=("http",))
    assert run(storage.jobs.claim(web)) == []

    (first,) = run(storage.jobs.claim(claim_request("host", now=at(5), limit=1)))
    run(storage.jobs.apply([transitions.start(first, "host", at(5))]))
    failed = finish(current(storage, run, first.id), "host", at(6), Outcome.exited(1))
    assert failed.to is JobState.RUNNABLE and run(storage.jobs.apply([failed])) == [True]
    assert run(storage.jobs.claim(claim_request("web", now=at(1000), executors=("http",)))) == []
    host = claim_request("host", now=at(1000), executors=("process",))
    assert set(ids(run(storage.jobs.claim(host)))) == {submitted.id, fired.id, targeted.id}


def test_claim_takes_only_the_queues_asked_for_and_none_that_is_paused(
    storage: Storage, run: Run, definition: Definition
) -> None:
    a, b, c = (job(definition, at(i), queue=name) for i, name in enumerate("abc"))
    a_2, b_2 = job(definition, at(3), queue="a"), job(definition, at(4), queue="b")
    run(storage.jobs.insert([a, b, c, a_2, b_2]))
    assert ids(run(storage.jobs.claim(claim_request(now=at(9), queues=("a",), limit=1)))) == [a.id]
    assert ids(run(storage.jobs.claim(claim_request(now=at(9), queues=("b", "c"))))) == [
        b.id,
        c.id,
        b_2.id,
    ]
    run(storage.queues.set_paused("a", True, at(9)))
    assert run(storage.jobs.claim(claim_request(now=at(9)))) == []
    run(storage.queues.set_paused("a", False, at(9)))
    assert ids(run(storage.jobs.claim(claim_request(now=at(9))))) == [a_2.id]


def test_a_group_runs_one_job_at_a_time(storage: Storage, run: Run, definition: Definition) -> None:
    first, second = job(definition, T0, group="g", attempts=2), job(definition, at(1), group="g")
    loose = job(definition, at(2))
    run(storage.jobs.insert([first, second, loose]))
    head, other = run(storage.jobs.claim(claim_request(now=at(5))))
    assert (head.id, other.id) == (first.id, loose.id)  # second waits behind first
    run(storage.jobs.apply([transitions.start(head, "w1", at(5))]))
    failed = finish(current(storage, run, first.id), "w1", at(6), Outcome.exited(1))
    assert failed.to is JobState.RUNNABLE and run(storage.jobs.apply([failed])) == [True]
    # A job that waits to retry still holds its group: its successor is not claimable.
    assert run(storage.jobs.claim(claim_request(now=at(7)))) == []
    (retried,) = run(storage.jobs.claim(claim_request(now=at(1000))))
    assert retried.id == first.id and retried.attempt_count == 2
    run(storage.jobs.apply([transitions.start(retried, "w1", at(1000))]))
    run(storage.jobs.apply([finish(current(storage, run, first.id), "w1", at(1001))]))
    assert ids(run(storage.jobs.claim(claim_request(now=at(1001))))) == [second.id]


def test_two_claims_never_take_the_same_job(
    storage: Storage, run: Run, definition: Definition, open_store: Callable[[], Storage]
) -> None:
    new = [job(definition, at(i)) for i in range(6)]
    run(storage.jobs.insert(new))
    other = open_store()

    async def race() -> tuple[list[Job], list[Job]]:
        one, two = await asyncio.gather(
            storage.jobs.claim(claim_request("w1", now=at(9), limit=4)),
            other.jobs.claim(claim_request("w2", now=at(9), limit=4)),
        )
        return one, two

    one, two = run(race())
    assert not set(ids(one)) & set(ids(two))
    assert sorted(ids(one) + ids(two)) == sorted(item.id for item in new)
    for worker, claimed in (("w1", one), ("w2", two)):
        assert {current(storage, run, item.id).worker_id for item in claimed} <= {worker}


def test_apply_changes_a_job_only_while_its_guard_holds(
    storage: Storage, run: Run, definition: Definition
) -> None:
    run(storage.jobs.insert([job(definition), job(definition, at(1))]))
    a, b = run(storage.jobs.claim(claim_request("w1", now=at(2))))
    # Another worker's start, and a requeue of a job that is not FAILED or CANCELLED.
    assert run(storage.jobs.apply([transitions.start(a, "w2", at(3))])) == [False]
    assert run(storage.jobs.apply([transitions.requeue(a, at(3))])) == [False]
    unchanged = current(storage, run, a.id)
    assert (unchanged.state, unchanged.worker_id, unchanged.started_at) == (
        JobState.STARTING,
        "w1",
        None,
    )
    assert unchanged.attempts[0].started_at is None
    # One result per transition, in order; a guard that fails fails alone.
    assert run(
        storage.jobs.apply([transitions.start(a, "w1", at(4)), transitions.start(b, "w2", at(4))])
    ) == [True, False]
    started = current(storage, run, a.id)
    assert (started.state, started.started_at, started.attempts[0].started_at) == (
        JobState.RUNNING,
        at(4),
        at(4),
    )
    assert current(storage, run, b.id).state is JobState.STARTING
    # The same start again finds the job RUNNING, not STARTING.
    assert run(storage.jobs.apply([transitions.start(a, "w1", at(5))])) == [False]
    assert current(storage, run, a.id).attempts[0].started_at == at(4)


def test_a_transition_that_does_not_apply_leaves_the_attempt_open(
    storage: Storage, run: Run, definition: Definition
) -> None:
    run(storage.jobs.insert([job(definition)]))
    (claimed,) = run(storage.jobs.claim(claim_request("w1", now=T0)))
    run(storage.jobs.apply([transitions.start(claimed, "w1", at(1))]))
    running = current(storage, run, claimed.id)
    # The rescuer read the job, then its worker renewed the lease: the rescue loses...
    run(storage.jobs.heartbeat(beat("w1", (claimed.id,), at(20), at(100))))
    rescue = transitions.rescue(running, RetryPolicy(), now=at(31), rng=random.Random(0))
    assert run(storage.jobs.apply([rescue])) == [False]
    # ...and so does an end written by a worker that does not hold the job.
    assert run(storage.jobs.apply([finish(running, "w2", at(32))])) == [False]
    after = current(storage, run, claimed.id)
    assert (after.state, after.worker_id, after.lease_expires_at) == (
        JobState.RUNNING,
        "w1",
        at(100),
    )
    (attempt,) = after.attempts
    assert (attempt.stopped_at, attempt.reason, attempt.exit_code) == (None, None, None)


def test_an_attempt_is_closed_once(storage: Storage, run: Run, definition: Definition) -> None:
    run(storage.jobs.insert([job(definition), job(definition, at(1))]))
    done, cancelled = run(storage.jobs.claim(claim_request("w1", now=at(2))))
    run(
        storage.jobs.apply(
            [transitions.start(done, "w1", at(3)), transitions.start(cancelled, "w1", at(3))]
        )
    )
    done, cancelled = current(storage, run, done.id), current(storage, run, cancelled.id)
    # The worker ends one first; a cancel built from an earlier read comes too late.
    assert run(storage.jobs.apply([finish(done, "w1", at(4))])) == [True]
    assert run(storage.jobs.apply([transitions.cancel(done, at(5))])) == [False]
    ended = current(storage, run, done.id)
    assert ended.state is JobState.SUCCEEDED
    assert (
        ended.attempts[0].stopped_at,
        ended.attempts[0].exit_code,
        ended.attempts[0].reason,
    ) == (at(4), 0, None)
    # A cancel closes the other first; its worker's end changes nothing afterwards. The lease
    # stays with the worker, which stops the body and then lets it go.
    assert run(storage.jobs.apply([transitions.cancel(cancelled, at(4))])) == [True]
    assert run(storage.jobs.apply([finish(cancelled, "w1", at(6))])) == [False]
    stopped = current(storage, run, cancelled.id)
    assert (stopped.state, stopped.worker_id, stopped.stopped_at) == (
        JobState.CANCELLED,
        "w1",
        at(4),
    )
    assert (stopped.attempts[0].stopped_at, stopped.attempts[0].reason) == (at(4), "Cancelled")


def test_apply_and_claim_finishes_and_takes_the_next_job_in_one_call(
    storage: Storage, run: Run, definition: Definition
) -> None:
    first, second = job(definition, T0, group="g"), job(definition, at(1), group="g")
    run(storage.jobs.insert([first, second]))
    (claimed,) = run(storage.jobs.claim(claim_request("w1", now=at(2))))
    run(storage.jobs.apply([transitions.start(claimed, "w1", at(2))]))
    running = current(storage, run, first.id)
    # The end frees the group's head, and the claim in the same call sees it freed.
    applied, taken = run(
        storage.jobs.apply_and_claim([finish(running, "w1", at(3))], claim_request("w1", now=at(3)))
    )
    assert applied == [True] and ids(taken) == [second.id]
    assert current(storage, run, first.id).state is JobState.SUCCEEDED
    assert current(storage, run, second.id).state is JobState.STARTING
    # A transition that does not apply is reported, and the claim still happens.
    applied, taken = run(
        storage.jobs.apply_and_claim([finish(running, "w1", at(4))], claim_request("w1", now=at(4)))
    )
    assert applied == [False] and taken == []


def test_heartbeat_renews_leases_and_names_the_jobs_no_longer_held(
    storage: Storage, run: Run, definition: Definition
) -> None:
    run(storage.jobs.insert([job(definition) for _ in range(3)]))
    a, b, c = run(storage.jobs.claim(claim_request("w1", now=T0)))
    run(storage.jobs.apply([transitions.cancel(current(storage, run, c.id), at(5))]))
    held = (a.id, b.id, c.id)
    assert run(storage.jobs.heartbeat(beat("w1", held, at(10), at(70)))) == {c.id}
    assert current(storage, run, a.id).lease_expires_at == at(70)
    # The cancelled job is no longer active (named, so its body stops), but its lease is still
    # the worker's until the body has stopped: renewed like the others.
    assert current(storage, run, c.id).lease_expires_at == at(70)
    # A check (no lease_until) tells the same; another worker holds none of them, renews none.
    assert run(storage.jobs.heartbeat(beat("w1", held, at(20), None))) == {c.id}
    lost = run(storage.jobs.heartbeat(beat("w2", (a.id, b.id), at(20), at(200))))
    assert lost == {a.id, b.id}
    assert current(storage, run, b.id).lease_expires_at == at(70)


def test_expired_leases_lists_held_jobs_whose_lease_ended(
    storage: Storage, run: Run, definition: Definition
) -> None:
    run(storage.jobs.insert([job(definition) for _ in range(3)]))
    a, b = run(storage.jobs.claim(claim_request("w1", now=T0, limit=2)))  # leases end at(30)
    run(storage.jobs.apply([transitions.start(a, "w1", at(1))]))  # RUNNING and STARTING both count
    assert run(storage.jobs.expired_leases(at(30), 10)) == []
    assert set(ids(run(storage.jobs.expired_leases(at(31), 10)))) == {a.id, b.id}
    assert len(run(storage.jobs.expired_leases(at(31), 1))) == 1
    run(storage.jobs.heartbeat(beat("w1", (a.id,), at(29), at(90))))
    assert ids(run(storage.jobs.expired_leases(at(31), 10))) == [b.id]


def test_prune_finished_deletes_only_jobs_finished_before_the_cutoff_oldest_first(
    storage: Storage, run: Run, definition: Definition
) -> None:
    run(storage.jobs.insert([job(definition) for _ in range(4)]))
    claimed = run(storage.jobs.claim(claim_request("w1", now=T0)))
    run(storage.jobs.apply([transitions.start(item, "w1", at(1)) for item in claimed]))
    a, b, c, unfinished = (current(storage, run, item.id) for item in claimed)
    run(
        storage.jobs.apply(
            [finish(a, "w1", at(10)), finish(b, "w1", at(20)), transitions.cancel(c, at(15))]
        )
    )
    assert run(storage.jobs.prune_finished(at(20), 1)) == [a.id]
    # b ended at the cutoff, not before it.
    assert run(storage.jobs.prune_finished(at(20), 10)) == [c.id]
    assert run(storage.jobs.prune_finished(at(21), 10)) == [b.id]
    assert run(storage.jobs.prune_finished(at(1000), 10)) == []
    for gone in (a, b, c):
        assert run(storage.jobs.get(gone.id)) is None
    assert ids(run(storage.jobs.select(JobQuery()))) == [unfinished.id]
    assert len(current(storage, run, unfinished.id).attempts) == 1


def test_select_filters_and_pages_newest_first(
    storage: Storage, run: Run, definition: Definition
) -> None:
    deploy = run(storage.definitions.insert("deploy", definition_spec(), T0))
    a, b = job(definition, T0, queue="a"), job(definition, at(1), queue="b", group="g")
    c, d = job(definition, at(2), queue="a"), job(deploy, at(3), queue="a")
    run(storage.jobs.insert([a, b, c, d]))
    run(storage.jobs.claim(claim_request(now=at(4), queues=("b",))))

    def select(query: JobQuery) -> list[JobId]:
        return ids(run(storage.jobs.select(query)))

    assert select(JobQuery()) == [d.id, c.id, b.id, a.id]
    assert select(JobQuery(queue="a")) == [d.id, c.id, a.id]
    assert select(JobQuery(definition_name="deploy")) == [d.id]
    assert select(JobQuery(group_key="g")) == [b.id]
    assert select(JobQuery(states=frozenset({JobState.STARTING, JobState.SUCCEEDED}))) == [b.id]
    assert select(JobQuery(states=frozenset({JobState.RUNNABLE}), queue="a", limit=1)) == [d.id]
    assert select(JobQuery(limit=2)) == [d.id, c.id]
    assert select(JobQuery(limit=2, before=c.id)) == [b.id, a.id]
    (with_attempts,) = run(storage.jobs.select(JobQuery(group_key="g")))
    assert [attempt.number for attempt in with_attempts.attempts] == [1]


def test_refresh_statistics_refreshes_nothing_when_nothing_changed(
    storage: Storage, run: Run
) -> None:
    assert run(storage.jobs.refresh_statistics()) is False


def test_a_cancel_read_before_a_claim_closes_the_attempt_the_claim_opened(
    storage: Storage, run: Run, definition: Definition
) -> None:
    # The race of issue 17: a cancel reads the job RUNNABLE (no attempt), a worker claims it,
    # then the cancel applies. The attempt the claim opened must close with it.
    (inserted,) = run(storage.jobs.insert([job(definition)]))
    stale = current(storage, run, inserted.job.id)
    assert stale.state is JobState.RUNNABLE and stale.attempts == ()
    (claimed,) = run(storage.jobs.claim(claim_request(limit=1)))
    (applied,) = run(storage.jobs.apply([transitions.cancel(stale, at(1), "stop")]))
    assert applied
    cancelled = current(storage, run, claimed.id)
    assert cancelled.state is JobState.CANCELLED
    (attempt,) = cancelled.attempts
    assert (attempt.stopped_at, attempt.reason, attempt.status_reason) == (
        at(1),
        "Cancelled",
        "stop",
    )
    # The worker's start and end then apply to nothing, and close nothing a second time.
    started = transitions.start(claimed, "w1", at(2))
    assert run(storage.jobs.apply([started])) == [False]
    assert current(storage, run, claimed.id).attempts == (attempt,)


def test_end_leases_lets_go_only_of_the_workers_jobs_that_are_no_longer_active(
    storage: Storage, run: Run, definition: Definition
) -> None:
    run(storage.jobs.insert([job(definition) for _ in range(3)]))
    active, cancelled, other = run(storage.jobs.claim(claim_request("w1", now=T0)))
    run(storage.jobs.apply([transitions.cancel(current(storage, run, cancelled.id), at(1))]))
    assert current(storage, run, cancelled.id).worker_id == "w1"
    # Another worker lets go of nothing; an active job keeps its lease (the rescue needs it).
    assert run(storage.jobs.end_leases(LeaseEnd(worker_id="w2", job_ids=(cancelled.id,)))) == 0
    ended = run(
        storage.jobs.end_leases(LeaseEnd(worker_id="w1", job_ids=(active.id, cancelled.id)))
    )
    assert ended == 1
    let_go = current(storage, run, cancelled.id)
    assert (let_go.state, let_go.worker_id, let_go.lease_expires_at) == (
        JobState.CANCELLED,
        None,
        None,
    )
    kept = current(storage, run, active.id)
    assert (kept.worker_id, kept.lease_expires_at) == ("w1", at(30))
    assert run(storage.jobs.end_leases(LeaseEnd(worker_id="w1", job_ids=()))) == 0
    assert current(storage, run, other.id).worker_id == "w1"


def test_a_retry_by_request_waits_until_no_live_lease_holds_the_job(
    storage: Storage, run: Run, definition: Definition
) -> None:
    run(storage.jobs.insert([job(definition)]))
    (claimed,) = run(storage.jobs.claim(claim_request("w1", now=T0)))  # lease until at(30)
    run(storage.jobs.apply([transitions.start(claimed, "w1", at(1))]))
    run(storage.jobs.apply([transitions.cancel(current(storage, run, claimed.id), at(2))]))
    cancelled = current(storage, run, claimed.id)
    # The body still stops on w1: its lease is live, the retry does not apply...
    assert run(storage.jobs.apply([transitions.requeue(cancelled, at(3))])) == [False]
    assert current(storage, run, claimed.id).state is JobState.CANCELLED
    # ...nor once renewed; once the lease has run out, it does, and clears it.
    run(storage.jobs.heartbeat(beat("w1", (claimed.id,), at(20), at(40))))
    assert run(storage.jobs.apply([transitions.requeue(cancelled, at(39))])) == [False]
    assert run(storage.jobs.apply([transitions.requeue(cancelled, at(41))])) == [True]
    requeued = current(storage, run, claimed.id)
    assert (requeued.state, requeued.worker_id, requeued.lease_expires_at) == (
        JobState.RUNNABLE,
        None,
        None,
    )


def test_a_retry_by_request_applies_once_the_worker_let_go_of_the_lease(
    storage: Storage, run: Run, definition: Definition
) -> None:
    run(storage.jobs.insert([job(definition)]))
    (claimed,) = run(storage.jobs.claim(claim_request("w1", now=T0)))
    run(storage.jobs.apply([transitions.start(claimed, "w1", at(1))]))
    running = current(storage, run, claimed.id)
    # A timeout decided while the body runs on: the end keeps the lease.
    timed_out = Outcome.timed_out(1.0)
    end = transitions.after_outcome(
        running,
        RetryPolicy(),
        timed_out,
        worker_id="w1",
        now=at(2),
        rng=random.Random(0),
        keep_lease=True,
    )
    assert run(storage.jobs.apply([end])) == [True]
    failed = current(storage, run, claimed.id)
    assert (failed.state, failed.worker_id, failed.lease_expires_at) == (
        JobState.FAILED,
        "w1",
        at(30),
    )
    assert failed.attempts[0].reason == "Timeout"
    assert run(storage.jobs.apply([transitions.requeue(failed, at(3))])) == [False]
    assert run(storage.jobs.end_leases(LeaseEnd(worker_id="w1", job_ids=(claimed.id,)))) == 1
    assert run(storage.jobs.apply([transitions.requeue(failed, at(4))])) == [True]
    assert current(storage, run, claimed.id).state is JobState.RUNNABLE
