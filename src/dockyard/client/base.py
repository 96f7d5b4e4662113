"""The client interface: every user operation, the same over both transports."""

from __future__ import annotations

import builtins
import codecs
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from dockyard.app import AuditEntry, QueueInfo, Submitted, Token, WorkerInfo
from dockyard.domain.jobs import SubmitRequest
from dockyard.domain.records import JSON, Definition, Job
from dockyard.domain.rules import Invocation, InvocationState, Rule
from dockyard.domain.scheduling import Schedule
from dockyard.errors import ValidationError

__all__ = ["Client", "decode_chunks", "event_entries", "invocation_state"]


class Client(ABC):
    """Every user operation, by the same names as the CLI. Close it, or use it in a ``with``."""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...

    # -- definitions ----------------------------------------------------------------------------

    @abstractmethod
    def register(self, document: Mapping[str, Any], *, name: str | None = None) -> Definition:
        """Register a definition document (the YAML/JSON format of ``definitions register -f``)."""

    @abstractmethod
    def definition(self, ref: str) -> Definition:
        """``name`` (the latest ACTIVE revision) or ``name:revision``."""

    @abstractmethod
    def revisions(self, name: str) -> builtins.list[Definition]: ...

    @abstractmethod
    def definitions(self) -> builtins.list[Definition]:
        """The latest revision of every definition."""

    @abstractmethod
    def deregister(self, ref: str) -> Definition: ...

    @abstractmethod
    def rollback(self, name: str) -> Definition:
        """Register a new revision equal to the ACTIVE one before the latest."""

    # -- jobs -----------------------------------------------------------------------------------

    def submit(
        self,
        definition: str,
        *,
        payload: JSON = None,
        queue: str | None = None,
        group: str | None = None,
        idempotency_key: str | None = None,
        priority: int = 0,
        command: Sequence[str] | None = None,
        environment: Mapping[str, str] | None = None,
        timeout: float | None = None,
        attempts: int | None = None,
        parameters: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> Job:
        """Submit one job; with an idempotency key seen before, the earlier job is returned."""
        request = SubmitRequest(
            definition=definition,
            name=name,
            queue=queue,
            group=group,
            idempotency_key=idempotency_key,
            priority=priority,
            payload=payload,
            command=None if command is None else tuple(command),
            environment=dict(environment or {}),
            timeout_seconds=timeout,
            attempts=attempts,
            parameters=dict(parameters or {}),
        )
        return self.submit_requests([request])[0].job

    @abstractmethod
    def submit_requests(self, requests: Sequence[SubmitRequest]) -> builtins.list[Submitted]:
        """Submit many jobs at once: all of them, or none when one is invalid."""

    @abstractmethod
    def get(self, job_id: str) -> Job: ...

    @abstractmethod
    def list(
        self,
        *,
        states: Sequence[str] = (),
        queue: str | None = None,
        definition: str | None = None,
        group: str | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> builtins.list[Job]:
        """Jobs, newest first; ``before`` (a job id) pages to older ones."""

    @abstractmethod
    def cancel(self, job_id: str, reason: str | None = None) -> Job: ...

    @abstractmethod
    def retry(self, job_id: str) -> Job: ...

    @abstractmethod
    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job is SUCCEEDED, FAILED or CANCELLED (TimeoutError after ``timeout``)."""

    @abstractmethod
    def logs(self, job_id: str, attempt: int | None = None, *, offset: int = 0) -> str:
        """The log of one attempt (the latest by default) as it is now, from byte ``offset``
        on: to resume, pass the number of *bytes* read before (a character cut in two at the
        offset reads as U+FFFD). It is read in pieces, so only the text returned is held."""

    @abstractmethod
    def follow(self, job_id: str, attempt: int | None = None) -> Iterator[bytes]:
        """Yield the log as the job prints it, until the job ends."""

    # -- schedules ------------------------------------------------------------------------------

    @abstractmethod
    def create_schedule(self, document: Mapping[str, Any], *, name: str | None = None) -> Schedule:
        """Create a schedule from its document (the format of ``schedules create -f``); its
        target definition must exist. ``name`` wins over the document's."""

    @abstractmethod
    def schedule(self, name: str) -> Schedule: ...

    @abstractmethod
    def schedules(self) -> builtins.list[Schedule]: ...

    @abstractmethod
    def update_schedule(self, name: str, changes: Mapping[str, Any]) -> Schedule:
        """Change the keys given: ``target`` merges key by key, a None resets a key to its
        default. A change of expression, time zone, start or end recomputes the next fire."""

    @abstractmethod
    def pause_schedule(self, name: str) -> Schedule:
        """No fire until resumed; the fires missed meanwhile are not caught up."""

    @abstractmethod
    def resume_schedule(self, name: str) -> Schedule: ...

    @abstractmethod
    def delete_schedule(self, name: str) -> Schedule:
        """Delete a schedule (its jobs stay) and return what was deleted."""

    # -- events and rules -----------------------------------------------------------------------

    @abstractmethod
    def put_events(
        self, entries: Sequence[Mapping[str, Any]] | Mapping[str, Any]
    ) -> builtins.list[str]:
        """Put 1-10 events on the bus (PutEvents) and return their ids: all of them, or none
        when one is invalid. Each entry is in PutEvents form (``Source``, ``DetailType``,
        ``Detail`` as JSON text, …) or an envelope (``source``, ``detail-type``, ``detail``, …);
        a single mapping is one event."""

    @abstractmethod
    def events(self, limit: int = 100, source: str | None = None) -> builtins.list[dict[str, Any]]:
        """The envelopes of the events on the bus, newest first. The bus keeps events only
        while at least one rule is enabled."""

    @abstractmethod
    def registry_notification(
        self, body: bytes, content_type: str | None
    ) -> builtins.list[dict[str, Any]]:
        """Hand over a registry's notification as it was posted; return the ``Image Pushed``
        events (envelopes) its tagged manifest pushes made."""

    @abstractmethod
    def create_rule(self, document: Mapping[str, Any], *, name: str | None = None) -> Rule:
        """Create a rule from its document (the format of ``rules create -f``); ``name`` wins
        over the document's."""

    @abstractmethod
    def rule(self, name: str) -> Rule: ...

    @abstractmethod
    def rules(self) -> builtins.list[Rule]: ...

    @abstractmethod
    def update_rule(self, name: str, changes: Mapping[str, Any]) -> Rule:
        """Change the fields given; the others keep their values, ``targets`` is replaced whole."""

    @abstractmethod
    def enable_rule(self, name: str) -> Rule: ...

    @abstractmethod
    def disable_rule(self, name: str) -> Rule:
        """Match no more events; the invocations already made are still delivered."""

    @abstractmethod
    def delete_rule(self, name: str) -> Rule:
        """Delete a rule and its invocations; return what was deleted."""

    @abstractmethod
    def rule_history(
        self, name: str, *, state: InvocationState | str | None = None, limit: int = 100
    ) -> builtins.list[Invocation]:
        """The rule's invocations, newest first; ``state="DEAD"`` is its dead list."""

    @abstractmethod
    def retry_invocations(self, name: str, ids: Sequence[str] | None = None) -> int:
        """Deliver dead invocations again (these, or the rule's whole dead list); return how
        many were put back."""

    @abstractmethod
    def test_event_pattern(
        self, pattern: str | Mapping[str, Any], event: str | Mapping[str, Any]
    ) -> bool:
        """Whether ``event`` matches ``pattern`` (EventBridge's TestEventPattern); an invalid
        pattern raises :class:`~dockyard.domain.patterns.InvalidEventPattern` with AWS's reason."""

    # -- queues, workers, tokens ----------------------------------------------------------------

    @abstractmethod
    def queues(self) -> builtins.list[QueueInfo]: ...

    @abstractmethod
    def pause_queue(self, name: str) -> QueueInfo: ...

    @abstractmethod
    def resume_queue(self, name: str) -> QueueInfo: ...

    @abstractmethod
    def workers(self) -> builtins.list[WorkerInfo]: ...

    @abstractmethod
    def create_token(
        self,
        name: str,
        role: str,
        *,
        expires_at: datetime | None = None,
        expires_in: timedelta | None = None,
    ) -> tuple[Token, str]:
        """A new token and its secret, which is shown this once. It is refused from
        ``expires_at``, or ``expires_in`` after now (one of them at most); without either it
        lasts until revoked."""

    @abstractmethod
    def tokens(self) -> builtins.list[Token]:
        """Every token, with its expiry and its last use (to within a minute)."""

    @abstractmethod
    def revoke_token(self, token_id: str) -> Token: ...

    @abstractmethod
    def audit(self, limit: int = 100, before: int | None = None) -> builtins.list[AuditEntry]:
        """The audit trail, newest first (admins only): which token changed what. ``before``
        is the id of the last entry of the previous page."""


def decode_chunks(chunks: Iterable[bytes]) -> str:
    """UTF-8 text of a log read in pieces, as both transports return it: a character split
    between two pieces is whole, and bytes that are not UTF-8 read as U+FFFD."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    parts = [decoder.decode(chunk) for chunk in chunks]
    parts.append(decoder.decode(b"", final=True))
    return "".join(parts)


def event_entries(entries: object) -> object:
    """The entries as a list, as both transports send them; a mapping is one entry."""
    if isinstance(entries, Mapping):
        return [dict(entries)]
    if isinstance(entries, tuple):
        return list(entries)
    return entries


def invocation_state(state: InvocationState | str | None) -> InvocationState | None:
    """``"dead"``, ``"DEAD"`` or ``InvocationState.DEAD`` alike."""
    if state is None or isinstance(state, InvocationState):
        return state
    try:
        return InvocationState(str(state).upper())
    except ValueError:
        choices = ", ".join(member.value for member in InvocationState)
        raise ValidationError("state", f"must be one of {choices}") from None
