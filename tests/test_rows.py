"""Rows to records: what both backends share (storage/rows.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from dockyard.storage.rows import RowReader

NOW = datetime(2026, 12, 1, tzinfo=UTC)
READER = RowReader(time=lambda value: value, json=lambda value: value)


def _schedule_row(spec: Mapping[str, object]) -> dict[str, object]:
    return {
        "name": "nightly",
        "spec": json.dumps(spec),
        "enabled": True,
        "created_at": NOW,
        "updated_at": NOW,
        "next_fire_at": NOW,
        "last_fire_at": None,
        "last_job_id": None,
        "fires": 0,
        "last_error": None,
    }


def test_a_stored_schedule_spec_is_parsed_once_while_it_is_unchanged() -> None:
    # The scheduler reads thousands of schedules a minute: an unchanged spec must come from the
    # cache (the same immutable object), a changed one must be parsed afresh.
    spec = {"expression": "rate(5 minutes)", "target": {"definition": "hello"}}
    first = READER.schedule(_schedule_row(spec))
    again = READER.schedule(_schedule_row(spec))
    changed = READER.schedule(_schedule_row({**spec, "expression": "rate(6 minutes)"}))
    assert again.spec is first.spec
    assert changed.spec is not first.spec
    assert changed.spec.expression == "rate(6 minutes)"


def test_a_stored_rule_spec_is_parsed_once_while_it_is_unchanged() -> None:
    spec = {
        "event_pattern": {"source": ["shop"]},
        "targets": [{"id": "hook", "kind": "webhook", "url": "https://example.com/hook"}],
    }
    row = {"name": "r", "spec": json.dumps(spec), "enabled": True}
    first = READER.rule({**row, "created_at": NOW, "updated_at": NOW})
    again = READER.rule({**row, "created_at": NOW, "updated_at": NOW})
    assert again.spec is first.spec
