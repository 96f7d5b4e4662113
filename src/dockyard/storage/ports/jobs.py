"""The jobs port: the hot path (insert, claim, transitions, leases) and the jobs' upkeep.

A lease (``worker_id``, ``lease_expires_at``) says which worker still runs a body for a job, and
until when. It usually ends with the transition that ends the attempt, but it may outlive the
job's state: a cancel keeps it, and so does an end decided while the body still runs (see
``domain/transitions.py``). Heartbeats therefore renew every lease the worker holds, whatever the
job's state, and :meth:`JobStore.end_leases` lets one go once the body has ended.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dockyard.domain.records import Job, JobId, NewJob
from dockyard.domain.states import JobState
from dockyard.domain.transitions import Transition

__all__ = ["ClaimRequest", "Heartbeat", "InsertedJob", "JobQuery", "JobStore", "LeaseEnd"]


@dataclass(frozen=True, slots=True, kw_only=True)
class InsertedJob:
    job: Job
    #: False when an earlier job with the same idempotency key was returned instead.
    created: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class JobQuery:
    states: frozenset[JobState] = frozenset()
    queue: str | None = None
    definition_name: str | None = None
    group_key: str | None = None
    limit: int = 100
    #: Only jobs submitted before the job with this id (newest first pagination).
    before: JobId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimRequest:
    """Move up to ``limit`` runnable jobs from ``queues`` (None: all) to STARTING for a worker.

    ``executors`` are the kinds the worker offers (None: every kind): a job is claimed only by a
    worker that offers its definition's kind, and waits RUNNABLE until one does. A job stored
    without a kind (its definition revision was not found at submit) is any worker's.

    ``starts_at_once`` are the kinds whose attempts the worker begins at once: their jobs go
    straight to RUNNING (``transitions.CLAIM_STARTED``) with their attempt started at ``now``
    (and the job's ``started_at`` set, if it is its first start), so that the worker writes no
    separate start. Jobs of other kinds (those that prepare, like an image pull) go to STARTING.
    """

    worker_id: str
    queues: tuple[str, ...] | None
    limit: int
    now: datetime
    lease_until: datetime
    executors: tuple[str, ...] | None = None
    starts_at_once: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    """A worker renews the lease of the jobs it runs (or only checks them, when ``lease_until``
    is None)."""

    worker_id: str
    job_ids: tuple[JobId, ...]
    now: datetime
    lease_until: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseEnd:
    """A worker's bodies for these jobs have ended: it lets go of their leases."""

    worker_id: str
    job_ids: tuple[JobId, ...]


class JobStore(Protocol):
    async def insert(self, jobs: Sequence[NewJob]) -> builtins.list[InsertedJob]:
        """Insert jobs as RUNNABLE, in one transaction; a job whose idempotency key exists
        returns the existing job instead. Each job stores the executor kind of its definition
        revision, which claims match against the kinds a worker offers."""
        ...

    async def get(self, job_id: JobId) -> Job | None:
        """The job with its attempts, read as of one moment."""
        ...

    async def select(self, query: JobQuery) -> builtins.list[Job]:
        """The jobs ``query`` asks for, newest first, each with its attempts."""
        ...

    async def claim(self, request: ClaimRequest) -> builtins.list[Job]:
        """Claim runnable jobs of the kinds the request offers, in priority then submission
        order, keeping groups one at a time; open each one's attempt (started, and the job
        RUNNING, for the kinds that start at once)."""
        ...

    async def apply(self, transitions: Sequence[Transition]) -> builtins.list[bool]:
        """Apply each transition with a guarded write; False where its guard did not hold."""
        ...

    async def apply_and_claim(
        self, transitions: Sequence[Transition], request: ClaimRequest
    ) -> tuple[builtins.list[bool], builtins.list[Job]]:
        """:meth:`apply` and :meth:`claim` in one transaction: a worker finishes jobs and takes
        the next ones in one round trip."""
        ...

    async def heartbeat(self, beat: Heartbeat) -> frozenset[JobId]:
        """Renew the leases the worker holds, whatever their jobs' states (a cancelled job's
        body may still be stopping); return the ids that are no longer active in this worker's
        hands (cancelled, ended or taken over), so that the worker stops their bodies."""
        ...

    async def end_leases(self, end: LeaseEnd) -> int:
        """Let go of the worker's leases of jobs that are no longer active (their bodies have
        ended); return how many were let go. A job still STARTING or RUNNING keeps its lease,
        so that the rescue still finds it when it expires."""
        ...

    async def expired_leases(self, now: datetime, limit: int) -> builtins.list[Job]:
        """Jobs in STARTING or RUNNING whose lease ended before ``now``."""
        ...

    async def next_runnable_at(
        self, queues: tuple[str, ...] | None, executors: tuple[str, ...] | None = None
    ) -> datetime | None:
        """When the earliest job that waits for its not-before time becomes runnable, among the
        jobs a claim from ``queues`` offering ``executors`` (None: all) could take."""
        ...

    async def prune_finished(self, before: datetime, limit: int) -> builtins.list[JobId]:
        """Delete up to ``limit`` jobs that finished before ``before``, oldest first, with their
        attempts; return their ids."""
        ...

    async def refresh_statistics(self) -> bool:
        """Refresh the query planner's statistics of the jobs when many rows changed since they
        were last gathered; return True when it did. Claims walk the right index only when the
        planner knows how many jobs wait (PostgreSQL's autovacuum may be off, or a minute late
        after a bulk submit)."""
        ...
