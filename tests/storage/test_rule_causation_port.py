"""The rules and events ports and rule loops (issue 26): a job a rule submits keeps its causation
depth, which its state changes carry when they are routed; invocations never made (THROTTLED,
REFUSED) are recorded with their reason, are never due, and are pruned like deliveries."""

from __future__ import annotations

import uuid

from dockyard.domain.events import Event
from dockyard.domain.records import Definition
from dockyard.domain.rules import InvocationState
from dockyard.domain.transitions import cancel
from dockyard.storage import NewInvocation, Storage
from tests.helpers.loops import Run
from tests.storage.records import at, claim_request, event, job, rule

THROTTLED, REFUSED = InvocationState.THROTTLED, InvocationState.REFUSED


def not_made(rule_name: str, announced: Event, state: InvocationState, depth: int) -> NewInvocation:
    return NewInvocation(
        id=str(uuid.uuid4()),
        rule=rule_name,
        target="hook",
        event=announced.envelope(),
        depth=depth,
        state=state,
        error=f"{state.value.lower()} for the test",
    )


def test_a_submitted_job_s_state_changes_carry_its_depth(
    storage: Storage, run: Run, definition: Definition
) -> None:
    run(storage.rules.insert(rule("watch", source="dockyard.job")))
    deep = run(storage.rules.submit_job(job(definition, idempotency_key="rule:a:b:c"), 3))
    plain = run(storage.jobs.insert([job(definition)]))[0]
    assert deep.created and deep.job.idempotency_key == "rule:a:b:c"
    # The same key again is the same job, and its depth stays.
    again = run(storage.rules.submit_job(job(definition, idempotency_key="rule:a:b:c"), 9))
    assert (again.created, again.job.id) == (False, deep.job.id)
    run(storage.jobs.claim(claim_request(limit=10)))  # both move: two state changes
    run(storage.events.put([event()], at(1)))  # a user's event
    depths = {
        item.envelope["detail"].get("jobId", "user"): item.depth
        for item in run(storage.events.unrouted(10))
    }
    assert depths == {deep.job.id: 3, plain.job.id: 0, "user": 0}


def test_invocations_never_made_are_recorded_never_due_and_pruned(
    storage: Storage, run: Run
) -> None:
    run(storage.rules.insert(rule("orders")))
    one, two = event(), event()
    run(storage.events.put([one, two], at(1)))
    seqs = [item.seq for item in run(storage.events.unrouted(10))]
    throttled, refused = not_made("orders", one, THROTTLED, 1), not_made("orders", two, REFUSED, 17)
    assert run(storage.events.route(seqs, [throttled, refused], at(1))) == 2
    recorded = {item.id: item for item in run(storage.rules.invocations("orders", None, 10))}
    for new in (throttled, refused):
        item = recorded[new.id]
        assert (item.state, item.depth, item.error) == (new.state, new.depth, new.error)
        assert (item.attempts, item.next_attempt_at, item.result) == (0, None, None)
    assert [i.id for i in run(storage.rules.invocations("orders", REFUSED, 10))] == [refused.id]
    assert run(storage.rules.due_invocations(at(10_000), 10)) == []
    assert run(storage.rules.next_invocation_at()) is None
    assert run(storage.rules.retry_invocations("orders", None, at(2))) == 0
    assert run(storage.events.prune(at(1), 10)) == 0  # not before the cutoff yet
    assert run(storage.events.prune(at(100), 10)) == 2  # the two events and the two invocations
    assert run(storage.rules.invocations("orders", None, 10)) == []


def test_a_pruned_job_takes_its_depth_with_it(
    storage: Storage, run: Run, definition: Definition
) -> None:
    submitted = run(storage.rules.submit_job(job(definition, idempotency_key="k"), 2))
    (moved,) = run(storage.jobs.apply([cancel(submitted.job, now=at(1))]))
    assert moved
    assert run(storage.jobs.prune_finished(at(100), 10)) == [submitted.job.id]
    assert run(storage.jobs.get(submitted.job.id)) is None
