"""The maintenance service on each backend: one leader, rescues guarded by the lease, pruning.

Times come from a clock the test moves, so "eight days later" takes no time.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path

import pytest

import dockyard
from dockyard import JobState, NotFoundError, ValidationError
from dockyard.app import Dockyard
from dockyard.domain import transitions
from dockyard.domain.retry import RetryPolicy
from dockyard.domain.tokens import AuditEntry, Role
from dockyard.runtime import Maintenance, MaintenanceConfig
from dockyard.settings import Settings
from dockyard.storage.ports import AuditQuery, ClaimRequest, Heartbeat
from tests.conftest import FakeClock, register_process, wait_until
from tests.test_reliability import kill_group


def maintenance(app: Dockyard, *, retention_days: float = 7, batch_size: int = 500) -> Maintenance:
    config = MaintenanceConfig(retention=timedelta(days=retention_days), batch_size=batch_size)
    return Maintenance(storage=app.storage, logs=app.log_store, clock=app.clock, config=config)


def test_finished_jobs_are_pruned_after_the_retention_with_their_logs(
    settings: Settings, start_worker
) -> None:
    clock = FakeClock()
    with dockyard.DirectClient(settings, clock=clock) as client:
        register_process(client, "say", "echo", "hello")
        start_worker(concurrency=4, clock=clock)
        old = [client.submit("say") for _ in range(5)]
        for job in old:
            assert client.wait(job.id, timeout=30).state is JobState.SUCCEEDED
        assert client.logs(old[0].id) == "hello\n"

        clock.advance(timedelta(days=6).total_seconds())
        recent = client.submit("say")
        assert client.wait(recent.id, timeout=30).state is JobState.SUCCEEDED
        waiting = client.submit_requests(
            [dockyard.SubmitRequest(definition="say", not_before=clock.now() + timedelta(days=30))]
        )[0].job
        clock.advance(timedelta(days=1, seconds=1).total_seconds())

        async def prune() -> int:
            app = await Dockyard.open(settings, clock=clock)
            try:
                # Batches of 2: five old jobs take three transactions.
                return await maintenance(app, batch_size=2).prune()
            finally:
                await app.close()

        assert asyncio.run(prune()) == 5
        for job in old:
            with pytest.raises(NotFoundError):
                client.get(job.id)
            assert not (settings.log_dir / job.id).exists()
        # Finished within the retention, or not finished at all: kept.
        assert client.get(recent.id).state is JobState.SUCCEEDED
        assert client.logs(recent.id) == "hello\n"
        assert client.get(waiting.id).state is JobState.RUNNABLE
        assert {job.id for job in client.list()} == {recent.id, waiting.id}


def test_audit_entries_are_pruned_after_the_retention(settings: Settings) -> None:
    clock = FakeClock()

    async def scenario() -> list[str | None]:
        app = await Dockyard.open(settings, clock=clock)
        try:
            now = clock.now()
            ages = {f"old-{n}": 7 + n + 0.5 for n in range(5)} | {"recent": 6.5}
            for target, days in ages.items():
                await app.storage.audit.record(
                    AuditEntry(
                        at=now - timedelta(days=days),
                        token_id="t-1",
                        token_name="ci",
                        role=Role.OPERATOR,
                        operation="jobs.cancel",
                        target=target,
                    )
                )
            # Batches of 2: five old entries take three.
            await maintenance(app, batch_size=2).run_once()
            return [entry.target for entry in await app.storage.audit.entries(AuditQuery())]
        finally:
            await app.close()

    assert asyncio.run(scenario()) == ["recent"]


def test_a_rescue_loses_to_a_lease_renewed_meanwhile(settings: Settings) -> None:
    """The rescue's write is guarded by the lease it read: a worker that renewed keeps its job."""
    clock = FakeClock()

    async def scenario() -> tuple[bool, bool, JobState, JobState]:
        app = await Dockyard.open(settings, clock=clock)
        try:
            await app.definitions.register({"executor": "process", "command": ["true"]}, "x")
            submitted = await app.jobs.submit_many(
                [dockyard.SubmitRequest(definition="x") for _ in range(2)]
            )
            now = clock.now()
            claimed = await app.storage.jobs.claim(
                ClaimRequest(
                    worker_id="w1",
                    queues=None,
                    limit=2,
                    now=now,
                    lease_until=now + timedelta(seconds=10),
                )
            )
            assert len(claimed) == 2
            clock.advance(11)
            expired = await app.storage.jobs.expired_leases(clock.now(), limit=10)
            assert {job.id for job in expired} == {s.job.id for s in submitted}
            renewed, abandoned = sorted(expired, key=lambda job: job.id != claimed[0].id)
            # Between the read and the rescue, w1 renews one lease.
            await app.storage.jobs.heartbeat(
                Heartbeat(
                    worker_id="w1",
                    job_ids=(renewed.id,),
                    now=clock.now(),
                    lease_until=clock.now() + timedelta(seconds=10),
                )
            )
            rescues = [
                transitions.rescue(
                    job, RetryPolicy(attempts=2), now=clock.now(), rng=random.Random(7)
                )
                for job in (renewed, abandoned)
            ]
            kept, rescued = await app.storage.jobs.apply(rescues)
            states = [(await app.jobs.get(job.id)).state for job in (renewed, abandoned)]
            return kept, rescued, states[0], states[1]
        finally:
            await app.close()

    kept, rescued, renewed_state, abandoned_state = asyncio.run(scenario())
    assert (kept, rescued) == (False, True)
    assert renewed_state is JobState.STARTING
    assert abandoned_state is JobState.FAILED  # its only attempt was lost


def test_one_leader_at_a_time_and_the_next_takes_over(settings: Settings) -> None:
    async def scenario() -> list[bool]:
        first = await Dockyard.open(settings)
        second = await Dockyard.open(settings)
        try:
            seen = [await first.storage.leadership.try_lead("maintenance")]
            seen.append(await second.storage.leadership.try_lead("maintenance"))
            seen.append(await first.storage.leadership.try_lead("maintenance"))  # still holds it
            await first.close()
            # The server releases the lock once it has seen the session end: within moments.
            async with asyncio.timeout(10):
                while not await second.storage.leadership.try_lead("maintenance"):
                    await asyncio.sleep(0.05)
            seen.append(await second.storage.leadership.try_lead("maintenance"))
            return seen
        finally:
            await second.close()

    assert asyncio.run(scenario()) == [True, False, True, True]


def test_a_killed_leader_is_replaced_by_another_worker(
    settings: Settings, spawn_worker, tmp_path: Path
) -> None:
    """Every worker runs the maintenance service; when the leading worker dies, another leads
    and rescues the job the dead one held."""
    with dockyard.DirectClient(settings) as client:
        marker, pid_file = tmp_path / "started", tmp_path / "job.pid"
        register_process(
            client,
            "hang",
            "sh",
            "-c",
            f'[ "$DOCKYARD_JOB_ATTEMPT" = 2 ] || {{ echo $$ > {pid_file}; touch {marker};'
            " exec sleep 60; }",
            retry={"attempts": 2, "backoff_base": 0},
        )
        leader = spawn_worker("--lease", "2", "--concurrency", "1")
        wait_until(lambda: "took the maintenance leadership" in leader.output(), what="a leader")
        follower = spawn_worker("--lease", "2", "--concurrency", "1", "--queues", "other")
        wait_until(lambda: len(client.workers()) == 2, what="two workers")
        job = client.submit("hang")
        wait_until(marker.exists, what="the job to start on the leader")
        assert client.get(job.id).worker_id == leader_id(client, exclude_queue="other")
        leader.kill()
        kill_group(pid_file)  # the crash leaves the job's own process group behind
        wait_until(
            lambda: "took the maintenance leadership" in follower.output(),
            what="the follower to take over",
        )
        # The follower takes no jobs of this queue: the job comes back only through the rescue.
        wait_until(lambda: client.get(job.id).state is JobState.RUNNABLE, what="the rescue")
        assert [a.reason for a in client.get(job.id).attempts] == ["Lost"]


def leader_id(client: dockyard.Client, *, exclude_queue: str) -> str:
    (worker,) = [w for w in client.workers() if w.queues != (exclude_queue,)]
    return worker.id


def test_retention_is_a_setting_with_a_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert Settings.resolve(home=home, environ={}).retention_days == 7
    assert (
        Settings.resolve(home=home, environ={"DOCKYARD_RETENTION_DAYS": "0.5"}).retention_days
        == 0.5
    )
    home.mkdir()
    (home / "config.toml").write_text("retention_days = 30\n")
    assert Settings.resolve(home=home, environ={}).retention_days == 30
    assert Settings.resolve(home=home, retention_days=1, environ={}).retention_days == 1
    for bad, rule in (("0", "more than 0"), ("a week", "number of days")):
        with pytest.raises(ValidationError, match=rule) as raised:
            Settings.resolve(home=home, environ={"DOCKYARD_RETENTION_DAYS": bad})
        assert raised.value.field == "retention_days"
    (home / "config.toml").write_text('retention_days = "7"\n')
    with pytest.raises(ValidationError, match="wrong type"):
        Settings.resolve(home=home, environ={})
