"""The rules engine on each backend: events put or emitted, matched by rules, delivered to targets.

Each round is one :meth:`RulesEngine.run_once`, as the leader's loop runs it; times come from a
clock the test moves, so a backoff takes no time. Webhooks go to a real HTTP server.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from dockyard import SubmitRequest, ValidationError
from dockyard.app import Dockyard
from dockyard.domain.definitions import definition_document
from dockyard.domain.patterns import InvalidEventPattern
from dockyard.domain.rules import InvocationState
from dockyard.executors.http import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from dockyard.runtime import RulesConfig, RulesEngine, SchedulerConfig
from dockyard.settings import Settings
from dockyard.storage.ports import JobQuery
from tests.conftest import ECR_EVENT, FakeClock, HttpServer, Received, free_port

T = TypeVar("T")
START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)

#: ECR's event for a push of team/app:v2 (the AWS guide's own, with another repository and tag).
ECR_PUSH = {
    **ECR_EVENT,
    "detail": {
        **ECR_EVENT["detail"],
        "repository-name": "team/app",
        "image-digest": "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678",
        "image-tag": "v2",
    },
}
ECR_IMAGE = (
    "123456789012.dkr.ecr.us-west-2.amazonaws.com/team/app:v2"
    "@sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678"
)


def run(settings: Settings, scenario: Callable[[Dockyard, FakeClock], Awaitable[T]]) -> T:
    async def main() -> T:
        clock = FakeClock(START)
        app = await Dockyard.open(settings, clock=clock)
        try:
            await app.definitions.register(
                {"executor": "python", "function": "tests.jobfunctions:echo"}, name="report"
            )
            return await scenario(app, clock)
        finally:
            await app.close()

    return asyncio.run(main())


def engine(app: Dockyard) -> RulesEngine:
    return app.rules_engine(RulesConfig(), rng=random.Random(7))


def put(source: str, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}


async def jobs_of(app: Dockyard, definition: str) -> list[Any]:
    jobs = await app.storage.jobs.select(JobQuery(limit=1000))
    return [job for job in jobs if job.definition_name == definition]


def test_a_matching_event_submits_one_job_with_the_transformed_payload(
    settings: Settings,
) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.rules.create(
            {
                "event_pattern": {
                    "source": ["shop.orders"],
                    "detail": {"total": [{"numeric": [">", 100]}]},
                },
                "targets": [
                    {
                        "id": "invoice",
                        "kind": "submit-job",
                        "definition": "report",
                        "queue": "billing",
                        "input_transformer": {
                            "input_paths": {"order": "$.detail.id", "total": "$.detail.total"},
                            "input_template": '{"order": <order>, "note": "total <total>"}',
                        },
                    }
                ],
            },
            name="big-orders",
        )
        events = await app.events.put(
            [
                put("shop.orders", "Order Placed", {"id": "o-1", "total": 250}),
                put("shop.orders", "Order Placed", {"id": "o-2", "total": 20}),
                put("shop.other", "Order Placed", {"id": "o-3", "total": 999}),
            ]
        )
        report = await engine(app).run_once()
        assert (report.events, report.invocations, report.delivered) == (3, 1, 1)
        (job,) = await jobs_of(app, "report")
        assert job.payload == {"order": "o-1", "note": "total 250"}
        assert job.queue == "billing"
        assert job.idempotency_key == f"rule:big-orders:invoice:{events[0].id}"
        (invocation,) = await app.rules.history("big-orders")
        assert invocation.state is InvocationState.DELIVERED
        assert invocation.result == f"job {job.id}"
        assert invocation.event["detail"] == {"id": "o-1", "total": 250}
        # Nothing is left to route or deliver; a second round does nothing.
        assert (await engine(app).run_once()).events == 0
        assert len(await jobs_of(app, "report")) == 1

    run(settings, scenario)


def test_without_a_target_payload_the_job_gets_the_whole_event(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.rules.create(
            {
                "event_pattern": {"source": ["ci"]},
                "targets": [{"kind": "submit-job", "definition": "report"}],
            },
            name="everything",
        )
        (event,) = await app.events.put([put("ci", "Build Done", {"ok": True})])
        await engine(app).run_once()
        (job,) = await jobs_of(app, "report")
        assert job.payload == event.envelope()

    run(settings, scenario)


def test_job_state_changes_are_events_and_the_submission_is_not(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.rules.create(
            {
                "event_pattern": {
                    "source": ["dockyard.job"],
                    "detail-type": ["Job State Change"],
                    "detail": {"status": ["CANCELLED"], "jobDefinition": [{"prefix": "report:"}]},
                },
                "targets": [{"id": "note", "kind": "submit-job", "definition": "report"}],
            },
            name="cancelled-reports",
        )
        submitted = await app.jobs.submit(SubmitRequest(definition="report", group="g1"))
        job = submitted.job
        assert await app.events.recent() == []  # AWS Batch sends no event for a submission
        await app.jobs.cancel(job.id, reason="not needed")
        (stored,) = await app.events.recent()
        event = stored.envelope
        assert event["source"] == "dockyard.job"
        assert event["resources"] == [f"dockyard:job/{job.id}"]
        assert event["detail"] == {
            "jobId": job.id,
            "jobName": job.name,
            "jobDefinition": "report:1",
            "jobQueue": "default",
            "status": "CANCELLED",
            "previousStatus": "RUNNABLE",
            "statusReason": "not needed",
            "attempts": 0,
            "exitCode": None,
            "group": "g1",
        }
        datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")
        await engine(app).run_once()
        (invocation,) = await app.rules.history("cancelled-reports")
        assert invocation.state is InvocationState.DELIVERED
        (note,) = [j for j in await jobs_of(app, "report") if j.id != job.id]
        assert note.payload["detail"]["jobId"] == job.id

    run(settings, scenario)


def test_the_bus_keeps_events_only_while_a_rule_is_enabled(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        submitted = await app.jobs.submit(SubmitRequest(definition="report"))
        await app.jobs.cancel(submitted.job.id)
        assert await app.events.put([put("a", "b", {})])  # accepted, and nothing reads it
        await app.rules.create(
            {"event_pattern": {"source": ["a"]}, "state": "DISABLED"}, name="off"
        )
        await app.events.put([put("a", "b", {})])
        assert await app.events.recent() == []
        await app.rules.set_enabled("off", True)
        await app.events.put([put("a", "b", {"n": 1})])
        (stored,) = await app.events.recent()
        assert stored.envelope["detail"] == {"n": 1}

    run(settings, scenario)


def test_definitions_registered_and_schedules_fired_are_events(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.rules.create({"event_pattern": {"source": [{"prefix": "dockyard."}]}}, name="all")
        await app.definitions.register({"executor": "docker", "image": "busybox:1.36"}, name="tool")
        (registered,) = await app.events.recent(source="dockyard.definition")
        assert registered.envelope["detail-type"] == "Definition Registered"
        assert registered.envelope["detail"] == {
            "name": "tool",
            "revision": 1,
            "status": "ACTIVE",
            "executor": "docker",
            "image": "busybox:1.36",
        }
        await app.schedules.create(
            {"expression": "rate(1 minute)", "target": {"definition": "report"}}, name="tick"
        )
        clock.advance(61)
        assert (await app.scheduler(SchedulerConfig()).run_once()).fired == 1
        (fired,) = await app.events.recent(source="dockyard.schedule")
        (job,) = await jobs_of(app, "report")
        assert fired.envelope["detail-type"] == "Schedule Fired"
        assert fired.envelope["resources"] == ["dockyard:schedule/tick"]
        assert fired.envelope["detail"] == {
            "schedule": "tick",
            "scheduledTime": "2026-06-01T12:01:00Z",
            "jobId": job.id,
            "jobDefinition": "report:1",
        }

    run(settings, scenario)


def test_register_revision_replaces_the_image_and_keeps_everything_else(
    settings: Settings,
) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        app_doc = {
            "executor": "docker",
            "image": "123456789012.dkr.ecr.us-west-2.amazonaws.com/team/app:v1",
            "command": ["serve", "--once"],
            "environment": {"MODE": "batch"},
            "resources": {"vcpus": 0.5, "memory_mib": 64},
            "timeout": 120,
            "retry": {"attempts": 3},
            "queue": "deploys",
            "description": "the app",
        }
        first = await app.definitions.register(app_doc, name="app")
        other = await app.definitions.register(
            {"executor": "docker", "image": "registry.local/team/other:v1"}, name="other"
        )
        await app.definitions.register({"executor": "process", "command": ["true"]}, name="plain")
        await app.rules.create(
            {
                "event_pattern": {
                    "source": ["aws.ecr"],
                    "detail": {"repository-name": ["team/app"], "action-type": ["PUSH"]},
                },
                "targets": [{"id": "bump", "kind": "register-revision", "definition": "app"}],
            },
            name="deploy-app",
        )
        await app.events.put(ECR_PUSH)  # ECR's event as it is
        await engine(app).run_once()
        latest = await app.definitions.get("app")
        assert latest.revision == 2
        before = definition_document("app", first.spec)
        after = definition_document("app", latest.spec)
        assert after == {**before, "image": ECR_IMAGE}
        assert (await app.definitions.get("other")).revision == other.revision
        history = {i.target: i for i in await app.rules.history("deploy-app")}
        assert history["bump"].state is InvocationState.DELIVERED
        assert history["bump"].result == "definition app:2"
        # A rule cannot name a definition that takes no image.
        with pytest.raises(ValidationError) as refused:
            await app.rules.update(
                "deploy-app", {"targets": [{"kind": "register-revision", "definition": "plain"}]}
            )
        assert refused.value.field == "targets[0].definition"
        assert (
            refused.value.rule
            == "plain does not run containers: only docker definitions take an image"
        )
        # The same image pushed again (a new event): no new revision.
        clock.advance(1)
        (again,) = await app.events.put(ECR_PUSH)
        await engine(app).run_once()
        assert (await app.definitions.get("app")).revision == 2
        newest = {
            i.target: i for i in await app.rules.history("deploy-app") if i.event_id == again.id
        }
        assert newest["bump"].result == f"definition app:2 already runs {ECR_IMAGE}"

    run(settings, scenario)


def test_a_webhook_gets_the_event_signed_retries_and_the_dead_list(
    settings: Settings, http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALARM_SECRET", "alarm-secret")
    # The worker's owner lets definitions and rules name ALARM_SECRET as a credential.
    settings = replace(settings, policy=replace(settings.policy, credential_env=("ALARM_SECRET",)))
    answers = http_server.answers
    answers += [(503, {}, b""), (503, {}, b""), (200, {}, b"")]

    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.rules.create(
            {
                "event_pattern": {"source": ["monitor"]},
                "targets": [
                    {
                        "id": "alarm",
                        "kind": "webhook",
                        "url": f"{http_server.url}/hooks/alarm",
                        "secret_env": "ALARM_SECRET",
                        "headers": {"X-Team": "ops"},
                        "retry_policy": {"maximum_retry_attempts": 3, "base_delay_seconds": 10},
                    }
                ],
            },
            name="alarm",
        )
        (event,) = await app.events.put([put("monitor", "Disk Full", {"host": "db1"})])
        rules = engine(app)
        await rules.run_once()
        (first,) = await app.rules.history("alarm")
        assert (first.state, first.attempts, first.error) == (
            InvocationState.PENDING,
            1,
            "HTTP 503",
        )
        assert first.next_attempt_at is not None
        delay = (first.next_attempt_at - clock.now()).total_seconds()
        assert 5 <= delay <= 10  # the first backoff, with jitter
        await rules.run_once()
        assert len(http_server.received) == 1  # not due yet
        clock.advance(10)
        await rules.run_once()
        (second,) = await app.rules.history("alarm")
        assert second.attempts == 2 and second.next_attempt_at is not None
        assert 10 <= (second.next_attempt_at - clock.now()).total_seconds() <= 20
        clock.advance(20)
        await rules.run_once()
        (done,) = await app.rules.history("alarm")
        assert (done.state, done.attempts, done.result) == (
            InvocationState.DELIVERED,
            3,
            "HTTP 200",
        )

        request = http_server.received[-1]
        assert (request.method, request.path) == ("POST", "/hooks/alarm")
        assert request.headers["X-Team"] == "ops"
        assert json.loads(request.body) == event.envelope()
        assert verify_signature(
            b"alarm-secret",
            request.headers[TIMESTAMP_HEADER],
            request.body,
            request.headers[SIGNATURE_HEADER],
        )

    run(settings, scenario)


def test_a_refused_delivery_is_dead_at_once_and_can_be_retried(
    settings: Settings, http_server: HttpServer
) -> None:
    refusing = {"on": True}

    def answer(request: Received) -> tuple[int, dict[str, str], bytes]:
        return (400, {}, b"no") if refusing["on"] else (204, {}, b"")

    http_server.default = answer

    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.rules.create(
            {
                "event_pattern": {"source": ["monitor"]},
                "targets": [{"id": "hook", "kind": "webhook", "url": http_server.url}],
            },
            name="hook",
        )
        await app.events.put([put("monitor", "Ping", {})])
        await engine(app).run_once()
        (dead,) = await app.rules.history("hook", InvocationState.DEAD)
        assert (dead.attempts, dead.error) == (1, "HTTP 400")
        assert await app.rules.history("hook", InvocationState.PENDING) == []
        refusing["on"] = False
        assert await app.rules.retry_invocations("hook") == 1
        assert await app.rules.retry_invocations("hook") == 0  # nothing dead is left
        await engine(app).run_once()
        (delivered,) = await app.rules.history("hook")
        assert (delivered.state, delivered.result) == (InvocationState.DELIVERED, "HTTP 204")
        assert len(http_server.received) == 2

    run(settings, scenario)


def test_retries_end_on_the_dead_list(settings: Settings) -> None:
    closed = f"http://127.0.0.1:{free_port()}/nobody"

    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.rules.create(
            {
                "event_pattern": {"source": ["monitor"]},
                "targets": [
                    {
                        "id": "hook",
                        "kind": "webhook",
                        "url": closed,
                        "retry_policy": {"maximum_retry_attempts": 2, "base_delay_seconds": 0},
                    }
                ],
            },
            name="down",
        )
        await app.events.put([put("monitor", "Ping", {})])
        rules = engine(app)
        for _ in range(3):
            await rules.run_once()
        (dead,) = await app.rules.history("down")
        assert dead.state is InvocationState.DEAD
        assert dead.attempts == 3  # the first try and two retries
        assert dead.error is not None and "ConnectError" in dead.error

    run(settings, scenario)


def test_an_event_is_routed_once_even_when_routed_again(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.rules.create(
            {
                "event_pattern": {"source": ["ci"]},
                "targets": [{"id": "t", "kind": "submit-job", "definition": "report"}],
            },
            name="once",
        )
        await app.events.put([put("ci", "Done", {})])
        (stored,) = await app.storage.events.unrouted(10)
        rules = engine(app)
        await rules.run_once()
        # A leader that died before its commit would route the same event again: nothing doubles.
        from dockyard.storage.ports import NewInvocation

        again = NewInvocation(id="another", rule="once", target="t", event=stored.envelope)
        assert await app.storage.events.route([stored.seq], [again], clock.now()) == 0
        assert len(await app.rules.history("once")) == 1
        assert len(await jobs_of(app, "report")) == 1

    run(settings, scenario)


@pytest.mark.parametrize(
    ("document", "field", "rule"),
    [
        (
            {"event_pattern": {"source": "x"}},
            "event_pattern",
            'Event pattern is not valid. Reason: "source" must be an object or an array',
        ),
        ({}, "event_pattern", "is required (EventBridge pattern syntax)"),
        (
            {"event_pattern": {"source": ["x"]}, "targets": [{"kind": "email"}]},
            "targets[0].kind",
            "must be submit-job, register-revision or webhook",
        ),
        (
            {
                "event_pattern": {"source": ["x"]},
                "targets": [
                    {"id": "a", "kind": "register-revision", "definition": "app"},
                    {"id": "a", "kind": "register-revision", "definition": "app"},
                ],
            },
            "targets[1].id",
            "'a' is used twice",
        ),
        (
            {
                "event_pattern": {"source": ["x"]},
                "targets": [{"kind": "webhook", "url": "ftp://x"}],
            },
            "targets[0].url",
            "is required: an http:// or https:// URL",
        ),
        (
            {
                "event_pattern": {"source": ["x"]},
                "targets": [
                    {
                        "kind": "submit-job",
                        "definition": "report",
                        "retry_policy": {"maximum_retry_attempts": 200},
                    }
                ],
            },
            "targets[0].retry_policy.maximum_retry_attempts",
            "must be an integer from 0 to 185",
        ),
    ],
)
def test_bad_rules_name_the_field_and_write_nothing(
    settings: Settings, document: dict[str, Any], field: str, rule: str
) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        with pytest.raises(ValidationError) as raised:
            await app.rules.create(document, name="bad")
        assert (raised.value.field, raised.value.rule) == (field, rule)
        assert await app.rules.list() == []

    run(settings, scenario)


def test_an_invalid_pattern_carries_aws_message(settings: Settings) -> None:
    async def scenario(app: Dockyard, _: FakeClock) -> None:
        with pytest.raises(InvalidEventPattern) as raised:
            await app.events.test_pattern(
                {"detail": {"n": [{"numeric": [">", "x"]}]}}, {"detail": {}}
            )
        assert raised.value.message == (
            "Event pattern is not valid. Reason: Value of > must be numeric"
        )
        assert await app.events.test_pattern({"source": ["a"]}, {"source": "a"}) is True
        assert await app.events.test_pattern({"source": ["a"]}, {"source": "b"}) is False

    run(settings, scenario)


def test_a_target_that_cannot_work_is_dead_at_once(settings: Settings) -> None:
    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        with pytest.raises(ValidationError) as refused:
            await app.rules.create(
                {
                    "event_pattern": {"source": ["ci"]},
                    "targets": [{"kind": "submit-job", "definition": "missing"}],
                },
                name="gone",
            )
        assert (refused.value.field, refused.value.rule) == (
            "targets[0].definition",
            "no active definition missing (register it first)",
        )
        await app.definitions.register({"executor": "process", "command": ["true"]}, name="brief")
        await app.rules.create(
            {
                "event_pattern": {"source": ["ci"]},
                "targets": [{"id": "t", "kind": "submit-job", "definition": "brief"}],
            },
            name="gone",
        )
        await app.definitions.deregister("brief:1")
        await app.events.put([put("ci", "Done", {})])
        await engine(app).run_once()
        (dead,) = await app.rules.history("gone")
        assert (dead.state, dead.attempts) == (InvocationState.DEAD, 1)  # not retried
        assert dead.error == "active revision of definition not found: brief"
        assert await jobs_of(app, "brief") == []

    run(settings, scenario)


def test_the_index_by_source_finds_exactly_what_trying_every_rule_finds() -> None:
    from bench.rules import make_events, make_rules

    from dockyard.domain.rule_index import RuleIndex
    from dockyard.domain.rules import Rule, parse_rule

    rng = random.Random(3)
    patterns = [
        *make_rules(300, rng, common=False),
        {"source": [{"prefix": "team1"}]},
        {"detail-type": ["Disk Full"]},
        {"source": ["team2.service", "team3.service"], "detail": {"urgent": [True]}},
    ]
    rules = [
        Rule(
            name=f"r{n}",
            spec=parse_rule({"event_pattern": pattern})[0],
            enabled=True,
            created_at=START,
            updated_at=START,
        )
        for n, pattern in enumerate(patterns)
    ]
    index = RuleIndex(rules)
    events = make_events(300, rng)
    events.append({**events[0], "source": ["team1.service", "other"]})  # not a string: every rule
    found = 0
    for event in events:
        expected = [rule.name for rule in rules if rule.spec.pattern.matches(event)]
        assert [rule.name for rule in index.matching(event)] == expected
        found += len(expected)
    assert found > 50  # the events do match some rules: the comparison means something


def test_maintenance_prunes_old_events_and_deliveries_but_keeps_the_dead_list(
    settings: Settings, http_server: HttpServer
) -> None:
    http_server.default = lambda request: (
        (400, {}, b"") if b"refuse" in request.body else (200, {}, b"")
    )

    async def scenario(app: Dockyard, clock: FakeClock) -> None:
        await app.rules.create(
            {
                "event_pattern": {"source": ["monitor"]},
                "targets": [{"id": "hook", "kind": "webhook", "url": http_server.url}],
            },
            name="hook",
        )
        await app.events.put([put("monitor", "Ping", {}), put("monitor", "Ping", {"refuse": 1})])
        await engine(app).run_once()
        states = sorted(i.state.value for i in await app.rules.history("hook"))
        assert states == ["DEAD", "DELIVERED"]
        tidy = app.maintenance()
        assert await tidy.prune_events() == 0  # nothing is old yet
        clock.advance(tidy.config.retention.total_seconds() + 1)
        await tidy.run_once()
        assert await app.events.recent() == []
        (dead,) = await app.rules.history("hook")
        assert dead.state is InvocationState.DEAD

    run(settings, scenario)
