"""Schedules through the SDK (both transports), the HTTP API and the ``dockyard schedules`` CLI.

What a schedule fires is the scheduler's business (``tests/test_scheduler.py``); here: that every
surface creates, shows, changes, pauses, resumes and deletes schedules alike, and names the field
at fault the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import dockyard
from dockyard import ConflictError, NotFoundError, ValidationError
from dockyard.settings import Settings
from tests.conftest import ServerProcess, each_transport, register_process
from tests.test_cli import ok, run

#: Fire times decades away, so that next_fire_at does not depend on when the test runs.
NEW_YEAR_2099 = "cron(0 2 1 1 ? 2099)"
NEW_YEAR_2100 = "cron(30 3 1 1 ? 2100)"


@pytest.fixture(params=["direct", "http"])
def client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[dockyard.Client]:
    """Every client operation here runs twice: on the store itself, and over a real HTTP server."""
    yield from each_transport(request, settings)


def nightly(**fields: Any) -> dict[str, Any]:
    """A schedule document of the definition ``refresh``, with ``fields`` over it."""
    target = {"definition": "refresh", "payload": {"full": True}, "queue": "batch"}
    return {"expression": NEW_YEAR_2099, "target": target, **fields}


# -- the SDK, on both transports ----------------------------------------------------------------


def test_create_list_describe_and_delete(client: dockyard.Client) -> None:
    register_process(client, "refresh", "true")
    created = client.create_schedule(
        nightly(timezone="Europe/Paris", description="cards", catch_up="latest"), name="nightly"
    )
    assert created.name == "nightly"
    assert created.enabled and created.state == "ENABLED"
    assert created.spec.timezone == "Europe/Paris"
    assert created.spec.catch_up.value == "latest"
    assert created.spec.target.payload == {"full": True}
    assert created.next_fire_at == datetime(2099, 1, 1, 1, 0, tzinfo=UTC)  # 02:00 in Paris
    assert (created.fires, created.last_fire_at, created.last_error) == (0, None, None)
    assert client.schedule("nightly") == created

    # The name may come from the document too; a DISABLED one is stored as such.
    hourly = client.create_schedule(
        {"name": "hourly", "expression": "rate(1 hour)", "state": "DISABLED",
         "target": {"definition": "refresh"}}
    )  # fmt: skip
    assert hourly.state == "DISABLED"
    assert [s.name for s in client.schedules()] == ["hourly", "nightly"]

    deleted = client.delete_schedule("nightly")
    assert deleted == created
    assert [s.name for s in client.schedules()] == ["hourly"]
    with pytest.raises(NotFoundError) as caught:
        client.schedule("nightly")
    assert caught.value.kind == "schedule"


def test_update_changes_only_what_is_given(client: dockyard.Client) -> None:
    register_process(client, "refresh", "true")
    register_process(client, "other", "true")
    created = client.create_schedule(nightly(description="cards", overlap="skip"), name="nightly")

    # A target key alone: the other target keys stay, and the timing is not touched.
    queued = client.update_schedule("nightly", {"target": {"queue": "side", "priority": 5}})
    assert queued.spec.target.queue == "side"
    assert queued.spec.target.priority == 5
    assert queued.spec.target.definition == "refresh"
    assert queued.spec.target.payload == {"full": True}
    assert queued.spec.description == "cards"
    assert queued.spec.overlap.value == "skip"
    assert queued.next_fire_at == created.next_fire_at
    assert queued.updated_at >= created.updated_at and queued.created_at == created.created_at

    # A new expression and time zone: next_fire_at is computed afresh.
    retimed = client.update_schedule(
        "nightly", {"expression": NEW_YEAR_2100, "timezone": "Europe/Paris"}
    )
    assert retimed.next_fire_at == datetime(2100, 1, 1, 2, 30, tzinfo=UTC)
    assert retimed.spec.target.queue == "side"

    # None sets a key back to its default, in the schedule and in its target.
    reset = client.update_schedule(
        "nightly",
        {"description": None, "overlap": None, "target": {"queue": None, "definition": "other"}},
    )
    assert reset.spec.description is None
    assert reset.spec.overlap.value == "allow"
    assert reset.spec.target.queue is None
    assert reset.spec.target.definition == "other"
    assert reset.spec.target.priority == 5
    assert client.schedule("nightly") == reset


def test_pause_and_resume(client: dockyard.Client) -> None:
    register_process(client, "refresh", "true")
    client.create_schedule(nightly(), name="nightly")
    paused = client.pause_schedule("nightly")
    assert (paused.enabled, paused.state) == (False, "DISABLED")
    assert client.schedule("nightly").state == "DISABLED"
    assert client.pause_schedule("nightly").state == "DISABLED"  # pausing twice is harmless

    resumed = client.resume_schedule("nightly")
    assert (resumed.enabled, resumed.state) == (True, "ENABLED")
    assert resumed.next_fire_at == datetime(2099, 1, 1, 2, 0, tzinfo=UTC)
    assert client.schedule("nightly") == resumed


def test_unknown_and_taken_names(client: dockyard.Client) -> None:
    register_process(client, "refresh", "true")
    for method, args in (
        ("schedule", ()),
        ("update_schedule", ({"description": "x"},)),
        ("pause_schedule", ()),
        ("resume_schedule", ()),
        ("delete_schedule", ()),
    ):
        with pytest.raises(NotFoundError) as caught:
            getattr(client, method)("absent", *args)
        assert (caught.value.kind, caught.value.ref) == ("schedule", "absent")

    first = client.create_schedule(nightly(), name="nightly")
    with pytest.raises(ConflictError, match="nightly"):
        client.create_schedule(nightly(expression="rate(5 minutes)"), name="nightly")
    assert client.schedules() == [first]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (nightly(expression="cron(0 2 * * *"), "expression"),
        (nightly(expression="cron(0 2 * * * *)"), "expression"),  # neither day field is ?
        (nightly(timezone="Mars/Olympus_Mons"), "timezone"),
        (nightly(start="2026-12-01T02:00:00"), "start"),  # no UTC offset
        (nightly(start="2027-01-01T00:00:00Z", end="2026-01-01T00:00:00Z"), "end"),
        (nightly(overlap="sometimes"), "overlap"),
        (nightly(catch_up="everything"), "catch_up"),
        (nightly(flexible_window_minutes=-1), "flexible_window_minutes"),
        (nightly(state="ASLEEP"), "state"),
        (nightly(colour="red"), "colour"),
        ({"expression": NEW_YEAR_2099}, "target"),
        (nightly(target={"queue": "batch"}), "target.definition"),
        (nightly(target={"definition": "absent"}), "target.definition"),  # not registered
        (nightly(target={"definition": "refresh", "attempts": 0}), "target.attempts"),
        (nightly(target={"definition": "refresh", "colour": 1}), "target.colour"),
        (nightly(expression="at(2001-01-01T00:00:00)"), "expression"),  # no fire left
    ],
)
def test_bad_documents_name_the_field_and_write_nothing(
    client: dockyard.Client, document: dict[str, Any], field: str
) -> None:
    register_process(client, "refresh", "true")
    with pytest.raises(ValidationError) as caught:
        client.create_schedule(document, name="nightly")
    assert caught.value.field == field
    assert client.schedules() == []


def test_bad_changes_name_the_field_and_change_nothing(client: dockyard.Client) -> None:
    register_process(client, "refresh", "true")
    created = client.create_schedule(nightly(), name="nightly")
    for changes, field in (
        ({"expression": "rate(0 minutes)"}, "expression"),
        ({"expression": None}, "expression"),  # no default to go back to
        ({"target": {"definition": "absent"}}, "target.definition"),
        ({"target": {"priority": "high"}}, "target.priority"),
        ({"timezone": "Nowhere/Land"}, "timezone"),
        ({"name": "renamed"}, "name"),
    ):
        with pytest.raises(ValidationError) as caught:
            client.update_schedule("nightly", changes)
        assert caught.value.field == field, changes
    assert client.schedule("nightly") == created


def test_next_fire_times_is_public_and_follows_the_time_zone() -> None:
    times = dockyard.next_fire_times(
        "cron(0 2 * * ? *)",
        timezone="Europe/Paris",
        after=datetime(2026, 3, 27, 12, tzinfo=UTC),
        count=3,
    )
    # Paris moves its clocks forward on 29 March 2026, between 02:00 and 03:00: no fire that day.
    assert [t.isoformat() for t in times] == [
        "2026-03-28T02:00:00+01:00",
        "2026-03-30T02:00:00+02:00",
        "2026-03-31T02:00:00+02:00",
    ]
    assert "next_fire_times" in dockyard.__all__


# -- the HTTP API itself ------------------------------------------------------------------------


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert ``response`` is an ``application/problem+json`` of ``status``; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    document: dict[str, Any] = response.json()
    return document


def test_http_status_codes_and_problems(server: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as api:
        api.post(
            "/v1/definitions", json={"name": "refresh", "command": ["true"]}
        ).raise_for_status()
        body = {"name": "nightly", **nightly()}
        created = api.post("/v1/schedules", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["next_fire_at"] == "2099-01-01T02:00:00+00:00"
        assert api.post("/v1/schedules", json=body).status_code == 409

        # Unset keys stay, nulls reset; but the expression and the target have no default.
        patched = api.patch("/v1/schedules/nightly", json={"target": {"queue": None}})
        assert patched.status_code == 200, patched.text
        assert patched.json()["target"]["queue"] is None
        assert patched.json()["target"]["payload"] == {"full": True}
        for changes, field in (
            ({"expression": None}, "expression"),
            ({"target": None}, "target"),
            ({"target": {"definition": None}}, "target.definition"),
            ({"catch_up_limit": 0}, "catch_up_limit"),
            ({"colour": "red"}, "colour"),
        ):
            answer = problem(api.patch("/v1/schedules/nightly", json=changes), 422)
            assert answer["field"] == field, answer
        problem(
            api.patch(
                "/v1/schedules/nightly",
                content=b'{"expression": "half',
                headers={"Content-Type": "application/json"},
            ),
            400,
        )
        assert "schedule" in problem(api.get("/v1/schedules/absent"), 404)["detail"]

        assert api.post("/v1/schedules/nightly/pause").json()["state"] == "DISABLED"
        assert api.post("/v1/schedules/nightly/resume").json()["state"] == "ENABLED"
        deleted = api.delete("/v1/schedules/nightly")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["name"] == "nightly"
        assert api.get("/v1/schedules").json() == []
        problem(api.delete("/v1/schedules/nightly"), 404)


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_create_list_describe_update_pause_resume_delete(
    settings: Settings, tmp_path: Path
) -> None:
    ok(settings, "definitions", "register", "refresh", "--", "true")
    file = tmp_path / "nightly.yaml"
    file.write_text(
        "expression: cron(0 2 1 1 ? 2099)\ntimezone: Europe/Paris\n"
        "target: {definition: refresh, environment: {MODE: full}}\n"
    )
    out = ok(
        settings, "schedules", "create", "nightly", "-f", str(file), "--overlap", "skip",
        "--payload", '{"set": "M21"}', "--env", "DEBUG=1", "--queue", "batch",
        "--description", "cards", "--", "update-cards", "--full",
    )  # fmt: skip
    assert out == "created nightly, next fire 2099-01-01T02:00:00+01:00\n"
    described = json.loads(ok(settings, "schedules", "describe", "nightly", "-o", "json"))
    assert described["overlap"] == "skip"
    assert described["description"] == "cards"
    assert described["target"] == {
        "definition": "refresh",
        "name": None,
        "queue": "batch",
        "group": None,
        "priority": 0,
        "payload": {"set": "M21"},
        "command": ["update-cards", "--full"],
        "environment": {"MODE": "full", "DEBUG": "1"},
        "timeout": None,
        "attempts": None,
        "parameters": {},
    }
    table = ok(settings, "schedules", "describe", "nightly")
    assert "target.definition" in table and "refresh" in table

    ok(
        settings, "schedules", "create", "hourly", "--expression", "rate(1 hour)",
        "--definition", "refresh", "--disabled",
    )  # fmt: skip
    listed = ok(settings, "schedules", "list").splitlines()
    assert listed[0].split() == [
        "NAME", "STATE", "EXPRESSION", "TIMEZONE", "NEXT", "FIRE", "LAST", "FIRE", "FIRES",
        "LAST", "ERROR",
    ]  # fmt: skip
    assert listed[1].split()[:2] == ["hourly", "DISABLED"]
    assert listed[2].split()[:2] == ["nightly", "ENABLED"]
    assert "Europe/Paris" in listed[2]
    as_json = json.loads(ok(settings, "-o", "json", "schedules", "list"))
    assert [s["name"] for s in as_json] == ["hourly", "nightly"]

    out = ok(settings, "schedules", "update", "nightly", "--expression", NEW_YEAR_2100,
             "--priority", "7")  # fmt: skip
    assert out == "updated nightly, next fire 2100-01-01T03:30:00+01:00\n"
    updated = json.loads(ok(settings, "schedules", "describe", "nightly", "-o", "json"))
    assert updated["target"]["priority"] == 7
    assert updated["target"]["queue"] == "batch"  # kept: the target merges
    assert updated["overlap"] == "skip"

    assert ok(settings, "schedules", "pause", "nightly") == "paused nightly\n"
    resumed = json.loads(ok(settings, "schedules", "resume", "nightly", "-o", "json"))
    assert resumed["state"] == "ENABLED"
    assert ok(settings, "schedules", "delete", "nightly") == "deleted nightly\n"
    assert [s["name"] for s in json.loads(ok(settings, "schedules", "list", "-o", "json"))] == [
        "hourly"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("describe", "absent"), "error: schedule not found: absent"),
        (("update", "absent", "--description", "x"), "error: schedule not found: absent"),
        (
            ("create", "bad", "--expression", "rate(1 minutes)", "--definition", "refresh"),
            "error: Invalid Schedule Expression rate(1 minutes)",
        ),
        (
            ("create", "bad", "--expression", "rate(5 minutes)", "--definition", "absent"),
            "error: target.definition: no active definition absent",
        ),
        (
            ("create", "bad", "--expression", "rate(5 minutes)"),
            "error: target: is required",
        ),
        (("update", "absent"), "error: update: give the fields to change"),
    ],
)
def test_cli_mistakes_are_one_line_exit_2(
    settings: Settings, args: tuple[str, ...], message: str
) -> None:
    result = run(settings, "schedules", *args)
    assert result.returncode == 2, result
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert json.loads(ok(settings, "schedules", "list", "-o", "json")) == []


def test_cli_next_prints_fire_times_without_a_store(tmp_path: Path) -> None:
    # A home that does not exist and a store that cannot open: `next` needs neither.
    offline = Settings.resolve(home=tmp_path / "none", url="http://127.0.0.1:9", environ={})
    out = ok(
        offline, "schedules", "next", "cron(30 2 * * ? *)", "--tz", "Europe/Paris",
        "--after", "2026-03-27T12:00:00Z", "--count", "3",
    )  # fmt: skip
    assert out.splitlines() == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]
    # Without an offset, --after is read in --tz; -o json is a list.
    out = ok(offline, "-o", "json", "schedules", "next", "rate(90 minutes)", "--tz", "Asia/Tokyo",
             "--after", "2026-01-01T00:00:00", "--count", "2")  # fmt: skip
    assert json.loads(out) == ["2026-01-01T01:30:00+09:00", "2026-01-01T03:00:00+09:00"]
    assert not (tmp_path / "none").exists()

    for args, message in (
        (("cron(30 2 * * *)",), "error: Invalid Schedule Expression cron(30 2 * * *)"),
        (("rate(5 minutes)", "--tz", "Mars/Olympus_Mons"), "error: Invalid time zone"),
        (("rate(5 minutes)", "--after", "yesterday"), "error: after:"),
    ):
        result = run(offline, "schedules", "next", *args)
        assert result.returncode != 0
        assert result.stderr.startswith(message), result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
