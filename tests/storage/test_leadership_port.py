"""The leadership port: one leader per role among every store object on a database, and the
next one takes over when the leader goes."""

from __future__ import annotations

from collections.abc import Callable

from dockyard.storage import Storage
from tests.helpers.loops import Run
from tests.storage.conftest import eventually


def test_one_store_leads_a_role_and_another_takes_over_when_it_closes(
    storage: Storage, run: Run, open_store: Callable[[], Storage]
) -> None:
    other = open_store()
    assert run(storage.leadership.try_lead("maintenance")) is True
    assert run(other.leadership.try_lead("maintenance")) is False
    assert run(storage.leadership.try_lead("maintenance")) is True  # it keeps it
    assert run(other.leadership.try_lead("maintenance")) is False
    # Roles are led independently.
    assert run(other.leadership.try_lead("scheduler")) is True
    assert run(storage.leadership.try_lead("scheduler")) is False
    run(storage.close())
    # The server releases a closed session's lock once it has seen the session end.
    assert run(eventually(lambda: other.leadership.try_lead("maintenance")))
    assert run(other.leadership.try_lead("maintenance")) is True
    run(storage.close())  # closing again is harmless
