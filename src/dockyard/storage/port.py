"""The storage port: verbs with small frozen parameter objects (CONVENTIONS.md 4).

Each backend implements :class:`Storage` in its own folder with its own SQL, migrations and claim
strategy; the runtime sees only these verbs and :class:`Capabilities`, never a dialect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from dockyard.domain.events import Event
from dockyard.domain.records import Definition, DefinitionSpec, Job, JobId, NewJob
from dockyard.domain.rules import Invocation, InvocationState, Rule
from dockyard.domain.scheduling import Schedule
from dockyard.domain.states import DefinitionStatus, JobState
from dockyard.domain.tokens import Token
from dockyard.domain.transitions import Transition

__all__ = [
    "Capabilities",
    "ClaimRequest",
    "Fire",
    "FireResult",
    "Heartbeat",
    "InsertedJob",
    "InvocationUpdate",
    "JobQuery",
    "NewInvocation",
    "QueueInfo",
    "Storage",
    "StoredEvent",
    "WorkerInfo",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a backend can do, so the runtime can choose without naming the backend."""

    #: Several processes on several hosts may share the store.
    multi_host: bool
    #: Other processes' writes wake :meth:`Storage.wait_for_change` without polling the jobs table.
    cross_process_notify: bool


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
    """Move up to ``limit`` runnable jobs from ``queues`` (None: all) to STARTING for a worker."""

    worker_id: str
    queues: tuple[str, ...] | None
    limit: int
    now: datetime
    lease_until: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    """A worker renews the lease of the jobs it runs (or only checks them, when ``lease_until`` is None)."""

    worker_id: str
    job_ids: tuple[JobId, ...]
    now: datetime
    lease_until: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    id: str
    hostname: str
    pid: int
    queues: tuple[str, ...] | None
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None = None
    #: Jobs the worker holds now (filled by :meth:`Storage.list_workers`).
    running: tuple[JobId, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueInfo:
    name: str
    paused: bool
    #: Jobs per state; states with no job are left out.
    counts: Mapping[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Fire:
    """One scheduler round of one schedule: move it on, and submit the jobs of its fires.

    Applies only while the schedule's ``next_fire_at`` is still ``expected_next`` (another
    scheduler, or an update, did not move it meanwhile).
    """

    schedule: str
    expected_next: datetime
    next_fire_at: datetime | None
    jobs: Sequence[NewJob] = ()
    #: The latest fire time of this round (None when every due fire was skipped).
    fired_at: datetime | None = None
    error: str | None = None
    #: Delete the schedule (nothing left to fire and ``delete_after_completion``).
    delete: bool = False
    #: ``Schedule Fired`` events, put on the bus with the jobs (when a rule is enabled).
    events: Sequence[Event] = ()
    now: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class FireResult:
    applied: bool
    jobs: tuple[InsertedJob, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvent:
    """An event on the bus: its envelope and its place in arrival order."""

    seq: int
    envelope: Mapping[str, Any]
    received_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class NewInvocation:
    """A target to invoke for an event a rule matched."""

    id: str
    rule: str
    target: str
    event: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class InvocationUpdate:
    """How one try of a PENDING invocation ended."""

    id: str
    state: InvocationState
    attempts: int
    next_attempt_at: datetime | None
    result: str | None = None
    error: str | None = None
    now: datetime


class Storage(Protocol):
    """Everything Dockyard keeps. All verbs are coroutines; each is one transaction."""

    capabilities: Capabilities

    async def migrate(self) -> list[str]:
        """Apply the migrations not applied yet; return their names."""
        ...

    async def close(self) -> None: ...

    async def insert_definition(self, name: str, spec: DefinitionSpec, now: datetime) -> Definition:
        """Store ``spec`` as the next revision of ``name`` (1 for a new name)."""
        ...

    async def get_definition(self, name: str, revision: int | None) -> Definition | None:
        """A fixed revision, or the latest ACTIVE one when ``revision`` is None."""
        ...

    async def list_definitions(self, name: str | None = None) -> list[Definition]:
        """All revisions of ``name``, or the latest revision of every name."""
        ...

    async def set_definition_status(
        self, name: str, revision: int, status: DefinitionStatus
    ) -> Definition | None: ...

    async def insert_jobs(self, jobs: Sequence[NewJob]) -> list[InsertedJob]:
        """Insert jobs as RUNNABLE; a job whose idempotency key exists returns the existing job."""
        ...

    async def get_job(self, job_id: JobId) -> Job | None:
        """The job with its attempts."""
        ...

    async def list_jobs(self, query: JobQuery) -> list[Job]:
        """Newest first, each with its attempts."""
        ...

    async def claim(self, request: ClaimRequest) -> list[Job]:
        """Claim runnable jobs in priority then submission order, keeping groups one at a time."""
        ...

    async def apply(self, transitions: Sequence[Transition]) -> list[bool]:
        """Apply each transition with a guarded write; False where its guard did not hold."""
        ...

    async def apply_and_claim(
        self, transitions: Sequence[Transition], request: ClaimRequest
    ) -> tuple[list[bool], list[Job]]:
        """:meth:`apply` and :meth:`claim` in one transaction: a worker finishes jobs and takes
        the next ones in one round trip."""
        ...

    async def heartbeat(self, beat: Heartbeat) -> frozenset[JobId]:
        """Renew leases; return the ids the worker no longer holds (cancelled or taken over)."""
        ...

    async def expired_leases(self, now: datetime, limit: int) -> list[Job]:
        """Jobs in STARTING or RUNNING whose lease ended before ``now``."""
        ...

    async def next_runnable_at(self, queues: tuple[str, ...] | None) -> datetime | None:
        """When the earliest job that waits for its not-before time becomes runnable."""
        ...

    async def prune_finished(self, before: datetime, limit: int) -> list[JobId]:
        """Delete up to ``limit`` jobs that finished before ``before``, oldest first, with their
        attempts; return their ids."""
        ...

    async def refresh_statistics(self) -> bool:
        """Refresh the query planner's statistics of the jobs when many rows changed since they
        were last gathered; return True when it did. Claims walk the right index only when the
        planner knows how many jobs wait (PostgreSQL's autovacuum may be off, or a minute late
        after a bulk submit)."""
        ...

    # -- schedules --

    async def insert_schedule(self, schedule: Schedule) -> bool:
        """Store a new schedule; False when the name is taken."""
        ...

    async def get_schedule(self, name: str) -> Schedule | None: ...

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        ...

    async def replace_schedule(self, schedule: Schedule, expected_next: datetime | None) -> bool:
        """Store ``schedule`` over the one of its name (its spec, state, ``next_fire_at`` and
        ``last_error``) if that one's ``next_fire_at`` is still ``expected_next``; False when
        there is none or a fire moved it meanwhile."""
        ...

    async def delete_schedule(self, name: str) -> bool: ...

    async def due_schedules(self, now: datetime, limit: int) -> list[Schedule]:
        """Enabled schedules whose ``next_fire_at`` is at or before ``now``, earliest first."""
        ...

    async def next_fire_at(self) -> datetime | None:
        """The earliest ``next_fire_at`` of an enabled schedule."""
        ...

    async def record_fires(self, fires: Sequence[Fire]) -> list[FireResult]:
        """Apply every fire in one transaction: each schedule moved on (if still as expected)
        and its jobs inserted, idempotency keys deduplicating."""
        ...

    # -- events and rules

    async def insert_events(self, events: Sequence[Event], now: datetime) -> int:
        """Put events on the bus, in one transaction; return how many were kept.

        The bus keeps events only while some rule is enabled (with none, nothing reads them):
        Dockyard's own events, written by the database with the change they announce, follow the
        same rule.
        """
        ...

    async def list_events(self, limit: int, source: str | None = None) -> list[StoredEvent]:
        """The newest events first."""
        ...

    async def unrouted_events(self, limit: int) -> list[StoredEvent]:
        """Events no rules leader has matched yet, oldest first."""
        ...

    async def route_events(
        self, seqs: Sequence[int], invocations: Sequence[NewInvocation], now: datetime
    ) -> int:
        """In one transaction: record the invocations (one per rule, target and event: a
        repeat is dropped) and mark the events routed; return the invocations recorded."""
        ...

    async def prune_events(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` routed events received before ``before`` (invocations keep
        their copy), and up to ``limit`` invocations DELIVERED before it; return the larger count
        (a full batch: more may be left)."""
        ...

    async def insert_rule(self, rule: Rule) -> bool:
        """False when a rule of that name exists."""
        ...

    async def get_rule(self, name: str) -> Rule | None: ...

    async def list_rules(self, enabled_only: bool = False) -> list[Rule]: ...

    async def replace_rule(self, rule: Rule) -> bool:
        """Replace the spec and state of an existing rule; False when there is none."""
        ...

    async def delete_rule(self, name: str) -> bool:
        """Delete the rule and its invocations; False when there was none."""
        ...

    async def due_invocations(self, now: datetime, limit: int) -> list[Invocation]:
        """PENDING invocations whose next try has come, earliest first."""
        ...

    async def next_invocation_at(self) -> datetime | None: ...

    async def update_invocations(self, updates: Sequence[InvocationUpdate]) -> None:
        """Record how tries ended (only invocations still PENDING change)."""
        ...

    async def list_invocations(
        self, rule: str, state: InvocationState | None, limit: int
    ) -> list[Invocation]:
        """A rule's invocations, newest first."""
        ...

    async def retry_invocations(self, rule: str, ids: Sequence[str] | None, now: datetime) -> int:
        """Put DEAD invocations of ``rule`` (those of ``ids``, or all) back to PENDING."""
        ...

    async def try_lead(self, role: str) -> bool:
        """Take or keep the leadership of ``role`` among every process sharing this store.

        True while this process holds it. A process that dies loses it at once (a lock the
        operating system or the database server releases), and the next caller takes over.
        """
        ...

    async def register_worker(self, worker: WorkerInfo) -> None: ...

    async def list_workers(self) -> list[WorkerInfo]: ...

    async def insert_token(self, token: Token, secret_hash: str) -> None: ...

    async def find_token(self, secret_hash: str) -> Token | None:
        """The token with this hash, revoked or not."""
        ...

    async def list_tokens(self) -> list[Token]: ...

    async def revoke_token(self, token_id: str, now: datetime) -> Token | None: ...

    async def list_queues(self) -> list[QueueInfo]:
        """Every queue that has jobs or was paused, with its job counts per state."""
        ...

    async def set_queue_paused(self, name: str, paused: bool, now: datetime) -> QueueInfo:
        """A paused queue keeps its jobs and takes new ones, but workers claim none of them."""
        ...

    def change_token(self) -> int:
        """A counter to pass to :meth:`wait_for_change`."""
        ...

    async def wait_for_change(self, token: int, timeout: float) -> None:
        """Return soon after a write committed since ``token`` was read, or after ``timeout``."""
        ...
