"""Definitions and jobs through the SDK on a real SQLite store, with real workers."""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import dockyard
from dockyard import ConflictError, JobState, NotFoundError, SubmitRequest, ValidationError
from dockyard.app import Dockyard
from dockyard.domain import transitions
from dockyard.domain.outcomes import Outcome
from dockyard.domain.retry import RetryPolicy
from dockyard.settings import Settings
from dockyard.storage.ports import ClaimRequest
from dockyard.storage.sqlite.migrator import apply_migrations, schema_sql
from tests.conftest import FakeClock, ServerProcess, register_process, wait_until
from tests.helpers.plans import sqlite_claim_plans

SCHEMA = Path(__file__).parent.parent / "src/dockyard/storage/sqlite/schema.sql"


@pytest.fixture(params=["direct", "http"])
def client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[dockyard.Client]:
    """Every client operation here runs twice: on the store itself, and over a real HTTP server."""
    if request.param == "direct":
        with dockyard.DirectClient(settings) as direct:
            yield direct
        return
    server: ServerProcess = request.getfixturevalue("server")
    with dockyard.HttpClient(server.url, token=server.admin_token) as http:
        yield http


def test_public_api_is_curated() -> None:
    assert sorted(dockyard.__all__) == dockyard.__all__
    for name in dockyard.__all__:
        assert hasattr(dockyard, name)


def test_migrations_produce_schema_sql() -> None:
    db = sqlite3.connect(":memory:", isolation_level=None)
    apply_migrations(db)
    assert apply_migrations(db) == []  # idempotent
    checked_in = SCHEMA.read_text().split("\n\n", 1)[1]
    assert schema_sql(db) == checked_in, "run scripts/schema-sql to regenerate"


def test_claims_walk_indexes_instead_of_sorting_the_backlog(tmp_path: Path) -> None:
    """A plan that sorts every runnable job, or scans finished ones for the group check, costs
    each claim time in proportion to the backlog or the history: it must not come back."""

    found = [plan for _, plan in sqlite_claim_plans(tmp_path / "dockyard.db")]
    assert len(found) == 6
    for plan in found:
        assert "TEMP B-TREE" not in plan, plan
        assert "jobs_state" not in plan, plan
        assert "SEARCH g USING INDEX jobs_open_groups" in plan, plan


def test_revisions_are_immutable_and_name_means_latest_active(client: dockyard.Client) -> None:
    assert register_process(client, "refresh", "echo", "v1").revision == 1
    assert register_process(client, "refresh", "echo", "v2").revision == 2
    assert client.definition("refresh").revision == 2
    assert client.definition("refresh:1").spec.executor.command == ("echo", "v1")  # type: ignore[attr-defined]

    client.deregister("refresh:2")
    assert client.definition("refresh").revision == 1
    assert [d.status.value for d in client.revisions("refresh")] == ["ACTIVE", "INACTIVE"]
    with pytest.raises(ConflictError, match="INACTIVE"):
        client.submit("refresh:2")
    assert client.submit("refresh").definition_ref == "refresh:1"

    client.deregister("refresh:1")
    with pytest.raises(NotFoundError, match="active revision"):
        client.submit("refresh")
    with pytest.raises(NotFoundError):
        client.definition("refresh:9")
    with pytest.raises(ValidationError, match="NAME:REVISION"):
        client.deregister("refresh")


def test_idempotency_key_returns_the_existing_job(client: dockyard.Client) -> None:
    register_process(client, "charge", "true")
    first = client.submit("charge", idempotency_key="order-42", payload={"amount": 5})
    again = client.submit("charge", idempotency_key="order-42", payload={"amount": 999})
    assert again.id == first.id
    assert again.payload == {"amount": 5}
    (submitted,) = client.submit_requests(
        [SubmitRequest(definition="charge", idempotency_key="order-42")]
    )
    assert not submitted.created
    assert len(client.list()) == 1


def test_submit_returns_each_job_as_it_is_stored(client: dockyard.Client) -> None:
    register_process(client, "echo", "echo", "Ref::word", parameters={"word": "hi"})
    client.submit("echo", idempotency_key="k1")
    requests = [
        SubmitRequest(
            definition="echo",
            name=f"echo-{i}",
            payload={"n": i, "xs": [1.5, None, "é"]} if i % 2 else None,
            group="g" if i % 3 == 0 else None,
            priority=i,
            command=("echo", str(i)) if i % 2 else None,
            environment={"A": str(i)},
            timeout_seconds=5.5 if i % 2 else None,
            attempts=2,
            parameters={"word": f"w{i}"},
            idempotency_key=f"k{i}" if i % 4 == 1 else None,  # k1 exists: one is not created
        )
        for i in range(8)
    ]
    submitted = client.submit_requests(requests)
    assert [item.created for item in submitted] == [i != 1 for i in range(8)]
    for item in submitted:
        assert item.job == client.get(item.job.id)


def test_a_bad_job_in_a_batch_writes_nothing(client: dockyard.Client) -> None:
    register_process(client, "ok", "true")
    with pytest.raises(ValidationError) as caught:
        client.submit_requests(
            [
                SubmitRequest(definition="ok"),
                SubmitRequest(definition="ok", attempts=11),
                SubmitRequest(definition="ok"),
            ]
        )
    assert caught.value.field == "jobs.1.attempts"
    assert client.list() == []


def test_bad_submissions_name_the_field(client: dockyard.Client) -> None:
    register_process(client, "ok", "true")
    cases = [
        ({"priority": 5000}, "priority"),
        ({"attempts": 0}, "attempts"),
        ({"timeout": -3}, "timeout"),
        ({"queue": "no spaces"}, "queue"),
        ({"environment": {"DOCKYARD_JOB_ID": "x"}}, "environment.DOCKYARD_JOB_ID"),
        ({"command": []}, "command"),
        ({"payload": {"not": {1, 2}}}, "payload"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as caught:
            client.submit("ok", **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field
    with pytest.raises(NotFoundError):
        client.submit("missing")
    with pytest.raises(NotFoundError):
        client.get("no-such-job")
    assert client.list() == []


def test_overrides_and_listing_filters(client: dockyard.Client, start_worker) -> None:
    register_process(
        client,
        "greet",
        "sh",
        "-c",
        'echo "$GREETING $WHO"',
        environment={"GREETING": "hi", "WHO": "all"},
    )
    register_process(client, "other", "true", queue="side")
    job = client.submit("greet", environment={"WHO": "you"}, payload={"n": 1})
    side = client.submit("other")
    assert side.queue == "side"
    start_worker(concurrency=2)
    assert client.wait(job.id, timeout=30).state is JobState.SUCCEEDED
    assert client.logs(job.id) == "hi you\n"
    client.wait(side.id, timeout=30)
    assert [j.id for j in client.list(queue="side")] == [side.id]
    assert [j.id for j in client.list(definition="greet")] == [job.id]
    assert [j.id for j in client.list(states=["succeeded"])] == [side.id, job.id]
    assert len(client.list(limit=1)) == 1
    with pytest.raises(ValidationError, match="state"):
        client.list(states=["DONE"])


def test_retry_then_success_respects_the_backoff(settings: Settings, start_worker) -> None:
    """An injectable clock: the retry waits for its not-before time, and no real time passes."""
    clock = FakeClock()
    with dockyard.DirectClient(settings, clock=clock) as client:
        _retry_then_success(client, clock, start_worker)


def _retry_then_success(client: dockyard.Client, clock: FakeClock, start_worker) -> None:
    register_process(
        client,
        "flaky",
        "sh",
        "-c",
        'test "$DOCKYARD_JOB_ATTEMPT" -ge 2',
        retry={"attempts": 2, "backoff_base": 30},
    )
    register_process(client, "sentinel", "true")
    start_worker(concurrency=2, clock=clock)
    job = client.submit("flaky")
    wait_until(
        lambda: (
            client.get(job.id).attempt_count == 1 and client.get(job.id).state is JobState.RUNNABLE
        )
    )
    waiting = client.get(job.id)
    assert (
        clock.now() + timedelta(seconds=30)
        <= waiting.not_before
        <= clock.now() + timedelta(seconds=33)
    )
    assert waiting.attempts[0].exit_code == 1

    # The worker had every chance to take the retry: it ran a job submitted later instead.
    sentinel = client.submit("sentinel")
    assert client.wait(sentinel.id, timeout=30).state is JobState.SUCCEEDED
    assert client.get(job.id).state is JobState.RUNNABLE

    clock.advance(34)
    done = client.wait(job.id, timeout=30)
    assert done.state is JobState.SUCCEEDED
    assert [a.exit_code for a in done.attempts] == [1, 0]


def test_evaluate_on_exit_exits_on_one_code_and_retries_another(
    client: dockyard.Client, start_worker
) -> None:
    rules = {
        "attempts": 3,
        "backoff_base": 0,
        "evaluate_on_exit": [
            {"action": "EXIT", "on_exit_code": "1"},
            {"action": "RETRY", "on_exit_code": "2"},
        ],
    }
    register_process(client, "fatal", "sh", "-c", "exit 1", retry=rules)
    register_process(
        client, "transient", "sh", "-c", 'test "$DOCKYARD_JOB_ATTEMPT" -ge 2 || exit 2', retry=rules
    )
    start_worker(concurrency=2)
    fatal = client.wait(client.submit("fatal").id, timeout=30)
    transient = client.wait(client.submit("transient").id, timeout=30)
    assert (fatal.state, len(fatal.attempts), fatal.exit_code) == (JobState.FAILED, 1, 1)
    assert (transient.state, [a.exit_code for a in transient.attempts]) == (
        JobState.SUCCEEDED,
        [2, 0],
    )
    # A retry by request renews the attempts; the history stays. Both transports agree.
    retried = client.retry(fatal.id)
    assert (retried.state, retried.attempts_used, len(retried.attempts)) == (
        JobState.RUNNABLE,
        0,
        1,
    )


def test_cancel_and_retry_a_job(client: dockyard.Client, start_worker) -> None:
    register_process(client, "once", "true")
    job = client.submit("once")
    cancelled = client.cancel(job.id, reason="not today")
    assert (cancelled.state, cancelled.status_reason) == (JobState.CANCELLED, "not today")
    with pytest.raises(ConflictError):
        client.cancel(job.id)
    assert client.retry(job.id).state is JobState.RUNNABLE
    start_worker(concurrency=1)
    assert client.wait(job.id, timeout=30).state is JobState.SUCCEEDED
    with pytest.raises(ConflictError, match="only FAILED or CANCELLED"):
        client.retry(job.id)


def test_group_runs_one_at_a_time_in_submission_order(
    client: dockyard.Client, start_worker
) -> None:
    register_process(client, "step", "sh", "-c", "sleep 0.05")
    jobs = [client.submit("step", group="account-7") for _ in range(6)]
    loose = client.submit("step")
    start_worker(concurrency=4)
    done = [client.wait(job.id, timeout=30) for job in [*jobs, loose]]
    in_group = done[:-1]
    for earlier, later in itertools.pairwise(in_group):
        assert earlier.stopped_at is not None and later.started_at is not None
        assert earlier.stopped_at <= later.started_at


def test_store_url_and_home_come_from_settings(tmp_path: Path) -> None:
    settings = Settings.resolve(environ={"DOCKYARD_HOME": str(tmp_path / "h")})
    assert settings.url == f"sqlite:///{tmp_path / 'h' / 'dockyard.db'}"
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "config.toml").write_text('log_dir = "/var/tmp/dy-logs"\n')
    assert Settings.resolve(home=tmp_path / "h", environ={}).log_dir == Path("/var/tmp/dy-logs")
    (tmp_path / "h" / "config.toml").write_text("colour = 'blue'\n")
    with pytest.raises(ValidationError, match="colour"):
        Settings.resolve(home=tmp_path / "h", environ={})
    with dockyard.connect(f"sqlite:///{tmp_path / 'other.db'}", home=tmp_path / "h2") as other:
        assert other.list() == []
    assert (tmp_path / "other.db").exists()
    with pytest.raises(ValidationError, match="url"):
        dockyard.connect("mysql://nope", home=tmp_path / "h2")


def test_claim_is_exclusive_under_concurrent_claimers(
    settings: Settings, client: dockyard.Client
) -> None:
    """Two stores (two connections, as two processes have) claiming the same jobs never share one."""
    from datetime import UTC, datetime

    from dockyard.storage import ClaimRequest, open_storage

    register_process(client, "n", "true")
    client.submit_requests([SubmitRequest(definition="n")] * 200)

    async def claim_all(worker: str) -> list[str]:
        storage = open_storage(settings.url)
        claimed: list[str] = []
        try:
            while True:
                now = datetime.now(UTC)
                batch = await storage.jobs.claim(
                    ClaimRequest(
                        worker_id=worker,
                        queues=None,
                        limit=7,
                        now=now,
                        lease_until=now + timedelta(seconds=30),
                    )
                )
                if not batch:
                    return claimed
                claimed.extend(job.id for job in batch)
        finally:
            await storage.close()

    async def race() -> list[list[str]]:
        return list(await asyncio.gather(claim_all("a"), claim_all("b"), claim_all("c")))

    results = asyncio.run(race())
    everything = [job_id for claimed in results for job_id in claimed]
    assert len(everything) == len(set(everything)) == 200


def test_a_batch_applies_each_jobs_transitions_in_order(settings: Settings) -> None:
    """A worker may write a job's start and its end in one batch, among other jobs' changes:
    they apply in the order given, and a guard that fails fails alone."""

    async def scenario() -> tuple[list[bool], list[dockyard.Job]]:
        app = await Dockyard.open(settings)
        try:
            await app.definitions.register({"executor": "process", "command": ["true"]}, "t")
            await app.jobs.submit_many([SubmitRequest(definition="t") for _ in range(3)])
            now = datetime.now(UTC)
            request = ClaimRequest(
                worker_id="w",
                queues=None,
                limit=3,
                now=now,
                lease_until=now + timedelta(seconds=60),
            )
            a, b, c = await app.storage.jobs.claim(request)
            policy = RetryPolicy()
            done = Outcome.succeeded(exit_code=0)
            rng = random.Random(1)
            batch = [
                transitions.start(a, "w", now),
                transitions.start(b, "w", now),
                transitions.after_outcome(a, policy, done, worker_id="w", now=now, rng=rng),
                # c was never started: its end must not apply (it expects RUNNING).
                transitions.after_outcome(c, policy, done, worker_id="w", now=now, rng=rng),
                transitions.after_outcome(b, policy, done, worker_id="other", now=now, rng=rng),
            ]
            applied = await app.storage.jobs.apply(batch)
            return applied, [await app.jobs.get(job.id) for job in (a, b, c)]
        finally:
            await app.close()

    applied, (a, b, c) = asyncio.run(scenario())
    assert applied == [True, True, True, False, False]
    assert a.state is JobState.SUCCEEDED and a.attempts[0].started_at is not None
    assert a.attempts[0].stopped_at is not None and a.attempts[0].exit_code == 0
    assert b.state is JobState.RUNNING and b.attempts[0].started_at is not None
    assert c.state is JobState.STARTING and c.attempts[0].started_at is None
