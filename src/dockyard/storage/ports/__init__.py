"""The storage ports: one small protocol per role, bundled as :class:`Storage`.

Dockyard keeps its state behind ten ports, split the way River splits its driver from its
listener and Oban its engine from its notifier and peer, so that each caller depends only on the
role it uses and each backend keeps one module (and one ``.sql`` file) per port:

==============  ===============================================================================
``jobs``        the hot path: insert, claim, apply transitions, leases, rescue, pruning
``definitions`` revisions of definitions
``schedules``   schedules and the scheduler's fires
``events``      the event bus: put, read, route to invocations, prune
``rules``       rules and their invocations (deliveries and the dead list)
``tokens``      API tokens, looked up by the hash of their secret
``audit``       the trail of changes made through the facade: who did what to what
``queues``      queue pause state and counts; worker registrations
``leadership``  one leader per role among every process sharing the store
``changes``     the change feed that wakes waiters (NOTIFY, ``data_version``, in-process)
==============  ===============================================================================

Every verb is a coroutine and one transaction; verbs take small frozen parameter objects
(CONVENTIONS.md 4). The runtime sees :class:`Capabilities`, never a dialect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dockyard.storage.ports.audit import AuditQuery, AuditStore
from dockyard.storage.ports.changes import ChangeFeed
from dockyard.storage.ports.definitions import DefinitionStore
from dockyard.storage.ports.events import EventStore, StoredEvent
from dockyard.storage.ports.jobs import ClaimRequest, Heartbeat, InsertedJob, JobQuery, JobStore
from dockyard.storage.ports.leadership import Leadership
from dockyard.storage.ports.queues import QueueInfo, QueueStore, WorkerInfo
from dockyard.storage.ports.rules import InvocationUpdate, NewInvocation, RuleStore
from dockyard.storage.ports.schedules import Fire, FireResult, ScheduleStore
from dockyard.storage.ports.tokens import TokenStore

__all__ = [
    "AuditQuery",
    "AuditStore",
    "Capabilities",
    "ChangeFeed",
    "ClaimRequest",
    "DefinitionStore",
    "EventStore",
    "Fire",
    "FireResult",
    "Heartbeat",
    "InsertedJob",
    "InvocationUpdate",
    "JobQuery",
    "JobStore",
    "Leadership",
    "NewInvocation",
    "QueueInfo",
    "QueueStore",
    "RuleStore",
    "ScheduleStore",
    "Storage",
    "StoredEvent",
    "TokenStore",
    "WorkerInfo",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a backend can do, so the runtime can choose without naming the backend."""

    #: Several processes on several hosts may share the store.
    multi_host: bool
    #: Other processes' writes wake :meth:`ChangeFeed.wait` without polling the jobs table.
    cross_process_notify: bool


class Storage(Protocol):
    """One store: its ports, its schema and its lifetime."""

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def jobs(self) -> JobStore: ...

    @property
    def definitions(self) -> DefinitionStore: ...

    @property
    def schedules(self) -> ScheduleStore: ...

    @property
    def events(self) -> EventStore: ...

    @property
    def rules(self) -> RuleStore: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def audit(self) -> AuditStore: ...

    @property
    def queues(self) -> QueueStore: ...

    @property
    def leadership(self) -> Leadership: ...

    @property
    def changes(self) -> ChangeFeed: ...

    async def migrate(self) -> list[str]:
        """Apply the migrations not applied yet; return their names."""
        ...

    async def close(self) -> None:
        """Release connections, listeners and leaderships. Safe to call more than once."""
        ...
