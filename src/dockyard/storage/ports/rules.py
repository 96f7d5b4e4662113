"""The rules port: rules, and the invocations of their targets (deliveries and the dead list)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from dockyard.domain.records import NewJob
from dockyard.domain.rules import Invocation, InvocationState, Rule
from dockyard.storage.ports.jobs import InsertedJob

__all__ = ["InvocationUpdate", "NewInvocation", "RuleStore"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NewInvocation:
    """A target to invoke for an event a rule matched (or, THROTTLED or REFUSED, not to)."""

    id: str
    rule: str
    target: str
    event: Mapping[str, Any]
    #: The causation depth the invocation acts at: its event's, plus one.
    depth: int = 1
    #: PENDING (to deliver), or THROTTLED or REFUSED (recorded, never delivered).
    state: InvocationState = InvocationState.PENDING
    #: Why it is not made (THROTTLED or REFUSED).
    error: str | None = None


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


class RuleStore(Protocol):
    async def insert(self, rule: Rule) -> bool:
        """False when a rule of that name exists."""
        ...

    async def get(self, name: str) -> Rule | None: ...

    async def all(self, enabled_only: bool = False) -> list[Rule]:
        """Rules by name."""
        ...

    async def replace(self, rule: Rule) -> bool:
        """Replace the spec and state of an existing rule; False when there is none."""
        ...

    async def delete(self, name: str) -> bool:
        """Delete the rule and its invocations; False when there was none."""
        ...

    async def due_invocations(self, now: datetime, limit: int) -> list[Invocation]:
        """PENDING invocations whose next try has come, earliest first."""
        ...

    async def next_invocation_at(self) -> datetime | None: ...

    async def update_invocations(self, updates: Sequence[InvocationUpdate]) -> None:
        """Record how tries ended (only invocations still PENDING change)."""
        ...

    async def invocations(
        self, rule: str, state: InvocationState | None, limit: int
    ) -> list[Invocation]:
        """A rule's invocations, newest first."""
        ...

    async def retry_invocations(self, rule: str, ids: Sequence[str] | None, now: datetime) -> int:
        """Put DEAD invocations of ``rule`` (those of ``ids``, or all) back to PENDING."""
        ...

    async def submit_job(self, job: NewJob, depth: int) -> InsertedJob:
        """Insert a job a rule's target submits, with its causation depth, in one transaction
        (an idempotency key seen before returns the earlier job, whose depth stays). The
        ``Job State Change`` events of the job carry ``depth`` to the rules that match them."""
        ...
