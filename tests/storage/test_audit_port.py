"""The audit port: entries recorded in order, read back a page at a time, pruned by age."""

from __future__ import annotations

from dockyard.domain.tokens import AuditEntry, Role
from dockyard.storage import Storage
from dockyard.storage.ports import AuditQuery
from tests.helpers.loops import Run
from tests.storage.records import at


def entry(seconds: float, operation: str, target: str | None = "job-1") -> AuditEntry:
    return AuditEntry(
        at=at(seconds),
        token_id="t-ci",
        token_name="ci",
        role=Role.OPERATOR,
        operation=operation,
        target=target,
    )


def test_entries_come_back_newest_first_with_increasing_ids(storage: Storage, run: Run) -> None:
    assert run(storage.audit.entries(AuditQuery())) == []
    written = [
        entry(1, "jobs.submit"),
        entry(2, "jobs.cancel"),
        entry(3, "queues.set_paused", None),
    ]
    for item in written:
        run(storage.audit.record(item))
    found = run(storage.audit.entries(AuditQuery(limit=10)))
    assert [(e.operation, e.target, e.at, e.role) for e in found] == [
        ("queues.set_paused", None, at(3), Role.OPERATOR),
        ("jobs.cancel", "job-1", at(2), Role.OPERATOR),
        ("jobs.submit", "job-1", at(1), Role.OPERATOR),
    ]
    ids = [e.id for e in found]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(ids, reverse=True)  # type: ignore[type-var]
    assert found[0] == AuditEntry(
        id=ids[0],
        at=at(3),
        token_id="t-ci",
        token_name="ci",
        role=Role.OPERATOR,
        operation="queues.set_paused",
        target=None,
    )


def test_pages_go_back_from_an_id(storage: Storage, run: Run) -> None:
    for second in range(5):
        run(storage.audit.record(entry(second, f"op.{second}")))
    first = run(storage.audit.entries(AuditQuery(limit=2)))
    assert [e.operation for e in first] == ["op.4", "op.3"]
    then = run(storage.audit.entries(AuditQuery(limit=2, before=first[-1].id)))
    assert [e.operation for e in then] == ["op.2", "op.1"]
    last = run(storage.audit.entries(AuditQuery(limit=2, before=then[-1].id)))
    assert [e.operation for e in last] == ["op.0"]


def test_prune_deletes_the_oldest_in_batches(storage: Storage, run: Run) -> None:
    for second in range(5):
        run(storage.audit.record(entry(second, f"op.{second}")))
    assert run(storage.audit.prune(at(3), limit=2)) == 2  # a full batch: more may be left
    assert run(storage.audit.prune(at(3), limit=2)) == 1
    assert run(storage.audit.prune(at(3), limit=2)) == 0
    remaining = run(storage.audit.entries(AuditQuery()))
    assert [e.operation for e in remaining] == ["op.4", "op.3"]
