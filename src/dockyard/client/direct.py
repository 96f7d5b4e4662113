"""The direct transport: the facade on the store itself, run on a private event loop in a thread
(an anyio blocking portal), so that the client is synchronous for scripts and notebooks."""

from __future__ import annotations

import builtins
import weakref
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from dockyard.app import AuditEntry, Dockyard, QueueInfo, Submitted, Token, WorkerInfo
from dockyard.client.base import Client, decode_chunks, event_entries, invocation_state
from dockyard.domain.clock import Clock
from dockyard.domain.events import Event
from dockyard.domain.jobs import SubmitRequest
from dockyard.domain.records import Definition, Job
from dockyard.domain.rules import Invocation, InvocationState, Rule
from dockyard.domain.scheduling import Schedule
from dockyard.settings import Settings

__all__ = ["DirectClient"]


def _close(portal: BlockingPortal, app: Dockyard, stack: ExitStack) -> None:
    """Close the facade on its loop, then stop the loop and its thread (once, at most)."""
    try:
        portal.call(app.close)
    finally:
        stack.close()


class DirectClient(Client):
    """A client on the store itself: the facade on a private event loop in a thread.

    Close it, or use it in a ``with``. A script that does neither still exits cleanly: the
    client is closed when it is garbage-collected or, at the latest, when the interpreter exits
    (a ``weakref.finalize`` runs before daemon threads stop; leaving the portal to the garbage
    collector at shutdown would wait forever on its frozen event-loop thread).
    """

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        stack = ExitStack()
        self._portal: BlockingPortal = stack.enter_context(start_blocking_portal())
        try:
            self._app = self._portal.call(lambda: Dockyard.open(settings, clock=clock))
        except BaseException:
            stack.close()
            raise
        self._finalizer = weakref.finalize(self, _close, self._portal, self._app, stack)

    def close(self) -> None:
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return self._portal.call(lambda: fn(*args, **kwargs))

    def register(self, document: Mapping[str, Any], *, name: str | None = None) -> Definition:
        result: Definition = self._call(self._app.definitions.register, document, name)
        return result

    def definition(self, ref: str) -> Definition:
        result: Definition = self._call(self._app.definitions.get, ref)
        return result

    def revisions(self, name: str) -> builtins.list[Definition]:
        result: builtins.list[Definition] = self._call(self._app.definitions.revisions, name)
        return result

    def definitions(self) -> builtins.list[Definition]:
        result: builtins.list[Definition] = self._call(self._app.definitions.latest)
        return result

    def deregister(self, ref: str) -> Definition:
        result: Definition = self._call(self._app.definitions.deregister, ref)
        return result

    def rollback(self, name: str) -> Definition:
        result: Definition = self._call(self._app.definitions.rollback, name)
        return result

    def submit_requests(self, requests: Sequence[SubmitRequest]) -> builtins.list[Submitted]:
        result: builtins.list[Submitted] = self._call(self._app.jobs.submit_many, requests)
        return result

    def get(self, job_id: str) -> Job:
        result: Job = self._call(self._app.jobs.get, job_id)
        return result

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
        result: builtins.list[Job] = self._call(
            self._app.jobs.list,
            states=states,
            queue=queue,
            definition=definition,
            group=group,
            limit=limit,
            before=before,
        )
        return result

    def cancel(self, job_id: str, reason: str | None = None) -> Job:
        result: Job = self._call(self._app.jobs.cancel, job_id, reason)
        return result

    def retry(self, job_id: str) -> Job:
        result: Job = self._call(self._app.jobs.retry, job_id)
        return result

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        result: Job = self._call(self._app.jobs.wait, job_id, timeout)
        return result

    def logs(self, job_id: str, attempt: int | None = None, *, offset: int = 0) -> str:
        span = self._call(self._app.logs.open, job_id, attempt, offset)
        return decode_chunks(self._iterate(self._app.logs.chunks(span)))

    def follow(self, job_id: str, attempt: int | None = None) -> Iterator[bytes]:
        return self._iterate(self._app.logs.follow(job_id, attempt))

    def _iterate(self, stream: AsyncGenerator[bytes, None]) -> Iterator[bytes]:
        """The items of an async generator of the facade, each fetched on the client's loop."""
        try:
            while True:
                try:
                    yield self._portal.call(stream.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            self._portal.call(stream.aclose)

    def create_schedule(self, document: Mapping[str, Any], *, name: str | None = None) -> Schedule:
        result: Schedule = self._call(self._app.schedules.create, document, name)
        return result

    def schedule(self, name: str) -> Schedule:
        result: Schedule = self._call(self._app.schedules.get, name)
        return result

    def schedules(self) -> builtins.list[Schedule]:
        result: builtins.list[Schedule] = self._call(self._app.schedules.list)
        return result

    def update_schedule(self, name: str, changes: Mapping[str, Any]) -> Schedule:
        result: Schedule = self._call(self._app.schedules.update, name, changes)
        return result

    def pause_schedule(self, name: str) -> Schedule:
        result: Schedule = self._call(self._app.schedules.set_enabled, name, False)
        return result

    def resume_schedule(self, name: str) -> Schedule:
        result: Schedule = self._call(self._app.schedules.set_enabled, name, True)
        return result

    def delete_schedule(self, name: str) -> Schedule:
        result: Schedule = self._call(self._app.schedules.delete, name)
        return result

    def put_events(
        self, entries: Sequence[Mapping[str, Any]] | Mapping[str, Any]
    ) -> builtins.list[str]:
        events: builtins.list[Event] = self._call(self._app.events.put, event_entries(entries))
        return [event.id for event in events]

    def events(self, limit: int = 100, source: str | None = None) -> builtins.list[dict[str, Any]]:
        stored = self._call(self._app.events.recent, limit, source)
        return [dict(item.envelope) for item in stored]

    def registry_notification(
        self, body: bytes, content_type: str | None
    ) -> builtins.list[dict[str, Any]]:
        events: builtins.list[Event] = self._call(
            self._app.events.registry_notification, body, content_type
        )
        return [event.envelope() for event in events]

    def create_rule(self, document: Mapping[str, Any], *, name: str | None = None) -> Rule:
        result: Rule = self._call(self._app.rules.create, document, name)
        return result

    def rule(self, name: str) -> Rule:
        result: Rule = self._call(self._app.rules.get, name)
        return result

    def rules(self) -> builtins.list[Rule]:
        result: builtins.list[Rule] = self._call(self._app.rules.list)
        return result

    def update_rule(self, name: str, changes: Mapping[str, Any]) -> Rule:
        result: Rule = self._call(self._app.rules.update, name, changes)
        return result

    def enable_rule(self, name: str) -> Rule:
        result: Rule = self._call(self._app.rules.set_enabled, name, True)
        return result

    def disable_rule(self, name: str) -> Rule:
        result: Rule = self._call(self._app.rules.set_enabled, name, False)
        return result

    def delete_rule(self, name: str) -> Rule:
        result: Rule = self._call(self._app.rules.delete, name)
        return result

    def rule_history(
        self, name: str, *, state: InvocationState | str | None = None, limit: int = 100
    ) -> builtins.list[Invocation]:
        result: builtins.list[Invocation] = self._call(
            self._app.rules.history, name, invocation_state(state), limit
        )
        return result

    def retry_invocations(self, name: str, ids: Sequence[str] | None = None) -> int:
        result: int = self._call(
            self._app.rules.retry_invocations, name, None if ids is None else list(ids)
        )
        return result

    def test_event_pattern(
        self, pattern: str | Mapping[str, Any], event: str | Mapping[str, Any]
    ) -> bool:
        result: bool = self._call(self._app.events.test_pattern, pattern, event)
        return result

    def queues(self) -> builtins.list[QueueInfo]:
        result: builtins.list[QueueInfo] = self._call(self._app.queues.list)
        return result

    def pause_queue(self, name: str) -> QueueInfo:
        result: QueueInfo = self._call(self._app.queues.set_paused, name, True)
        return result

    def resume_queue(self, name: str) -> QueueInfo:
        result: QueueInfo = self._call(self._app.queues.set_paused, name, False)
        return result

    def workers(self) -> builtins.list[WorkerInfo]:
        result: builtins.list[WorkerInfo] = self._call(self._app.queues.workers)
        return result

    def create_token(
        self,
        name: str,
        role: str,
        *,
        expires_at: datetime | None = None,
        expires_in: timedelta | None = None,
    ) -> tuple[Token, str]:
        result: tuple[Token, str] = self._call(
            self._app.tokens.create, name, role, expires_at=expires_at, expires_in=expires_in
        )
        return result

    def tokens(self) -> builtins.list[Token]:
        result: builtins.list[Token] = self._call(self._app.tokens.list)
        return result

    def revoke_token(self, token_id: str) -> Token:
        result: Token = self._call(self._app.tokens.revoke, token_id)
        return result

    def audit(self, limit: int = 100, before: int | None = None) -> builtins.list[AuditEntry]:
        result: builtins.list[AuditEntry] = self._call(self._app.audit.list, limit, before)
        return result
