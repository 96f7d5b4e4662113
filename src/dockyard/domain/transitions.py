"""The job state machine: its edges and the named transitions. Nothing else changes a job's state.

A :class:`Transition` says which states the job must be in (``expected_from``), the state it moves
to and the fields that change with it. Storage applies it with one guarded write
(``UPDATE … WHERE id = ? AND state IN (…)``); when no row matches, the transition lost a race
(the job was cancelled, rescued or finished meanwhile) and is reported as not applied, never forced.

The claim is done by storage in bulk for speed; it uses :data:`CLAIM` (RUNNABLE → STARTING) so
that the edge is still defined here, or :data:`CLAIM_STARTED` (RUNNABLE → RUNNING) for a job whose
executor begins its attempt at once (nothing to prepare: an inline function, an HTTP call): such a
claim also starts the attempt, so a fast job is written twice, at its claim and at its end,
instead of three times (claim, :func:`start`, end). Its ``Job State Change`` events go RUNNABLE →
RUNNING.

**A lease outlives its job's state while the attempt's body runs** (docs/guarantees.md). A job's
``worker_id`` and ``lease_expires_at`` say which worker still runs a body for it, until when; they
are cleared by the transition that ends an attempt whose body has ended, and otherwise kept:

- a cancel never clears them: the worker that holds the lease stops the body, then lets the lease
  go (``JobStore.end_leases``); a dead worker's lease simply runs out;
- an end decided while the body still runs (an inline function past its timeout cannot be
  stopped) keeps them (``after_outcome(keep_lease=True)``), and the worker lets the lease go once
  the function has returned;
- a person's retry (:func:`requeue`) applies only while no live lease holds the job, so a new
  attempt never starts beside the old one's body.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from dockyard.domain.outcomes import Outcome, OutcomeKind
from dockyard.domain.records import Job, JobId
from dockyard.domain.retry import ExitAction, RetryPolicy, backoff_delay, matching_rule
from dockyard.domain.staging import OutputRecord
from dockyard.domain.states import ACTIVE_STATES, TERMINAL_STATES, JobState

__all__ = [
    "CLAIM",
    "CLAIM_STARTED",
    "EDGES",
    "AttemptEnd",
    "Edge",
    "Transition",
    "after_outcome",
    "applied",
    "cancel",
    "release",
    "requeue",
    "rescue",
    "start",
]

S = JobState

#: Every allowed move. CANCELLED is reachable from every state that is not terminal.
EDGES: Mapping[JobState, frozenset[JobState]] = {
    S.SUBMITTED: frozenset({S.PENDING, S.RUNNABLE, S.CANCELLED}),
    S.PENDING: frozenset({S.RUNNABLE, S.FAILED, S.CANCELLED}),
    S.RUNNABLE: frozenset({S.STARTING, S.RUNNING, S.CANCELLED}),
    S.STARTING: frozenset({S.RUNNING, S.RUNNABLE, S.FAILED, S.CANCELLED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.RUNNABLE, S.CANCELLED}),
    # Terminal states move only when a person asks for a retry (a dead-letter redrive).
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset({S.RUNNABLE}),
    S.CANCELLED: frozenset({S.RUNNABLE}),
}

NON_TERMINAL = frozenset(JobState) - TERMINAL_STATES


@dataclass(frozen=True, slots=True)
class Edge:
    expected_from: frozenset[JobState]
    to: JobState


CLAIM = Edge(frozenset({S.RUNNABLE}), S.STARTING)
#: The claim of a job whose executor starts at once: claimed and started in one write.
CLAIM_STARTED = Edge(frozenset({S.RUNNABLE}), S.RUNNING)


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptEnd:
    """Closes the job's current attempt in the same write as the transition, if the transition
    applies and the attempt is still open (an attempt is closed once). ``number`` is the attempt
    the caller read; storage closes the one that is current when the write applies, which is
    the same one unless a claim came between the read and a cancel.
    """

    number: int
    stopped_at: datetime
    exit_code: int | None
    reason: str | None
    status_reason: str | None
    counted: bool = True
    #: The container image that ran, as ``reference@digest``.
    image: str | None = None
    #: The output files uploaded after the attempt.
    outputs: tuple[OutputRecord, ...] = ()
    #: The attempt's body never began (handed back before it ran): a start its claim wrote is
    #: voided, and so is the job's when it was this attempt's.
    unstarted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """One guarded change of a job's state, plus the fields that change with it."""

    job_id: JobId
    expected_from: frozenset[JobState]
    to: JobState
    updates: Mapping[str, object] = field(default_factory=dict)
    reason: str | None = None
    #: Only apply while this worker holds the job (its lease was not taken over).
    expected_worker: str | None = None
    #: Only apply while the job's lease ends before this time (rescue of expired leases).
    lease_expired_before: datetime | None = None
    #: Only apply while no live lease holds the job at this time: it has none, or one that ended
    #: before it (a retry by request waits for the last attempt's body to end).
    no_live_lease_at: datetime | None = None
    attempt_end: AttemptEnd | None = None
    attempt_started_at: datetime | None = None

    def __post_init__(self) -> None:
        for state in self.expected_from:
            if self.to not in EDGES[state]:
                raise ValueError(f"no edge {state} -> {self.to}")


_LEASE_RELEASED: Mapping[str, object] = {"worker_id": None, "lease_expires_at": None}


def start(job: Job, worker_id: str, now: datetime) -> Transition:
    """The worker has prepared the attempt and the job now runs."""
    updates: dict[str, object] = {}
    if job.started_at is None:
        updates["started_at"] = now
    return Transition(
        job_id=job.id,
        expected_from=frozenset({S.STARTING}),
        to=S.RUNNING,
        updates=updates,
        expected_worker=worker_id,
        attempt_started_at=now,
    )


def after_outcome(
    job: Job,
    policy: RetryPolicy,
    outcome: Outcome,
    *,
    worker_id: str | None,
    now: datetime,
    rng: random.Random,
    lease_expired_before: datetime | None = None,
    keep_lease: bool = False,
) -> Transition:
    """Map an attempt's outcome to the job's next state: done, retried later, failed or cancelled.

    This is the one place where outcomes become states (DESIGN.md §4). Timeouts and cancellations
    are never retried; other failures follow the ``evaluate_on_exit`` rules, then the attempts left.

    ``keep_lease``: the outcome is decided but the attempt's body still runs (an inline function
    that cannot be stopped), so the end keeps ``worker_id`` and ``lease_expires_at`` for the worker
    to let go of once the body has ended. Only an end that is final may keep it: a retry would
    make the job claimable beside the body, so it raises ValueError (the worker waits for the body
    and then ends the attempt as usual).
    """
    end = AttemptEnd(
        number=job.attempt_count,
        stopped_at=now,
        exit_code=outcome.exit_code,
        reason=outcome.reason,
        status_reason=outcome.status_reason,
        image=outcome.image,
        outputs=outcome.outputs,
    )

    def finish(to: JobState, updates: Mapping[str, object]) -> Transition:
        return Transition(
            job_id=job.id,
            # A job still STARTING can be rescued or cancelled, but only a RUNNING one succeeds.
            expected_from=frozenset(state for state in ACTIVE_STATES if to in EDGES[state]),
            to=to,
            updates=updates,
            reason=outcome.status_reason,
            expected_worker=worker_id,
            lease_expired_before=lease_expired_before,
            attempt_end=end,
        )

    lease = {} if keep_lease else _LEASE_RELEASED
    done: dict[str, object] = {**lease, "stopped_at": now, "exit_code": outcome.exit_code}
    match outcome.kind:
        case OutcomeKind.SUCCEEDED:
            return finish(S.SUCCEEDED, {**done, "result": outcome.result})
        case OutcomeKind.CANCELLED:
            return finish(S.CANCELLED, done)
        case OutcomeKind.TIMED_OUT:
            return finish(S.FAILED, done)
        case OutcomeKind.FAILED | OutcomeKind.LOST:
            if not _should_retry(job, policy, outcome):
                return finish(S.FAILED, done)
            if keep_lease:
                raise ValueError(f"job {job.id} would be retried while its body still runs")
            delay = backoff_delay(policy, job.attempts_used, rng)
            if outcome.retry_after is not None:  # asked for, within the backoff's bounds
                delay = min(max(outcome.retry_after, 0.0), policy.backoff_max)
            return finish(
                S.RUNNABLE,
                {
                    **_LEASE_RELEASED,
                    "not_before": now + timedelta(seconds=delay),
                    "exit_code": outcome.exit_code,
                },
            )


def _should_retry(job: Job, policy: RetryPolicy, outcome: Outcome) -> bool:
    rule = matching_rule(
        policy,
        exit_code=outcome.exit_code,
        reason=outcome.reason or "",
        status_reason=outcome.status_reason or "",
    )
    if rule is not None and rule.action is ExitAction.EXIT:
        return False
    if rule is None and not outcome.retryable:
        return False
    return job.attempts_used < job.max_attempts


def rescue(job: Job, policy: RetryPolicy, *, now: datetime, rng: random.Random) -> Transition:
    """A job whose lease expired: its worker vanished, so the attempt is recorded as lost."""
    lost = Outcome(
        kind=OutcomeKind.LOST,
        reason="Lost",
        status_reason=f"Worker {job.worker_id} stopped renewing its lease",
    )
    return after_outcome(
        job, policy, lost, worker_id=job.worker_id, now=now, rng=rng, lease_expired_before=now
    )


def release(job: Job, worker_id: str, now: datetime, *, unstarted: bool = False) -> Transition:
    """Hand a running job back at shutdown: runnable at once, and the attempt does not count.
    ``unstarted``: its body never began (a claim handed back before its start), so the attempt
    records no start, even one its claim wrote (:data:`CLAIM_STARTED`)."""
    return Transition(
        job_id=job.id,
        expected_from=ACTIVE_STATES,
        to=S.RUNNABLE,
        updates={**_LEASE_RELEASED, "attempts_used": job.attempts_used - 1, "not_before": now},
        reason="Handed back by a worker that shut down",
        expected_worker=worker_id,
        attempt_end=AttemptEnd(
            number=job.attempt_count,
            stopped_at=now,
            exit_code=None,
            reason="Released",
            status_reason="Worker shut down before the attempt ended",
            counted=False,
            unstarted=unstarted,
        ),
    )


def cancel(job: Job, now: datetime, reason: str | None = None) -> Transition:
    """Cancel from any non-terminal state; a running attempt is then stopped by its worker.

    The lease stays: the worker that holds it stops the body and then lets it go, so that a retry
    by request cannot start a new attempt beside a body that is still stopping.
    """
    if job.state in TERMINAL_STATES:
        raise ValueError(f"job {job.id} is already {job.state}")
    reason = reason or "Cancelled by request"
    # Whatever attempt is open when the cancel applies is closed with it, even one a worker
    # claimed after ``job`` was read (storage closes the job's current attempt, if still open).
    end = AttemptEnd(
        number=job.attempt_count,
        stopped_at=now,
        exit_code=None,
        reason="Cancelled",
        status_reason=reason,
    )
    return Transition(
        job_id=job.id,
        expected_from=NON_TERMINAL,
        to=S.CANCELLED,
        updates={"stopped_at": now},
        reason=reason,
        attempt_end=end,
    )


def requeue(job: Job, now: datetime) -> Transition:
    """A person retries a FAILED or CANCELLED job: it runs again with its attempts renewed.

    Guarded by the lease: while the last attempt's body still runs (a cancelled job whose worker
    is stopping it, an inline function past its timeout), the job holds a live lease and the
    retry does not apply; once the lease was let go or has run out, it does.
    """
    return Transition(
        job_id=job.id,
        expected_from=frozenset({S.FAILED, S.CANCELLED}),
        to=S.RUNNABLE,
        updates={
            **_LEASE_RELEASED,
            "attempts_used": 0,
            "not_before": now,
            "stopped_at": None,
            "exit_code": None,
        },
        reason="Retried by request",
        no_live_lease_at=now,
    )


def applied(job: Job, transition: Transition) -> Job:
    """``job`` as ``transition`` leaves it: what storage holds right after the write applied.

    Lets a caller answer with the job as its own request changed it, not as a worker may have
    changed it a moment later.
    """
    attempts = job.attempts
    end = transition.attempt_end
    if end is not None:
        attempts = tuple(
            replace(
                attempt,
                stopped_at=end.stopped_at,
                exit_code=end.exit_code,
                reason=end.reason,
                status_reason=end.status_reason,
                counted=end.counted,
            )
            if attempt.number == end.number and attempt.stopped_at is None
            else attempt
            for attempt in attempts
        )
    changed = replace(job, state=transition.to, status_reason=transition.reason, attempts=attempts)
    return replace(changed, **transition.updates)  # type: ignore[arg-type]
