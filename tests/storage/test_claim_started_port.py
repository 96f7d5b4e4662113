"""The claim of jobs whose executor starts at once (issue 22): one write at the claim, one at the
end. A claim offering ``starts_at_once`` kinds moves their jobs straight to RUNNING with their
attempts started; the other kinds' jobs (docker prepares: it pulls images) go to STARTING as
before, on every backend."""

from __future__ import annotations

from dataclasses import replace

from dockyard.domain import transitions
from dockyard.domain.definitions import parse_definition
from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import Definition, Job, JobId
from dockyard.domain.states import JobState
from dockyard.storage import Storage
from tests.helpers.loops import Run
from tests.storage.records import LEASE, T0, at, claim_request, finish, job, rule

AT_ONCE = ("python", "http", "lambda")


def current(storage: Storage, run: Run, job_id: JobId) -> Job:
    found = run(storage.jobs.get(job_id))
    assert found is not None, f"job {job_id} is gone"
    return found


def define(storage: Storage, run: Run, name: str, document: dict[str, object]) -> Definition:
    return run(storage.definitions.insert(name, parse_definition(document), T0))


def test_a_fast_kind_is_claimed_running_with_its_attempt_started_and_docker_starting(
    storage: Storage, run: Run
) -> None:
    function = define(storage, run, "fn", {"executor": "python", "function": "json:dumps"})
    image = define(storage, run, "img", {"executor": "docker", "image": "busybox"})
    fast, slow = job(function, T0), job(image, at(1))
    run(storage.jobs.insert([fast, slow]))

    request = replace(claim_request("w1", now=at(5)), starts_at_once=AT_ONCE)
    claimed = {item.id: item for item in run(storage.jobs.claim(request))}
    assert set(claimed) == {fast.id, slow.id}

    running, starting = claimed[fast.id], claimed[slow.id]
    assert (running.state, running.worker_id, running.started_at) == (
        JobState.RUNNING,
        "w1",
        at(5),
    )
    assert running.lease_expires_at == at(5) + LEASE
    stored = current(storage, run, fast.id)
    assert stored.state is JobState.RUNNING and stored.started_at == at(5)
    (attempt,) = stored.attempts
    assert (attempt.worker_id, attempt.started_at, attempt.stopped_at) == ("w1", at(5), None)

    assert (starting.state, starting.started_at) == (JobState.STARTING, None)
    (pending,) = current(storage, run, slow.id).attempts
    assert pending.started_at is None  # its worker starts it once the image is there

    # The job claimed RUNNING needs no start: its end is the next (and last) write.
    assert run(storage.jobs.apply([finish(running, "w1", at(6))])) == [True]
    done = current(storage, run, fast.id)
    assert done.state is JobState.SUCCEEDED
    assert (done.attempts[0].started_at, done.attempts[0].stopped_at) == (at(5), at(6))
    # The docker job still takes the start: STARTING -> RUNNING.
    assert run(storage.jobs.apply([transitions.start(starting, "w1", at(7))])) == [True]
    started = current(storage, run, slow.id)
    assert started.state is JobState.RUNNING and started.attempts[0].started_at == at(7)


def test_without_kinds_that_start_at_once_every_claim_is_starting(
    storage: Storage, run: Run
) -> None:
    function = define(storage, run, "fn", {"executor": "python", "function": "json:dumps"})
    run(storage.jobs.insert([job(function, T0)]))
    (claimed,) = run(storage.jobs.claim(claim_request("w1", now=at(5))))
    assert claimed.state is JobState.STARTING
    assert current(storage, run, claimed.id).attempts[0].started_at is None


def test_a_retry_claimed_running_keeps_the_job_s_first_start(storage: Storage, run: Run) -> None:
    function = define(storage, run, "fn", {"executor": "python", "function": "json:dumps"})
    first = job(function, T0, attempts=2)
    run(storage.jobs.insert([first]))
    request = replace(claim_request("w1", now=at(5)), starts_at_once=AT_ONCE)
    (claimed,) = run(storage.jobs.claim(request))
    failed = Outcome.failed(reason="Boom", status_reason="boom", exit_code=1)
    assert run(storage.jobs.apply([finish(claimed, "w1", at(6), failed)])) == [True]
    assert current(storage, run, first.id).state is JobState.RUNNABLE

    again = replace(claim_request("w2", now=at(600)), starts_at_once=AT_ONCE)  # past the backoff
    (retried,) = run(storage.jobs.claim(again))
    assert (retried.state, retried.attempt_count, retried.started_at) == (
        JobState.RUNNING,
        2,
        at(5),  # the job started with its first attempt
    )
    one, two = current(storage, run, first.id).attempts
    assert (one.started_at, one.stopped_at) == (at(5), at(6))
    assert (two.number, two.worker_id, two.started_at) == (2, "w2", at(600))


def test_a_cancel_closes_the_attempt_a_claim_started(storage: Storage, run: Run) -> None:
    function = define(storage, run, "fn", {"executor": "python", "function": "json:dumps"})
    run(storage.jobs.insert([job(function, T0)]))
    request = replace(claim_request("w1", now=at(5)), starts_at_once=AT_ONCE)
    (claimed,) = run(storage.jobs.claim(request))
    assert run(storage.jobs.apply([transitions.cancel(claimed, at(6))])) == [True]
    cancelled = current(storage, run, claimed.id)
    assert cancelled.state is JobState.CANCELLED
    (attempt,) = cancelled.attempts
    assert (attempt.started_at, attempt.stopped_at, attempt.reason) == (at(5), at(6), "Cancelled")
    assert cancelled.worker_id == "w1"  # its worker stops the body, then lets the lease go


def test_the_state_change_event_of_a_claim_started_goes_runnable_to_running(
    storage: Storage, run: Run
) -> None:
    function = define(storage, run, "fn", {"executor": "python", "function": "json:dumps"})
    run(storage.rules.insert(rule("watch", source="dockyard.job")))
    run(storage.jobs.insert([job(function, T0)]))
    request = replace(claim_request("w1", now=at(5)), starts_at_once=AT_ONCE)
    (claimed,) = run(storage.jobs.claim(request))
    run(storage.jobs.apply([finish(claimed, "w1", at(6))]))
    changes = [
        (item.envelope["detail"]["previousStatus"], item.envelope["detail"]["status"])
        for item in reversed(run(storage.events.recent(10)))
        if item.envelope["detail-type"] == "Job State Change"
    ]
    assert changes == [("RUNNABLE", "RUNNING"), ("RUNNING", "SUCCEEDED")]
