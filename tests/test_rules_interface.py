"""Events and rules through the SDK (both transports), the HTTP API and the ``dockyard events`` and
``dockyard rules`` CLI.

How patterns match is ``tests/test_patterns.py``'s business, how a registry's notification is read
``tests/test_registry_events.py``'s; here: that every surface puts and lists events, creates,
shows, changes, enables, disables and deletes rules alike, names the field at fault the same way,
and shows what the rules engine delivered (or could not).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import dockyard
from dockyard import ConflictError, NotFoundError, ValidationError
from dockyard.app import Dockyard
from dockyard.domain.patterns import InvalidEventPattern
from dockyard.domain.rule_targets import SubmitJobTarget, WebhookTarget
from dockyard.domain.rules import InvocationState
from dockyard.runtime.rules import RulesReport
from dockyard.settings import Settings
from tests.conftest import ServerProcess, each_transport, free_port
from tests.test_cli import ok, run

AWS_REASON = "Event pattern is not valid. Reason: "
V2 = "application/vnd.docker.distribution.events.v2+json"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
LAYER = "application/vnd.docker.container.image.rootfs.diff+x-gtar"
DIGEST = "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf"
LAYER_DIGEST = "sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d5"


@pytest.fixture(params=["direct", "http"])
def client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[dockyard.Client]:
    """Every client operation here runs twice: on the store itself, and over a real HTTP server."""
    yield from each_transport(request, settings)


@pytest.fixture(autouse=True)
def definitions(settings: Settings) -> None:
    """The definitions the rules' targets name: a rule naming one that does not exist is refused."""
    with dockyard.DirectClient(settings) as direct:
        for name in ("deploy", "smoke"):
            direct.register({"executor": "process", "command": ["true"]}, name=name)
        direct.register({"executor": "docker", "image": "127.0.0.1:5000/team/app:v1"}, name="app")


def on_build(**fields: Any) -> dict[str, Any]:
    """A rule document: a ``ci`` build that is done submits a job of ``deploy``."""
    target = {"id": "deploy", "kind": "submit-job", "definition": "deploy", "queue": "batch"}
    return {
        "event_pattern": {"source": ["ci"], "detail-type": ["Build Done"]},
        "targets": [target],
        **fields,
    }


def build_done(commit: str = "abc1", **fields: Any) -> dict[str, Any]:
    """A PutEvents entry that :func:`on_build` matches."""
    return {
        "Source": "ci",
        "DetailType": "Build Done",
        "Detail": json.dumps({"commit": commit}),
        **fields,
    }


def registry_event(action: str, media_type: str, digest: str, tag: str | None) -> dict[str, Any]:
    """One event of a Docker Distribution notification, as the registry writes it."""
    kind = "manifests" if media_type == MANIFEST_V2 else "blobs"
    target: dict[str, Any] = {
        "mediaType": media_type,
        "digest": digest,
        "length": 708,
        "repository": "team/app",
        "url": f"http://127.0.0.1:5000/v2/team/app/{kind}/{digest}",
    }
    if tag is not None:
        target["tag"] = tag
    return {
        "id": f"{action}-{digest[7:15]}",
        "timestamp": "2026-06-01T12:00:00Z",
        "action": action,
        "target": target,
        "request": {"host": "127.0.0.1:5000", "method": "PUT" if action == "push" else "GET"},
        "actor": {"name": "ci"},
    }


#: A tagged manifest push, a layer push and a pull: one image published, so one event.
NOTIFICATION = json.dumps(
    {
        "events": [
            registry_event("push", LAYER, LAYER_DIGEST, None),
            registry_event("push", MANIFEST_V2, DIGEST, "v1.2"),
            registry_event("pull", MANIFEST_V2, DIGEST, "v1.2"),
        ]
    }
).encode()


def check_image_pushed(event: dict[str, Any]) -> None:
    """``event`` is the one :data:`NOTIFICATION` makes."""
    image = f"127.0.0.1:5000/team/app:v1.2@{DIGEST}"
    assert (event["source"], event["detail-type"]) == ("dockyard.registry", "Image Pushed")
    assert event["resources"] == [f"dockyard:image/{image}"]
    assert event["detail"]["image"] == image
    assert (event["detail"]["repository"], event["detail"]["tag"]) == ("team/app", "v1.2")
    assert event["detail"]["actor"] == "ci"


def deliver(settings: Settings) -> RulesReport:
    """One round of the rules engine (route the new events, deliver what is due), run in this
    process on the test's store, as the leader of ``dockyard scheduler`` runs it."""

    async def main() -> RulesReport:
        app = await Dockyard.open(settings)
        try:
            engine = app.rules_engine()
            try:
                return await engine.run_once()
            finally:
                engine.stop()
                await engine.run()  # returns at once, once stopped: closes its HTTP client
        finally:
            await app.close()

    return asyncio.run(main())


def closed_port_webhook(**fields: Any) -> dict[str, Any]:
    """A rule whose webhook target cannot be reached, and is not retried: it goes DEAD at once."""
    target = {
        "id": "alarm",
        "kind": "webhook",
        "url": f"http://127.0.0.1:{free_port()}/hook",
        "retry_policy": {"maximum_retry_attempts": 0},
    }
    return {"event_pattern": {"source": ["ci"]}, "targets": [target], **fields}


# -- the SDK, on both transports ----------------------------------------------------------------


def test_create_list_describe_and_delete(client: dockyard.Client) -> None:
    created = client.create_rule(on_build(description="ship it"), name="ship")
    assert created.name == "ship"
    assert created.enabled and created.state == "ENABLED"
    assert created.spec.description == "ship it"
    assert json.loads(created.spec.event_pattern) == {
        "source": ["ci"],
        "detail-type": ["Build Done"],
    }
    (target,) = created.spec.targets
    assert isinstance(target, SubmitJobTarget)
    assert (target.id, target.job.definition, target.job.queue) == ("deploy", "deploy", "batch")
    assert target.retry_policy.maximum_retry_attempts == 185  # EventBridge's default
    assert client.rule("ship") == created

    # The name may come from the document too; a DISABLED one is stored as such; a pattern may
    # be given as its JSON text.
    alarm = client.create_rule(
        {"name": "alarm", "state": "DISABLED", "event_pattern": '{"source": ["ci"]}',
         "targets": [{"kind": "webhook", "url": "https://alerts.example.com/hook"}]}
    )  # fmt: skip
    assert alarm.state == "DISABLED"
    (hook,) = alarm.spec.targets
    assert isinstance(hook, WebhookTarget)
    assert hook.id == "webhook-1"  # the kind and the position, when no id is given
    assert [r.name for r in client.rules()] == ["alarm", "ship"]

    deleted = client.delete_rule("ship")
    assert deleted == created
    assert [r.name for r in client.rules()] == ["alarm"]
    with pytest.raises(NotFoundError) as caught:
        client.rule("ship")
    assert (caught.value.kind, caught.value.ref) == ("rule", "ship")


def test_update_changes_only_what_is_given(client: dockyard.Client) -> None:
    created = client.create_rule(on_build(description="ship it"), name="ship")

    described = client.update_rule("ship", {"description": "ship it now"})
    assert described.spec.description == "ship it now"
    assert described.spec.event_pattern == created.spec.event_pattern
    assert described.spec.targets == created.spec.targets
    assert described.created_at == created.created_at
    assert described.updated_at >= created.updated_at

    # Targets are replaced whole, not merged.
    hook = {"id": "alarm", "kind": "webhook", "url": "https://alerts.example.com/hook"}
    retargeted = client.update_rule("ship", {"targets": [hook]})
    assert [(t.id, t.kind) for t in retargeted.spec.targets] == [("alarm", "webhook")]
    assert retargeted.spec.description == "ship it now"

    repatterned = client.update_rule(
        "ship", {"event_pattern": {"source": [{"prefix": "ci."}]}, "description": None}
    )
    assert json.loads(repatterned.spec.event_pattern) == {"source": [{"prefix": "ci."}]}
    assert repatterned.spec.description is None
    assert client.rule("ship") == repatterned


def test_enable_and_disable(client: dockyard.Client) -> None:
    client.create_rule(on_build(), name="ship")
    disabled = client.disable_rule("ship")
    assert (disabled.enabled, disabled.state) == (False, "DISABLED")
    assert client.rule("ship").state == "DISABLED"
    assert client.disable_rule("ship").state == "DISABLED"  # twice is harmless
    enabled = client.enable_rule("ship")
    assert (enabled.enabled, enabled.state) == (True, "ENABLED")
    assert client.rule("ship") == enabled
    assert client.update_rule("ship", {"state": "DISABLED"}).state == "DISABLED"


def test_unknown_and_taken_names(client: dockyard.Client) -> None:
    for method, args in (
        ("rule", ()),
        ("update_rule", ({"description": "x"},)),
        ("enable_rule", ()),
        ("disable_rule", ()),
        ("delete_rule", ()),
        ("rule_history", ()),
        ("retry_invocations", ()),
    ):
        with pytest.raises(NotFoundError) as caught:
            getattr(client, method)("absent", *args)
        assert (caught.value.kind, caught.value.ref) == ("rule", "absent"), method

    first = client.create_rule(on_build(), name="ship")
    with pytest.raises(ConflictError, match="ship"):
        client.create_rule(on_build(description="another"), name="ship")
    assert client.rules() == [first]


def webhook(**fields: Any) -> dict[str, Any]:
    return on_build(targets=[{"kind": "webhook", "url": "https://x.example.com/", **fields}])


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"targets": []}, "event_pattern"),  # required
        (on_build(event_pattern=5), "event_pattern"),
        (on_build(state="ASLEEP"), "state"),
        (on_build(description=5), "description"),
        (on_build(colour="red"), "colour"),
        (on_build(targets={"kind": "webhook"}), "targets"),
        (on_build(targets=[{"kind": "webhook", "url": "https://x.example.com/"}] * 6), "targets"),
        (on_build(targets=[{"kind": "email"}]), "targets[0].kind"),
        (on_build(targets=[{"kind": "submit-job"}]), "targets[0].definition"),
        (on_build(targets=[{"kind": "register-revision"}]), "targets[0].definition"),
        (
            on_build(targets=[{"kind": "submit-job", "definition": "absent"}]),
            "targets[0].definition",
        ),
        (
            on_build(targets=[{"kind": "register-revision", "definition": "deploy"}]),
            "targets[0].definition",  # it runs a process: it takes no image
        ),
        (webhook(url="ftp://x.example.com/"), "targets[0].url"),
        (webhook(colour="red"), "targets[0].colour"),
        (webhook(timeout=0), "targets[0].timeout"),
        (webhook(id="no spaces"), "targets[0].id"),
        (
            webhook(retry_policy={"maximum_retry_attempts": 186}),
            "targets[0].retry_policy.maximum_retry_attempts",
        ),
        (
            on_build(targets=[{"id": "a", "kind": "webhook", "url": "https://x.example.com/"}] * 2),
            "targets[1].id",
        ),
    ],
)
def test_bad_documents_name_the_field_and_write_nothing(
    client: dockyard.Client, document: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        client.create_rule(document, name="ship")
    assert caught.value.field == field
    assert client.rules() == []


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ({"source": "ci"}, '"source" must be an object or an array'),
        ('{"source": ["ci"]', "Filter is not valid JSON"),
        ({"detail": {"n": [{"numeric": ["<"]}]}}, ""),
    ],
)
def test_a_bad_pattern_is_refused_with_aws_reason(
    client: dockyard.Client, pattern: object, reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        client.create_rule(on_build(event_pattern=pattern), name="ship")
    assert caught.value.field == "event_pattern"
    assert caught.value.rule.startswith(AWS_REASON + reason), caught.value.rule
    assert client.rules() == []


def test_bad_changes_name_the_field_and_change_nothing(client: dockyard.Client) -> None:
    created = client.create_rule(on_build(), name="ship")
    for changes, field in (
        ({"state": None}, "state"),  # no default to go back to
        ({"event_pattern": None}, "event_pattern"),
        ({"targets": None}, "targets"),
        ({"state": "ASLEEP"}, "state"),
        ({"targets": [{"kind": "email"}]}, "targets[0].kind"),
        ({"name": "renamed"}, "name"),
        ({"colour": "red"}, "colour"),
    ):
        with pytest.raises(ValidationError) as caught:
            client.update_rule("ship", changes)
        assert caught.value.field == field, changes
    with pytest.raises(ValidationError) as caught:
        client.update_rule("ship", {"event_pattern": {"source": "ci"}})
    assert caught.value.rule.startswith(AWS_REASON)
    assert client.rule("ship") == created


def test_events_are_put_all_or_none_and_listed_newest_first(client: dockyard.Client) -> None:
    # With no rule enabled nothing reads the bus, so it keeps nothing.
    assert len(client.put_events([build_done()])) == 1
    assert client.events() == []

    client.create_rule(on_build(), name="ship")
    first, second = client.put_events(
        [build_done("abc1", Resources=["repo:team/app"], Time="2026-06-01T12:00:00+02:00"),
         build_done("abc2")]
    )  # fmt: skip
    assert first != second
    # One event alone, as another service emitted it (an envelope, not a PutEvents entry).
    (ecr,) = client.put_events(
        {"source": "aws.ecr", "detail-type": "ECR Image Action", "account": "123456789012",
         "region": "us-west-2", "detail": {"action-type": "PUSH", "image-tag": "latest"}}
    )  # fmt: skip

    listed = client.events()
    assert [e["id"] for e in listed] == [ecr, second, first]
    assert listed[2] == {
        "version": "0",
        "id": first,
        "detail-type": "Build Done",
        "source": "ci",
        "account": "",
        "time": "2026-06-01T10:00:00Z",
        "region": "",
        "resources": ["repo:team/app"],
        "detail": {"commit": "abc1"},
    }
    assert (listed[0]["account"], listed[0]["region"]) == ("123456789012", "us-west-2")
    assert [e["id"] for e in client.events(source="ci")] == [second, first]
    assert [e["id"] for e in client.events(limit=1)] == [ecr]

    # One bad entry refuses the request whole, naming the entry and its field.
    for entries, field in (
        ([build_done(), build_done(Source="dockyard.registry")], "entries[1].Source"),
        ([build_done(Detail="{not json")], "entries[0].Detail"),
        ([build_done(Colour="red")], "entries[0].Colour"),
        ([{"source": "ci"}], "entries[0].detail-type"),
        ([build_done()] * 11, "entries"),
        ([], "entries"),
    ):
        with pytest.raises(ValidationError) as caught:
            client.put_events(entries)
        assert caught.value.field == field, entries
    assert len(client.events()) == 3


def test_a_registry_notification_makes_one_event_per_tagged_manifest_push(
    client: dockyard.Client,
) -> None:
    client.create_rule({"event_pattern": {"source": ["dockyard.registry"]}}, name="pushes")
    (event,) = client.registry_notification(NOTIFICATION, V2)
    check_image_pushed(event)
    assert client.events() == [event]

    pull_only = json.dumps({"events": [registry_event("pull", MANIFEST_V2, DIGEST, "v1")]})
    assert client.registry_notification(pull_only.encode(), V2) == []
    for body, content_type, field in (
        (NOTIFICATION, "text/plain", "content-type"),
        (NOTIFICATION, None, "content-type"),
        (b'{"events": 5}', V2, "events"),
    ):
        with pytest.raises(ValidationError) as caught:
            client.registry_notification(body, content_type)
        assert caught.value.field == field
    assert client.events() == [event]


def test_test_event_pattern_answers_as_aws(client: dockyard.Client) -> None:
    event = {"source": "ci", "detail-type": "Build Done", "detail": {"commit": "abc1"}}
    assert client.test_event_pattern({"source": ["ci"]}, event) is True
    assert client.test_event_pattern('{"source": ["cd"]}', json.dumps(event)) is False
    assert client.test_event_pattern({"detail": {"commit": [{"prefix": "abc"}]}}, event) is True
    with pytest.raises(InvalidEventPattern) as caught:
        client.test_event_pattern({"source": "ci"}, event)
    assert caught.value.message == AWS_REASON + '"source" must be an object or an array'
    with pytest.raises(ValidationError) as invalid_event:
        client.test_event_pattern({"source": ["ci"]}, "{not json")
    assert invalid_event.value.field == "event"


def test_test_event_pattern_is_public() -> None:
    assert "test_event_pattern" in dockyard.__all__
    assert dockyard.test_event_pattern({"source": ["ci"]}, {"source": "ci"}) is True
    assert dockyard.test_event_pattern({"source": ["ci"]}, '{"source": "cd"}') is False


def test_a_dead_invocation_is_in_the_history_and_can_be_retried(
    client: dockyard.Client, settings: Settings
) -> None:
    client.create_rule(closed_port_webhook(), name="alarm")
    (event_id,) = client.put_events([build_done()])
    assert client.rule_history("alarm") == []  # no engine has routed it yet

    report = deliver(settings)
    assert (report.events, report.invocations, report.delivered, report.failed) == (1, 1, 0, 1)
    (dead,) = client.rule_history("alarm")
    assert (dead.rule, dead.target, dead.event_id) == ("alarm", "alarm", event_id)
    assert (dead.state, dead.attempts, dead.result) == (InvocationState.DEAD, 1, None)
    assert dead.error is not None and "connect" in dead.error.lower()  # why: nothing listens
    assert dead.event["detail"] == {"commit": "abc1"}
    assert client.rule_history("alarm", state="DEAD") == [dead]
    assert client.rule_history("alarm", state=InvocationState.DELIVERED) == []

    assert client.retry_invocations("alarm") == 1
    (pending,) = client.rule_history("alarm")
    assert (pending.id, pending.state) == (dead.id, InvocationState.PENDING)
    assert client.rule_history("alarm", state="dead") == []
    assert client.retry_invocations("alarm") == 0  # the dead list is empty

    assert deliver(settings).failed == 1  # still unreachable: dead again
    assert client.retry_invocations("alarm", ids=["another"]) == 0
    assert client.retry_invocations("alarm", ids=[dead.id]) == 1
    with pytest.raises(ValidationError) as caught:
        client.rule_history("alarm", state="LOST")
    assert caught.value.field == "state"


# -- the HTTP API itself ------------------------------------------------------------------------


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert ``response`` is an ``application/problem+json`` of ``status``; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    document: dict[str, Any] = response.json()
    return document


def test_http_rules_status_codes_and_problems(server: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as api:
        body = {"name": "ship", **on_build()}
        created = api.post("/v1/rules", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["targets"][0]["retry_policy"]["maximum_retry_attempts"] == 185
        assert api.post("/v1/rules", json=body).status_code == 409
        bad = problem(api.post("/v1/rules", json={**body, "event_pattern": {"source": "ci"}}), 422)
        assert bad["rule"] == AWS_REASON + '"source" must be an object or an array'

        patched = api.patch("/v1/rules/ship", json={"description": "ship it"})
        assert patched.status_code == 200, patched.text
        assert patched.json()["description"] == "ship it"
        assert patched.json()["event_pattern"] == body["event_pattern"]
        for changes, field in (
            ({"state": None}, "state"),
            ({"targets": None}, "targets"),
            ({"event_pattern": None}, "event_pattern"),
            ({"colour": "red"}, "colour"),
        ):
            answer = problem(api.patch("/v1/rules/ship", json=changes), 422)
            assert answer["field"] == field, answer
        for path in ("/v1/rules", "/v1/events", "/v1/rules/test-pattern"):
            problem(
                api.post(
                    path, content=b'{"name": "half', headers={"Content-Type": "application/json"}
                ),
                400,
            )
        assert "rule" in problem(api.get("/v1/rules/absent"), 404)["detail"]

        assert api.post("/v1/rules/ship/disable").json()["state"] == "DISABLED"
        assert api.post("/v1/rules/ship/enable").json()["state"] == "ENABLED"
        assert api.get("/v1/rules/ship/history", params={"state": "DEAD"}).json() == []
        problem(api.get("/v1/rules/ship/history", params={"state": "LOST"}), 422)
        assert api.post("/v1/rules/ship/retry").json() == {"retried": 0}
        assert api.post("/v1/rules/ship/retry", json={"ids": ["x"]}).json() == {"retried": 0}
        problem(api.post("/v1/rules/absent/retry"), 404)

        event = {"source": "ci", "detail": {"n": 5}}
        for pattern, result in (
            ({"source": ["ci"]}, True),
            ('{"detail": {"n": [{"numeric": [">", 5]}]}}', False),
        ):
            tested = api.post("/v1/rules/test-pattern", json={"pattern": pattern, "event": event})
            assert tested.json() == {"result": result}, tested.text
        invalid = problem(
            api.post("/v1/rules/test-pattern", json={"pattern": {"source": "ci"}, "event": event}),
            422,
        )
        assert invalid["field"] == "pattern"
        assert invalid["detail"].endswith(AWS_REASON + '"source" must be an object or an array')

        deleted = api.delete("/v1/rules/ship")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["name"] == "ship"
        assert api.get("/v1/rules").json() == []
        problem(api.delete("/v1/rules/ship"), 404)


def test_http_events_take_put_events_requests_and_bare_envelopes(server: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as api:
        everything = {"name": "all", "event_pattern": {"source": ["ci", "aws.ecr"]}}
        api.post("/v1/rules", json=everything).raise_for_status()
        put = api.post("/v1/events", json={"Entries": [build_done(), build_done("abc2")]})
        assert put.status_code == 200, put.text
        assert put.json()["failed_entry_count"] == 0
        ids = [entry["event_id"] for entry in put.json()["entries"]]
        assert len(ids) == 2

        # An ECR event posted as EventBridge would deliver it: the bus gives it its own id.
        ecr = {
            "version": "0", "id": "13cde686-328b-6117-af20-0e5566167482",
            "detail-type": "ECR Image Action", "source": "aws.ecr", "account": "123456789012",
            "time": "2019-11-16T01:54:34Z", "region": "us-west-2", "resources": [],
            "detail": {"result": "SUCCESS", "repository-name": "my-repository-name",
                       "action-type": "PUSH", "image-tag": "latest"},
        }  # fmt: skip
        bare = api.post("/v1/events", json=ecr)
        assert bare.status_code == 200, bare.text
        (entry,) = bare.json()["entries"]

        listed = api.get("/v1/events").json()
        assert [item["event"]["id"] for item in listed] == [entry["event_id"], *ids[::-1]]
        assert listed[0]["seq"] > listed[1]["seq"] > listed[2]["seq"]
        assert listed[0]["event"]["detail"] == ecr["detail"]
        assert listed[0]["event"]["time"] == ecr["time"]
        assert len(api.get("/v1/events", params={"source": "ci", "limit": 1}).json()) == 1

        for body, field in (
            ({"entries": [build_done(Source="dockyard.jobs")]}, "entries[0].Source"),
            ({"entries": [build_done()], "colour": "red"}, "colour"),
            ({"entries": "all of them"}, "entries"),
            ({"source": "ci"}, "entries[0].detail-type"),
        ):
            assert problem(api.post("/v1/events", json=body), 422)["field"] == field, body
        problem(api.get("/v1/events", params={"limit": 0}), 422)
        assert len(api.get("/v1/events").json()) == 3


def test_http_registry_webhook(server: ServerProcess) -> None:
    """What a registry's ``notifications.endpoints[]`` entry sends: its envelope, with the token
    in ``headers``; an operator's token is enough, and no token is refused."""
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, headers=admin, timeout=60) as api:
        pushes = {"name": "pushes", "event_pattern": {"source": ["dockyard.registry"]}}
        api.post("/v1/rules", json=pushes).raise_for_status()
        operator = api.post("/v1/tokens", json={"name": "registry", "role": "operator"})
        viewer = api.post("/v1/tokens", json={"name": "eyes", "role": "viewer"})

    def post(token: str | None, body: bytes, content_type: str = V2) -> httpx.Response:
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.post(f"{server.url}/v1/webhooks/registry", content=body, headers=headers)

    answer = post(operator.json()["secret"], NOTIFICATION)
    assert answer.status_code == 200, answer.text
    (event,) = answer.json()["events"]
    check_image_pushed(event)

    problem(post(None, NOTIFICATION), 401)
    problem(post(viewer.json()["secret"], NOTIFICATION), 403)
    problem(post(server.admin_token, b'{"events": [', V2), 400)
    assert problem(post(server.admin_token, NOTIFICATION, "text/plain"), 422)["field"] == (
        "content-type"
    )
    with httpx.Client(base_url=server.url, headers=admin, timeout=60) as api:
        assert [item["event"] for item in api.get("/v1/events").json()] == [event]


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_events_put_and_list(settings: Settings, tmp_path: Path) -> None:
    rule = tmp_path / "everything.yaml"
    rule.write_text("event_pattern: {source: [ci, aws.ecr]}\n")
    assert ok(settings, "rules", "create", "-f", str(rule), "--name", "all") == "created all\n"

    out = ok(
        settings, "events", "put", "--source", "ci", "--detail-type", "Build Done",
        "--detail", '{"commit": "abc1"}', "--resource", "repo:team/app", "--resource", "x",
    )  # fmt: skip
    (first,) = out.split()
    file = tmp_path / "events.json"
    file.write_text(
        json.dumps([build_done("abc2"), {"source": "aws.ecr", "detail-type": "ECR Image Action"}])
    )
    second, third = ok(settings, "events", "put", "-f", str(file)).split()
    one = tmp_path / "one.yaml"
    # A YAML time stays the text it is written as (safe_load would make it a datetime).
    one.write_text(
        "Source: ci\nDetailType: Build Done\nTime: 2026-06-01T12:00:00+02:00\n"
        'Detail: \'{"commit": "abc3"}\'\n'
    )
    (fourth,) = json.loads(ok(settings, "events", "put", "-f", str(one), "--json"))

    listed = json.loads(ok(settings, "events", "list", "--json"))
    assert [e["id"] for e in listed] == [fourth, third, second, first]
    assert listed[0]["time"] == "2026-06-01T10:00:00Z"
    assert listed[3]["detail"] == {"commit": "abc1"}
    assert listed[3]["resources"] == ["repo:team/app", "x"]
    ci = json.loads(ok(settings, "-o", "json", "events", "list", "--source", "ci", "--limit", "2"))
    assert [e["id"] for e in ci] == [fourth, second]

    table = ok(settings, "events", "list").splitlines()
    assert table[0].split() == ["TIME", "SOURCE", "DETAIL", "TYPE", "ID", "RESOURCES"]
    assert table[2].split()[1:5] == ["aws.ecr", "ECR", "Image", "Action"]
    assert first in table[4] and "repo:team/app x" in table[4]


def test_cli_rules_create_list_describe_update_enable_disable_delete(
    settings: Settings, tmp_path: Path
) -> None:
    register = tmp_path / "ship.yaml"
    register.write_text(
        "name: ship\ndescription: deploy what is pushed\n"
        "event_pattern: {source: [dockyard.registry], detail: {repository: [team/app]}}\n"
        "targets:\n"
        "  - {id: bump, kind: register-revision, definition: app}\n"
        "  - {kind: submit-job, definition: smoke, payload: {suite: quick},"
        " retry_policy: {maximum_retry_attempts: 3}}\n"
    )
    assert ok(settings, "rules", "create", "-f", str(register)) == "created ship\n"
    hooks = tmp_path / "alarm.json"
    hooks.write_text(json.dumps(closed_port_webhook(state="DISABLED")))
    created = json.loads(ok(settings, "rules", "create", "-f", str(hooks), "--name", "alarm",
                            "--json"))  # fmt: skip
    assert (created["name"], created["state"]) == ("alarm", "DISABLED")

    described = json.loads(ok(settings, "rules", "describe", "ship", "-o", "json"))
    assert described["event_pattern"] == {
        "source": ["dockyard.registry"],
        "detail": {"repository": ["team/app"]},
    }
    assert [(t["id"], t["kind"]) for t in described["targets"]] == [
        ("bump", "register-revision"),
        ("submit-job-2", "submit-job"),
    ]
    assert described["targets"][1]["payload"] == {"suite": "quick"}
    assert described["targets"][1]["retry_policy"]["maximum_retry_attempts"] == 3
    table = ok(settings, "rules", "describe", "ship")
    assert "targets.bump.definition" in table and "targets.submit-job-2.payload" in table

    listed = ok(settings, "rules", "list").splitlines()
    assert listed[0].split() == ["NAME", "STATE", "TARGETS", "DESCRIPTION", "EVENT", "PATTERN"]
    assert listed[1].split()[:3] == ["alarm", "DISABLED", "alarm(webhook)"]
    assert listed[2].split()[:4] == [
        "ship", "ENABLED", "bump(register-revision)", "submit-job-2(submit-job)"
    ]  # fmt: skip
    as_json = json.loads(ok(settings, "-o", "json", "rules", "list"))
    assert [r["name"] for r in as_json] == ["alarm", "ship"]

    changes = tmp_path / "changes.yaml"
    changes.write_text("description: deploy every push\n")
    assert ok(settings, "rules", "update", "ship", "-f", str(changes)) == "updated ship\n"
    updated = json.loads(ok(settings, "rules", "describe", "ship", "--json"))
    assert updated["description"] == "deploy every push"
    assert updated["targets"] == described["targets"]  # kept: not in the file

    assert ok(settings, "rules", "disable", "ship") == "disabled ship\n"
    assert ok(settings, "rules", "enable", "alarm") == "enabled alarm\n"
    states = json.loads(ok(settings, "rules", "list", "--json"))
    assert [(r["name"], r["state"]) for r in states] == [("alarm", "ENABLED"), ("ship", "DISABLED")]
    assert ok(settings, "rules", "delete", "ship") == "deleted ship\n"
    assert [r["name"] for r in json.loads(ok(settings, "rules", "list", "--json"))] == ["alarm"]


def test_cli_history_shows_a_dead_webhook_and_retry_puts_it_back(
    settings: Settings, tmp_path: Path
) -> None:
    file = tmp_path / "alarm.yaml"
    file.write_text(json.dumps(closed_port_webhook()))
    ok(settings, "rules", "create", "-f", str(file), "--name", "alarm")
    (event_id,) = ok(settings, "events", "put", "--source", "ci", "--detail-type", "Oops").split()
    assert deliver(settings).failed == 1

    lines = ok(settings, "rules", "history", "alarm").splitlines()
    assert lines[0].split() == ["TIME", "TARGET", "STATE", "ATTEMPTS", "EVENT", "RESULT"]
    (row,) = lines[1:]
    assert row.split()[2:6] == ["alarm", "DEAD", "1", event_id]  # after the date and the time
    assert "connect" in row.lower(), row  # why it failed: nothing listens on the port
    dead = json.loads(ok(settings, "rules", "history", "alarm", "--dead", "--json"))
    assert [(i["state"], i["attempts"], i["event_id"]) for i in dead] == [("DEAD", 1, event_id)]

    assert ok(settings, "rules", "retry", "alarm") == "retried 1 invocation of alarm\n"
    assert json.loads(ok(settings, "rules", "history", "alarm", "--dead", "--json")) == []
    (pending,) = json.loads(ok(settings, "rules", "history", "alarm", "--json", "--limit", "5"))
    assert (pending["id"], pending["state"]) == (dead[0]["id"], "PENDING")
    out = ok(settings, "rules", "retry", "alarm", "--id", pending["id"])
    assert out == "retried 0 invocations of alarm\n"  # not dead: nothing to retry


def test_cli_test_pattern_exits_0_when_it_matches_1_when_not_2_when_invalid(
    tmp_path: Path,
) -> None:
    # No store or server is needed: a home that does not exist, a server that does not answer.
    offline = Settings.resolve(home=tmp_path / "none", url="http://127.0.0.1:9", environ={})
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"source": "ci", "detail": {"commit": "abc1"}}))

    matched = run(offline, "rules", "test-pattern", "--pattern",
                  '{"detail": {"commit": [{"prefix": "abc"}]}}', "--event", f"@{event}")  # fmt: skip
    assert (matched.returncode, matched.stdout) == (0, "true\n"), matched.stderr
    pattern = tmp_path / "pattern.json"
    pattern.write_text('{"source": ["cd"]}')
    missed = run(offline, "rules", "test-pattern", "--pattern", f"@{pattern}", "--event",
                 f"@{event}")  # fmt: skip
    assert (missed.returncode, missed.stdout) == (1, "false\n"), missed.stderr

    invalid = run(offline, "rules", "test-pattern", "--pattern", '{"source": "ci"}',
                  "--event", f"@{event}")  # fmt: skip
    assert invalid.returncode == 2
    assert invalid.stdout == ""
    assert invalid.stderr == (
        f'error: pattern: {AWS_REASON}"source" must be an object or an array\n'
    )
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("rules", "describe", "absent"), "error: rule not found: absent"),
        (("rules", "history", "absent"), "error: rule not found: absent"),
        (("rules", "retry", "absent"), "error: rule not found: absent"),
        (("rules", "enable", "absent"), "error: rule not found: absent"),
        (("rules", "create", "-f", "absent.yaml"), "error: file: cannot read absent.yaml"),
        (("rules", "create", "-f", "{bad}"), "error: event_pattern: " + AWS_REASON),
        (("rules", "create", "-f", "{broken}"), "error: file: {broken} is not valid YAML"),
        (("rules", "create", "-f", "{list}"), "error: file: {list} must hold one mapping"),
        (("rules", "create", "-f", "{nameless}"), "error: name: must be 1-128 letters"),
        (("rules", "test-pattern", "--pattern", "@absent", "--event", "{}"), "error: pattern:"),
        (
            ("rules", "test-pattern", "--pattern", '{"source": ["ci"]}', "--event", "[1"),
            "error: event: not valid JSON",
        ),
        (("events", "put", "--detail-type", "x"), "error: source: is required"),
        (("events", "put", "--source", "ci"), "error: detail-type: is required"),
        (
            ("events", "put", "--source", "dockyard.jobs", "--detail-type", "x"),
            "error: entries[0].Source: sources beginning with dockyard. are Dockyard's own",
        ),
        (
            ("events", "put", "--source", "ci", "--detail-type", "x", "--detail", "[1]"),
            "error: entries[0].Detail: must be a JSON object",
        ),
        (("events", "put", "-f", "{list}", "--source", "ci"), "error: file: give the events"),
    ],
)
def test_cli_mistakes_are_one_line_exit_2(
    settings: Settings, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    files = {
        "{bad}": "name: bad\nevent_pattern: {source: ci}\n",
        "{broken}": "event_pattern: {source: [ci]\nname: x\n",
        "{list}": "- event_pattern: {source: [ci]}\n",
        "{nameless}": "event_pattern: {source: [ci]}\n",
    }
    for placeholder, text in files.items():
        (tmp_path / placeholder.strip("{}")).with_suffix(".yaml").write_text(text)
    args = tuple(str(tmp_path / f"{arg.strip('{}')}.yaml") if arg in files else arg for arg in args)
    message = next(
        (
            message.replace(p, str(tmp_path / f"{p.strip('{}')}.yaml"))
            for p in files
            if p in message
        ),
        message,
    )
    result = run(settings, *args)
    assert result.returncode == 2, result
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert json.loads(ok(settings, "rules", "list", "-o", "json")) == []


# -- rule loops and rates (issue 26) ----------------------------------------------------------


def test_a_rule_s_rate_is_a_field_and_throttled_invocations_are_in_its_history(
    client: dockyard.Client, settings: Settings
) -> None:
    created = client.create_rule(on_build(max_invocations_per_minute=1), name="ship")
    assert created.spec.max_invocations_per_minute == 1
    assert client.rule("ship") == created
    assert client.create_rule(on_build(), name="plain").spec.max_invocations_per_minute == 1000
    first, second = client.put_events([build_done("a1"), build_done("b2")])

    report = deliver(settings)
    assert (report.events, report.delivered, report.throttled) == (2, 3, 1)  # plain: both
    (throttled,) = client.rule_history("ship", state="throttled")
    assert (throttled.event_id, throttled.attempts, throttled.result) == (second, 0, None)
    assert throttled.error == "throttled: over the rule's max_invocations_per_minute (1)"
    assert throttled.depth == 1  # for a user's event: depth 0, plus one
    (delivered,) = client.rule_history("ship", state=InvocationState.DELIVERED)
    assert (delivered.event_id, delivered.depth) == (first, 1)
    assert client.retry_invocations("ship") == 0  # throttled is not dead: never tried again

    with pytest.raises(ValidationError) as caught:
        client.update_rule("ship", {"max_invocations_per_minute": 0})
    assert caught.value.field == "max_invocations_per_minute"
    assert client.rule("ship") == created
    raised = client.update_rule("ship", {"max_invocations_per_minute": 600})
    assert raised.spec.max_invocations_per_minute == 600


def test_cli_history_shows_throttled_invocations_and_why(
    settings: Settings, tmp_path: Path
) -> None:
    file = tmp_path / "ship.yaml"
    file.write_text(json.dumps(on_build(max_invocations_per_minute=1)))
    ok(settings, "rules", "create", "-f", str(file), "--name", "ship")
    described = ok(settings, "rules", "describe", "ship").splitlines()
    assert ["max_invocations_per_minute", "1"] in [line.split() for line in described]
    put = ("events", "put", "--source", "ci", "--detail-type", "Build Done")
    (first,), (second,) = ok(settings, *put).split(), ok(settings, *put).split()
    assert deliver(settings).throttled == 1

    lines = ok(settings, "rules", "history", "ship").splitlines()
    rows = {line.split()[5]: line for line in lines[1:]}  # by event, after the date and time
    assert rows[first].split()[2:5] == ["deploy", "DELIVERED", "1"]
    assert rows[second].split()[2:5] == ["deploy", "THROTTLED", "0"]
    assert "throttled: over the rule's max_invocations_per_minute (1)" in rows[second]
    throttled = json.loads(
        ok(settings, "rules", "history", "ship", "--state", "throttled", "--json")
    )
    assert [(i["event_id"], i["state"], i["depth"]) for i in throttled] == [
        (second, "THROTTLED", 1)
    ]
    assert (
        json.loads(ok(settings, "rules", "history", "ship", "--state", "REFUSED", "--json")) == []
    )

    result = run(settings, "rules", "history", "ship", "--dead", "--state", "throttled")
    assert result.returncode == 2, result
    assert result.stderr == "error: --dead: asks for DEAD, and --state for THROTTLED\n"
