"""The queues port: jobs per queue and state, pausing, and the workers with what each holds."""

from __future__ import annotations

from dataclasses import replace

from dockyard.domain import transitions
from dockyard.domain.records import Definition
from dockyard.storage import QueueInfo, Storage, WorkerInfo
from tests.helpers.loops import Run
from tests.storage.records import T0, at, claim_request, job


def test_queues_count_their_jobs_per_state(
    storage: Storage, run: Run, definition: Definition
) -> None:
    assert run(storage.queues.queues()) == []
    run(
        storage.jobs.insert(
            [job(definition, queue="b"), job(definition, queue="a"), job(definition, queue="a")]
        )
    )
    (claimed,) = run(storage.jobs.claim(claim_request(queues=("a",), limit=1)))
    run(storage.jobs.apply([transitions.cancel(claimed, at(1))]))
    run(storage.jobs.claim(claim_request(queues=("a",), limit=1)))
    assert run(storage.queues.queues()) == [
        QueueInfo(name="a", paused=False, counts={"CANCELLED": 1, "STARTING": 1}),
        QueueInfo(name="b", paused=False, counts={"RUNNABLE": 1}),
    ]


def test_a_paused_queue_is_listed_with_its_jobs(
    storage: Storage, run: Run, definition: Definition
) -> None:
    run(storage.jobs.insert([job(definition, queue="a"), job(definition, queue="a")]))
    paused = run(storage.queues.set_paused("a", True, T0))
    assert paused == QueueInfo(name="a", paused=True, counts={"RUNNABLE": 2})
    # A queue with no job is listed once it was paused.
    assert run(storage.queues.set_paused("idle", True, T0)) == QueueInfo(
        name="idle", paused=True, counts={}
    )
    assert run(storage.queues.queues()) == [paused, QueueInfo(name="idle", paused=True, counts={})]
    # New jobs still arrive in a paused queue; none is claimed until it resumes.
    run(storage.jobs.insert([job(definition, at(1), queue="a")]))
    assert run(storage.jobs.claim(claim_request(now=at(2)))) == []
    resumed = run(storage.queues.set_paused("a", False, at(3)))
    assert resumed == QueueInfo(name="a", paused=False, counts={"RUNNABLE": 3})
    assert {q.name: q.paused for q in run(storage.queues.queues())}["a"] is False
    assert len(run(storage.jobs.claim(claim_request(now=at(3))))) == 3


def test_register_worker_upserts_and_workers_lists_the_jobs_each_holds(
    storage: Storage, run: Run, definition: Definition
) -> None:
    first = WorkerInfo(
        id="w1",
        hostname="host-a",
        pid=101,
        queues=None,
        concurrency=4,
        started_at=T0,
        heartbeat_at=T0,
    )
    earlier = WorkerInfo(
        id="w2",
        hostname="host-b",
        pid=202,
        queues=("a", "b"),
        concurrency=1,
        started_at=at(-60),
        heartbeat_at=at(-60),
    )
    run(storage.queues.register_worker(first))
    run(storage.queues.register_worker(earlier))
    assert run(storage.queues.workers()) == [earlier, first]  # by start time
    run(storage.jobs.insert([job(definition, at(i)) for i in range(4)]))
    held_1, done = run(storage.jobs.claim(claim_request("w1", now=at(5), limit=2)))
    (held_2,) = run(storage.jobs.claim(claim_request("w2", now=at(5), limit=1)))
    run(storage.jobs.apply([transitions.cancel(done, at(6))]))  # no longer held by anyone
    # The stop of w1 replaces its registration instead of adding one.
    stopped = replace(first, heartbeat_at=at(30), stopped_at=at(31), concurrency=8)
    run(storage.queues.register_worker(stopped))
    assert run(storage.queues.workers()) == [
        replace(earlier, running=(held_2.id,)),
        replace(stopped, running=(held_1.id,)),
    ]
