"""The rules port: rules as a resource, and their invocations (due tries, how tries ended, the
history and the dead list)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from dockyard.domain.rules import Invocation, InvocationState, parse_rule
from dockyard.storage import InvocationUpdate, NewInvocation, Storage
from tests.helpers.loops import Run
from tests.storage.records import T0, at, event, rule

PENDING, DELIVERED, DEAD = InvocationState.PENDING, InvocationState.DELIVERED, InvocationState.DEAD


def record(storage: Storage, run: Run, rule_name: str, now: datetime) -> NewInvocation:
    """An invocation of ``rule_name``'s ``hook`` target for a new event, routed at ``now`` (so
    its first try is due at ``now``)."""
    announced = event(now=now)
    assert run(storage.events.put([announced], now)) == 1
    (stored,) = run(storage.events.unrouted(1))
    new = NewInvocation(
        id=str(uuid.uuid4()), rule=rule_name, target="hook", event=announced.envelope()
    )
    assert run(storage.events.route([stored.seq], [new], now)) == 1
    return new


def update(
    new: NewInvocation,
    state: InvocationState,
    now: datetime,
    *,
    attempts: int = 1,
    next_attempt_at: datetime | None = None,
    result: str | None = None,
    error: str | None = None,
) -> InvocationUpdate:
    """How one try of ``new`` ended, at ``now``."""
    return InvocationUpdate(
        id=new.id,
        state=state,
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        result=result,
        error=error,
        now=now,
    )


def ids(invocations: list[Invocation]) -> list[str]:
    return [item.id for item in invocations]


def test_insert_get_all_and_replace(storage: Storage, run: Run) -> None:
    orders, quiet = rule("orders"), rule("audit", state="DISABLED", description="off for now")
    assert run(storage.rules.insert(orders)) is True
    assert run(storage.rules.insert(rule("orders", at(5), source="billing"))) is False
    assert run(storage.rules.insert(quiet)) is True
    assert run(storage.rules.get("orders")) == orders
    assert run(storage.rules.get("nothing")) is None
    assert [r.name for r in run(storage.rules.all())] == ["audit", "orders"]
    assert [r.name for r in run(storage.rules.all(enabled_only=True))] == ["orders"]
    spec, enabled = parse_rule(
        {
            "event_pattern": {"source": ["billing"], "detail-type": ["Refund"]},
            "state": "DISABLED",
            "targets": [{"id": "refunds", "kind": "submit-job", "definition": "refund"}],
        }
    )
    changed = replace(orders, spec=spec, enabled=enabled, updated_at=at(5))
    assert run(storage.rules.replace(changed)) is True
    assert run(storage.rules.get("orders")) == changed
    assert run(storage.rules.all(enabled_only=True)) == []
    assert run(storage.rules.replace(rule("nothing"))) is False


def test_delete_removes_the_rule_and_its_invocations(storage: Storage, run: Run) -> None:
    for name in ("orders", "audit"):
        run(storage.rules.insert(rule(name)))
    record(storage, run, "orders", T0)
    kept = record(storage, run, "audit", T0)
    assert run(storage.rules.delete("orders")) is True
    assert run(storage.rules.delete("orders")) is False
    assert run(storage.rules.get("orders")) is None
    assert ids(run(storage.rules.due_invocations(at(100), 10))) == [kept.id]
    # A rule made again under the name starts with no history.
    run(storage.rules.insert(rule("orders")))
    assert run(storage.rules.invocations("orders", None, 10)) == []
    assert ids(run(storage.rules.invocations("audit", None, 10))) == [kept.id]


def test_due_invocations_are_pending_ones_whose_try_has_come_earliest_first(
    storage: Storage, run: Run
) -> None:
    assert run(storage.rules.next_invocation_at()) is None
    run(storage.rules.insert(rule("orders")))
    ten, five, twenty = (record(storage, run, "orders", at(s)) for s in (10, 5, 20))
    assert run(storage.rules.next_invocation_at()) == at(5)
    assert ids(run(storage.rules.due_invocations(at(10), 10))) == [five.id, ten.id]
    assert ids(run(storage.rules.due_invocations(at(10), 1))) == [five.id]
    assert run(storage.rules.due_invocations(at(4), 10)) == []
    run(storage.rules.update_invocations([update(five, DELIVERED, at(6), result="200")]))
    assert run(storage.rules.next_invocation_at()) == at(10)
    assert ids(run(storage.rules.due_invocations(at(100), 10))) == [ten.id, twenty.id]


def test_update_changes_only_invocations_still_pending(storage: Storage, run: Run) -> None:
    run(storage.rules.insert(rule("orders")))
    first, second = record(storage, run, "orders", T0), record(storage, run, "orders", T0)
    retry_later = update(first, PENDING, at(1), next_attempt_at=at(60), error="HTTP 503")
    run(
        storage.rules.update_invocations(
            [retry_later, update(second, DELIVERED, at(1), result="204")]
        )
    )
    tried = {item.id: item for item in run(storage.rules.invocations("orders", None, 10))}
    assert (tried[first.id].state, tried[first.id].attempts, tried[first.id].next_attempt_at) == (
        PENDING,
        1,
        at(60),
    )
    assert (tried[first.id].error, tried[first.id].updated_at) == ("HTTP 503", at(1))
    assert (tried[second.id].state, tried[second.id].result) == (DELIVERED, "204")
    assert run(storage.rules.due_invocations(at(59), 10)) == []
    run(
        storage.rules.update_invocations(
            [update(first, DEAD, at(61), attempts=2, error="HTTP 503")]
        )
    )
    # Neither a DEAD nor a DELIVERED invocation changes any more.
    run(
        storage.rules.update_invocations(
            [update(first, DELIVERED, at(62), attempts=3), update(second, DEAD, at(62), attempts=2)]
        )
    )
    final = {item.id: item for item in run(storage.rules.invocations("orders", None, 10))}
    assert (final[first.id].state, final[first.id].attempts, final[first.id].updated_at) == (
        DEAD,
        2,
        at(61),
    )
    assert (final[second.id].state, final[second.id].attempts) == (DELIVERED, 1)


def test_invocations_are_a_rules_history_newest_first(storage: Storage, run: Run) -> None:
    for name in ("orders", "audit"):
        run(storage.rules.insert(rule(name)))
    first, second, third = (record(storage, run, "orders", at(s)) for s in (0, 1, 2))
    record(storage, run, "audit", at(3))
    assert ids(run(storage.rules.invocations("orders", None, 10))) == [
        third.id,
        second.id,
        first.id,
    ]
    assert ids(run(storage.rules.invocations("orders", None, 2))) == [third.id, second.id]
    run(storage.rules.update_invocations([update(second, DEAD, at(5), error="HTTP 410")]))
    assert ids(run(storage.rules.invocations("orders", DEAD, 10))) == [second.id]
    assert ids(run(storage.rules.invocations("orders", PENDING, 10))) == [third.id, first.id]
    assert run(storage.rules.invocations("nothing", None, 10)) == []


def test_retry_puts_dead_invocations_back_to_pending(storage: Storage, run: Run) -> None:
    for name in ("orders", "audit"):
        run(storage.rules.insert(rule(name)))
    one, two, three, waiting = (record(storage, run, "orders", T0) for _ in range(4))
    elsewhere = record(storage, run, "audit", T0)
    dead = [
        update(item, DEAD, at(5), attempts=4, error="HTTP 500")
        for item in (one, two, three, elsewhere)
    ]
    run(storage.rules.update_invocations(dead))
    assert run(storage.rules.retry_invocations("orders", [one.id, elsewhere.id], at(50))) == 1
    history = run(storage.rules.invocations("orders", None, 10))
    (again,) = [item for item in history if item.id == one.id]
    assert (again.state, again.attempts, again.next_attempt_at, again.error) == (
        PENDING,
        0,
        at(50),
        None,
    )
    assert again.updated_at == at(50)
    assert run(storage.rules.retry_invocations("orders", None, at(60))) == 2
    assert run(storage.rules.retry_invocations("orders", None, at(70))) == 0
    assert run(storage.rules.invocations("orders", DEAD, 10)) == []
    assert ids(run(storage.rules.invocations("audit", DEAD, 10))) == [elsewhere.id]
    assert set(ids(run(storage.rules.due_invocations(at(60), 10)))) == {
        one.id,
        two.id,
        three.id,
        waiting.id,
    }
