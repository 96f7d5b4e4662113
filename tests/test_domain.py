"""The pure domain: definition documents, retry policy, transitions. No I/O."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dockyard.domain import transitions
from dockyard.domain.definitions import (
    COMMON_FIELDS,
    definition_document,
    parse_definition,
    parse_definition_ref,
)
from dockyard.domain.jobs import new_job_id
from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import Attempt, Job, JobId, Overrides
from dockyard.domain.retry import ExitAction, ExitRule, RetryPolicy, backoff_delay
from dockyard.domain.specs.registry import executor_kinds
from dockyard.domain.states import JobState
from dockyard.errors import ValidationError

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def job(**changes: object) -> Job:
    base = Job(
        id=JobId("j1"),
        name="j",
        definition_name="d",
        definition_revision=1,
        state=JobState.RUNNING,
        status_reason=None,
        queue="default",
        group_key=None,
        priority=0,
        idempotency_key=None,
        payload=None,
        overrides=Overrides(),
        parameters={},
        max_attempts=3,
        attempt_count=1,
        attempts_used=1,
        created_at=NOW,
        not_before=NOW,
        worker_id="w1",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# -- definition documents -----------------------------------------------------------------------


def test_full_document_round_trips() -> None:
    document = {
        "executor": "process",
        "command": ["update-cards", "--full"],
        "environment": {"MODE": "nightly"},
        "resources": {"vcpus": 2, "memory_mib": 16384},
        "timeout": 3600,
        "retry": {
            "attempts": 3,
            "backoff_base": 0,
            "evaluate_on_exit": [
                {"action": "retry", "on_exit_code": "3"},
                {"action": "EXIT", "on_reason": "*"},
            ],
        },
        "queue": "nightly",
        "log_max_bytes": 200_000,
        "parameters": {"set": "all"},
    }
    spec = parse_definition(document)
    assert spec.retry.attempts == 3
    assert spec.retry.evaluate_on_exit[0].action is ExitAction.RETRY  # case-insensitive, like AWS
    assert parse_definition({**definition_document("x", spec), "name": "x"}) == spec


@pytest.mark.parametrize(
    ("document", "field", "rule"),
    [
        ({"executor": "lambda-ish", "command": ["x"]}, "executor", "must be one of"),
        ({"executor": "process", "command": []}, "command", "non-empty"),
        ({"executor": "process", "command": [""]}, "command", "empty string"),
        ({"executor": "process"}, "command", "non-empty"),
        (
            {"executor": "process", "command": ["x"], "retry": {"attempts": 11}},
            "retry.attempts",
            "1 to 10",
        ),
        (
            {"executor": "process", "command": ["x"], "retry": {"attempts": 0}},
            "retry.attempts",
            "1 to 10",
        ),
        ({"executor": "process", "command": ["x"], "timeout": -1}, "timeout", "greater than 0"),
        ({"executor": "process", "command": ["x"], "timeout": "soon"}, "timeout", "number"),
        (
            {
                "executor": "process",
                "command": ["x"],
                "retry": {"evaluate_on_exit": [{"action": "EXIT", "on_exit_code": "1*2"}]},
            },
            "retry.evaluate_on_exit[0].on_exit_code",
            "glob",
        ),
        (
            {
                "executor": "process",
                "command": ["x"],
                "retry": {"evaluate_on_exit": [{"action": "EXIT", "on_reason": "a*b*"}]},
            },
            "retry.evaluate_on_exit[0].on_reason",
            "glob",
        ),
        (
            {
                "executor": "process",
                "command": ["x"],
                "retry": {"evaluate_on_exit": [{"action": "MAYBE"}]},
            },
            "retry.evaluate_on_exit[0].action",
            "RETRY or EXIT",
        ),
        ({"executor": "process", "command": ["x"], "function": "m:f"}, "function", "not a field"),
        (
            {"executor": "python", "function": "not a function"},
            "function",
            "package.module:function",
        ),
        (
            {"executor": "process", "command": ["x"], "environment": {"1BAD": "x"}},
            "environment.1BAD",
            "name",
        ),
        ({"executor": "process", "command": ["x"], "queue": "bad queue"}, "queue", "letters"),
        ({"executor": "process", "command": ["x"], "log_max_bytes": 10}, "log_max_bytes", "1024"),
        (
            {"executor": "process", "command": ["a", "b"], "shell": True},
            "command",
            "single shell line",
        ),
    ],
)
def test_invalid_documents_name_the_field_and_rule(
    document: dict[str, object], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_definition(document)
    assert caught.value.field == field
    assert rule in caught.value.rule


def test_every_executor_kind_adds_fields_of_its_own_and_lists_in_the_executor_message() -> None:
    for kind in executor_kinds():
        assert kind.fields and not COMMON_FIELDS & kind.fields.keys(), kind.name
    with pytest.raises(ValidationError) as caught:
        parse_definition({"executor": ["process"]})
    assert (caught.value.field, caught.value.rule) == (
        "executor",
        "must be one of process, python, docker, http, lambda",
    )


def test_definition_references() -> None:
    assert parse_definition_ref("nightly") == ("nightly", None)
    assert parse_definition_ref("nightly:3") == ("nightly", 3)
    for bad in ("nightly:0", "nightly:x", "bad name:1", ""):
        with pytest.raises(ValidationError):
            parse_definition_ref(bad)


# -- retry policy -------------------------------------------------------------------------------


def test_backoff_doubles_with_bounded_jitter_and_caps() -> None:
    policy = RetryPolicy(attempts=10, backoff_base=60, backoff_max=24 * 3600)
    rng = random.Random(7)
    for failures, expected in ((1, 60), (2, 120), (3, 240), (8, 60 * 128)):
        delay = backoff_delay(policy, failures, rng)
        assert expected <= delay <= expected * 1.1
    assert backoff_delay(policy, 20, rng) == 24 * 3600
    assert backoff_delay(RetryPolicy(backoff_base=0), 3, rng) == 0


def test_exit_rules_first_match_wins_and_globs_are_prefixes() -> None:
    policy = RetryPolicy(
        attempts=3,
        evaluate_on_exit=(
            ExitRule(action=ExitAction.RETRY, on_exit_code="13*"),
            ExitRule(action=ExitAction.EXIT, on_exit_code="1*"),
        ),
    )
    outcomes = {code: Outcome.exited(code) for code in (137, 1, 2)}

    def next_state(code: int) -> JobState:
        return transitions.after_outcome(
            job(), policy, outcomes[code], worker_id="w1", now=NOW, rng=random.Random(1)
        ).to

    assert next_state(137) is JobState.RUNNABLE  # first rule
    assert next_state(1) is JobState.FAILED  # second rule
    assert next_state(2) is JobState.RUNNABLE  # no match: retry while attempts remain


# -- transitions --------------------------------------------------------------------------------


def test_failure_with_attempts_left_goes_back_to_runnable_after_the_backoff() -> None:
    policy = RetryPolicy(attempts=3, backoff_base=10)
    transition = transitions.after_outcome(
        job(), policy, Outcome.exited(2), worker_id="w1", now=NOW, rng=random.Random(1)
    )
    assert transition.to is JobState.RUNNABLE
    assert transition.expected_worker == "w1"
    not_before = transition.updates["not_before"]
    assert isinstance(not_before, datetime)
    assert NOW + timedelta(seconds=10) <= not_before <= NOW + timedelta(seconds=11)
    assert transition.attempt_end is not None and transition.attempt_end.exit_code == 2


def test_last_attempt_fails_the_job() -> None:
    transition = transitions.after_outcome(
        job(attempts_used=3),
        RetryPolicy(attempts=3),
        Outcome.exited(1),
        worker_id="w1",
        now=NOW,
        rng=random.Random(),
    )
    assert transition.to is JobState.FAILED
    assert transition.reason == "Exited with code 1"


@pytest.mark.parametrize("outcome", [Outcome.timed_out(5), Outcome.cancelled()])
def test_timeouts_and_cancels_never_retry(outcome: Outcome) -> None:
    transition = transitions.after_outcome(
        job(), RetryPolicy(attempts=10), outcome, worker_id="w1", now=NOW, rng=random.Random()
    )
    assert transition.to in (JobState.FAILED, JobState.CANCELLED)


def test_only_a_running_job_can_succeed() -> None:
    transition = transitions.after_outcome(
        job(),
        RetryPolicy(),
        Outcome.succeeded(result={"n": 1}),
        worker_id="w1",
        now=NOW,
        rng=random.Random(),
    )
    assert transition.expected_from == frozenset({JobState.RUNNING})
    assert transition.updates["result"] == {"n": 1}


def test_rescue_records_a_lost_attempt_guarded_by_the_lease() -> None:
    transition = transitions.rescue(
        job(), RetryPolicy(attempts=3, backoff_base=0), now=NOW, rng=random.Random()
    )
    assert transition.to is JobState.RUNNABLE
    assert transition.lease_expired_before == NOW
    assert transition.attempt_end is not None and transition.attempt_end.reason == "Lost"


def test_release_does_not_count_the_attempt() -> None:
    transition = transitions.release(job(attempts_used=2), "w1", NOW)
    assert transition.to is JobState.RUNNABLE
    assert transition.updates["attempts_used"] == 1
    assert transition.attempt_end is not None and not transition.attempt_end.counted


def test_cancel_and_requeue_edges() -> None:
    assert transitions.cancel(job(state=JobState.RUNNABLE), NOW).to is JobState.CANCELLED
    with pytest.raises(ValueError, match="already"):
        transitions.cancel(job(state=JobState.SUCCEEDED), NOW)
    requeued = transitions.requeue(job(state=JobState.FAILED), NOW)
    assert requeued.updates["attempts_used"] == 0
    with pytest.raises(ValueError, match="no edge"):
        transitions.Transition(
            job_id=JobId("j"), expected_from=frozenset({JobState.SUCCEEDED}), to=JobState.RUNNING
        )


def test_every_state_is_in_the_edge_table_and_cancel_reaches_all_unfinished() -> None:
    assert set(transitions.EDGES) == set(JobState)
    for state in transitions.NON_TERMINAL:
        assert JobState.CANCELLED in transitions.EDGES[state]


def test_job_ids_are_uuid7_and_sort_by_creation_time() -> None:
    start = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    ids = [new_job_id(start + timedelta(milliseconds=n)) for n in range(50)]
    parsed = [uuid.UUID(job_id) for job_id in ids]
    assert {(u.version, u.variant) for u in parsed} == {(7, uuid.RFC_4122)}
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert parsed[0].int >> 80 == int(start.timestamp() * 1000)
    # Within one millisecond they are still unique (74 random bits).
    assert len({new_job_id(start) for _ in range(1000)}) == 1000


def test_applied_shows_the_job_as_a_cancel_leaves_it() -> None:
    running = job(attempts=(Attempt(number=1, worker_id="w1", started_at=NOW),))
    cancelled = transitions.applied(running, transitions.cancel(running, NOW, "no longer needed"))
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.status_reason == "no longer needed"
    # The lease stays with the worker until it has stopped the body (docs/guarantees.md).
    assert (cancelled.worker_id, cancelled.lease_expires_at, cancelled.stopped_at) == (
        running.worker_id,
        running.lease_expires_at,
        NOW,
    )
    assert cancelled.worker_id == "w1"
    (attempt,) = cancelled.attempts
    assert (attempt.reason, attempt.stopped_at) == ("Cancelled", NOW)
