"""The events port: the bus keeps events only while a rule is enabled (Dockyard's own events
too), reads them newest or oldest first, routes them to invocations once, and prunes them."""

from __future__ import annotations

import uuid
from dataclasses import replace

from dockyard.domain.events import Event
from dockyard.domain.records import Definition
from dockyard.domain.rules import InvocationState
from dockyard.storage import InvocationUpdate, NewInvocation, Storage, StoredEvent
from tests.helpers.loops import Run
from tests.storage.records import T0, at, claim_request, definition_spec, event, job, rule

TWO_TARGETS = [
    {"id": "hook", "kind": "webhook", "url": "https://hooks.example.com/a"},
    {"id": "mail", "kind": "webhook", "url": "https://hooks.example.com/b"},
]


def event_ids(stored: list[StoredEvent]) -> list[str]:
    return [str(item.envelope["id"]) for item in stored]


def invocation(rule_name: str, target: str, announced: Event) -> NewInvocation:
    return NewInvocation(
        id=str(uuid.uuid4()), rule=rule_name, target=target, event=announced.envelope()
    )


def test_put_keeps_events_only_while_a_rule_is_enabled(storage: Storage, run: Run) -> None:
    assert run(storage.events.put([event()], T0)) == 0
    watcher = rule("watch", state="DISABLED")
    run(storage.rules.insert(watcher))
    assert run(storage.events.put([event()], T0)) == 0
    assert run(storage.events.recent(10)) == []
    run(storage.rules.replace(replace(watcher, enabled=True)))
    first, second = event(now=at(1)), event("billing", now=at(1))
    assert run(storage.events.put([first, second], at(2))) == 2
    stored = run(storage.events.recent(10))
    assert [item.envelope for item in stored] == [second.envelope(), first.envelope()]
    assert all(item.received_at == at(2) for item in stored)
    assert stored[0].seq > stored[1].seq
    run(storage.rules.replace(replace(watcher, enabled=False)))
    assert run(storage.events.put([event()], at(3))) == 0
    assert len(run(storage.events.recent(10))) == 2


def test_dockyard_events_are_written_with_their_change_while_a_rule_is_enabled(
    storage: Storage, run: Run, definition: Definition
) -> None:
    run(storage.jobs.insert([job(definition), job(definition, at(1))]))
    run(storage.jobs.claim(claim_request(limit=1)))
    run(storage.definitions.insert("deploy", definition_spec(), T0))
    assert run(storage.events.recent(10)) == []  # no rule reads them: none is kept
    run(storage.rules.insert(rule("watch", source="dockyard.job")))
    (claimed,) = run(storage.jobs.claim(claim_request(now=at(1), limit=1)))
    run(storage.definitions.insert("deploy", definition_spec(), T0))
    changes = {
        (item.envelope["source"], item.envelope["detail-type"]): item.envelope["detail"]
        for item in run(storage.events.recent(10))
    }
    assert set(changes) == {
        ("dockyard.job", "Job State Change"),
        ("dockyard.definition", "Definition Registered"),
    }
    moved = changes["dockyard.job", "Job State Change"]
    assert (moved["jobId"], moved["status"], moved["previousStatus"]) == (
        claimed.id,
        "STARTING",
        "RUNNABLE",
    )
    assert changes["dockyard.definition", "Definition Registered"]["revision"] == 2


def test_recent_is_newest_first_and_filters_by_source(storage: Storage, run: Run) -> None:
    run(storage.rules.insert(rule("watch")))
    one, two, three = event("shop"), event("billing"), event("shop")
    for number, item in enumerate((one, two, three)):
        run(storage.events.put([item], at(number)))
    assert event_ids(run(storage.events.recent(10))) == [three.id, two.id, one.id]
    assert event_ids(run(storage.events.recent(2))) == [three.id, two.id]
    assert event_ids(run(storage.events.recent(10, source="shop"))) == [three.id, one.id]
    assert run(storage.events.recent(10, source="nobody")) == []


def test_route_records_each_invocation_once_and_marks_events_routed(
    storage: Storage, run: Run
) -> None:
    run(storage.rules.insert(rule("orders", targets=TWO_TARGETS)))
    one, two, three = event(), event(), event()
    run(storage.events.put([one, two, three], T0))
    unrouted = run(storage.events.unrouted(10))
    assert event_ids(unrouted) == [one.id, two.id, three.id]
    assert event_ids(run(storage.events.unrouted(2))) == [one.id, two.id]
    seqs = [item.seq for item in unrouted[:2]]
    wanted = [invocation("orders", "hook", one), invocation("orders", "mail", one)]
    # An invocation of a rule deleted meanwhile is dropped.
    assert run(storage.events.route(seqs, [*wanted, invocation("gone", "hook", two)], at(5))) == 2
    assert event_ids(run(storage.events.unrouted(10))) == [three.id]
    # A second leader routing the same event records nothing twice.
    assert run(storage.events.route(seqs[:1], [invocation("orders", "hook", one)], at(6))) == 0
    recorded = run(storage.rules.invocations("orders", None, 10))
    assert sorted(item.id for item in recorded) == sorted(item.id for item in wanted)
    for item in recorded:
        assert (item.state, item.attempts, item.next_attempt_at) == (
            InvocationState.PENDING,
            0,
            at(5),
        )
        assert item.event == one.envelope() and item.event_id == one.id


def test_prune_deletes_routed_events_and_delivered_invocations_before_the_cutoff(
    storage: Storage, run: Run
) -> None:
    run(storage.rules.insert(rule("orders", targets=TWO_TARGETS)))
    old, older, newest = event(), event(), event()
    for number, item in enumerate((older, old, newest)):
        run(storage.events.put([item], at(number * 10)))
    seqs = [item.seq for item in run(storage.events.unrouted(2))]  # older and old
    delivered, dead = invocation("orders", "hook", older), invocation("orders", "mail", older)
    run(storage.events.route(seqs, [delivered, dead], at(1)))
    run(storage.events.put([unrouted := event()], at(2)))
    assert run(storage.events.prune(at(15), 1)) == 1  # a full batch: more may be left
    assert run(storage.events.prune(at(15), 10)) == 1
    assert event_ids(run(storage.events.recent(10))) == [unrouted.id, newest.id]
    # Unrouted events stay whatever their age; so do PENDING and DEAD invocations.
    assert run(storage.events.prune(at(1000), 10)) == 0
    run(
        storage.rules.update_invocations(
            [
                InvocationUpdate(
                    id=delivered.id,
                    state=InvocationState.DELIVERED,
                    attempts=1,
                    next_attempt_at=None,
                    result="200",
                    now=at(12),
                ),
                InvocationUpdate(
                    id=dead.id,
                    state=InvocationState.DEAD,
                    attempts=3,
                    next_attempt_at=None,
                    error="410 Gone",
                    now=at(12),
                ),
            ]
        )
    )
    assert run(storage.events.prune(at(12), 10)) == 0  # delivered at the cutoff, not before
    assert run(storage.events.prune(at(13), 10)) == 1
    (kept,) = run(storage.rules.invocations("orders", None, 10))
    assert kept.id == dead.id and kept.event == older.envelope()  # its own copy of the event
