"""The definitions port: immutable revisions per name, the latest ACTIVE one, and statuses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dockyard.domain.records import Definition
from dockyard.domain.states import DefinitionStatus
from dockyard.storage import Storage
from tests.helpers.loops import Run
from tests.storage.records import T0, at, definition_spec

ACTIVE, INACTIVE = DefinitionStatus.ACTIVE, DefinitionStatus.INACTIVE


def test_revisions_count_up_per_name_and_keep_their_spec(storage: Storage, run: Run) -> None:
    first_spec = definition_spec(environment={"MODE": "fast"}, timeout=30, queue="builds")
    second_spec = definition_spec(command=["make", "all"], retry={"attempts": 3}, description="v2")
    one = run(storage.definitions.insert("build", first_spec, T0))
    two = run(storage.definitions.insert("build", second_spec, at(1)))
    other = run(storage.definitions.insert("deploy", first_spec, at(2)))
    assert [(d.name, d.revision, d.status) for d in (one, two, other)] == [
        ("build", 1, ACTIVE),
        ("build", 2, ACTIVE),
        ("deploy", 1, ACTIVE),
    ]
    assert (one.spec, two.spec, two.created_at) == (first_spec, second_spec, at(1))
    assert run(storage.definitions.get("build", 1)) == one
    assert run(storage.definitions.get("build", 2)) == two
    assert run(storage.definitions.get("build", 3)) is None
    assert run(storage.definitions.get("nothing", None)) is None
    assert run(storage.definitions.revisions("build")) == [one, two]
    assert run(storage.definitions.revisions("nothing")) == []


def test_concurrent_registrations_of_one_name_get_distinct_revisions(
    storage: Storage, run: Run, open_store: Callable[[], Storage]
) -> None:
    other = open_store()

    async def register_together() -> list[Definition]:
        stores = [storage, other] * 3
        return list(
            await asyncio.gather(
                *(store.definitions.insert("build", definition_spec(), T0) for store in stores)
            )
        )

    registered = run(register_together())
    assert sorted(d.revision for d in registered) == [1, 2, 3, 4, 5, 6]
    assert [d.revision for d in run(storage.definitions.revisions("build"))] == [1, 2, 3, 4, 5, 6]


def test_get_without_a_revision_is_the_latest_active_one(storage: Storage, run: Run) -> None:
    for moment in (T0, at(1), at(2)):
        run(storage.definitions.insert("build", definition_spec(), moment))
    retired = run(storage.definitions.set_status("build", 3, INACTIVE))
    assert retired is not None and (retired.revision, retired.status) == (3, INACTIVE)
    assert run(storage.definitions.get("build", 3)) == retired
    latest = run(storage.definitions.get("build", None))
    assert latest is not None and latest.revision == 2
    run(storage.definitions.set_status("build", 2, INACTIVE))
    run(storage.definitions.set_status("build", 1, INACTIVE))
    assert run(storage.definitions.get("build", None)) is None
    revived = run(storage.definitions.set_status("build", 2, ACTIVE))
    assert revived is not None and revived.status is ACTIVE
    assert run(storage.definitions.get("build", None)) == revived
    assert run(storage.definitions.set_status("build", 4, INACTIVE)) is None
    assert run(storage.definitions.set_status("nothing", 1, INACTIVE)) is None


def test_latest_lists_the_latest_revision_of_every_name_active_or_not(
    storage: Storage, run: Run
) -> None:
    assert run(storage.definitions.latest()) == []
    deploy = run(storage.definitions.insert("deploy", definition_spec(), T0))
    run(storage.definitions.insert("build", definition_spec(), T0))
    run(storage.definitions.insert("build", definition_spec(timeout=5), at(1)))
    build_2 = run(storage.definitions.set_status("build", 2, INACTIVE))
    assert run(storage.definitions.latest()) == [build_2, deploy]
