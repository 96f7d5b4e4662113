"""The direct transport: the facade on the store itself, run on a private event loop in a thread
(an anyio blocking portal), so that the client is synchronous for scripts and notebooks."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from dockyard.app import Dockyard, QueueInfo, Submitted, Token, WorkerInfo
from dockyard.client.base import Client, event_entries, invocation_state
from dockyard.domain.clock import Clock
from dockyard.domain.events import Event
from dockyard.domain.jobs import SubmitRequest
from dockyard.domain.records import Definition, Job
from dockyard.domain.rules import Invocation, InvocationState, Rule
from dockyard.domain.scheduling import Schedule
from dockyard.settings import Settings

__all__ = ["DirectClient"]


class DirectClient(Client):
    """A client on the store itself: the facade on a private event loop in a thread."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self._closed = False
        self._stack = ExitStack()
        self._portal: BlockingPortal = self._stack.enter_context(start_blocking_portal())
        try:
            self._app = self._portal.call(lambda: Dockyard.open(settings, clock=clock))
        except BaseException:
            self._stack.close()
            raise

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._portal.call(self._app.close)
            finally:
                self._stack.close()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return self._portal.call(lambda: fn(*args, **kwargs))

    def register(self, document: Mapping[str, Any], *, name: str | None = None) -> Definition:
        result: Definition = self._call(self._app.register_definition, document, name)
        return result

    def definition(self, ref: str) -> Definition:
        result: Definition = self._call(self._app.get_definition, ref)
        return result

    def revisions(self, name: str) -> builtins.list[Definition]:
        result: builtins.list[Definition] = self._call(self._app.definition_revisions, name)
        return result

    def definitions(self) -> builtins.list[Definition]:
        result: builtins.list[Definition] = self._call(self._app.list_definitions)
        return result

    def deregister(self, ref: str) -> Definition:
        result: Definition = self._call(self._app.deregister_definition, ref)
        return result

    def rollback(self, name: str) -> Definition:
        result: Definition = self._call(self._app.rollback_definition, name)
        return result

    def submit_requests(self, requests: Sequence[SubmitRequest]) -> builtins.list[Submitted]:
        result: builtins.list[Submitted] = self._call(self._app.submit_many, requests)
        return result

    def get(self, job_id: str) -> Job:
        result: Job = self._call(self._app.get_job, job_id)
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
            self._app.list_jobs,
            states=states,
            queue=queue,
            definition=definition,
            group=group,
            limit=limit,
            before=before,
        )
        return result

    def cancel(self, job_id: str, reason: str | None = None) -> Job:
        result: Job = self._call(self._app.cancel, job_id, reason)
        return result

    def retry(self, job_id: str) -> Job:
        result: Job = self._call(self._app.retry, job_id)
        return result

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        result: Job = self._call(self._app.wait, job_id, timeout)
        return result

    def logs(self, job_id: str, attempt: int | None = None) -> str:
        data: bytes = self._call(self._app.read_log, job_id, attempt)
        return data.decode("utf-8", "replace")

    def follow(self, job_id: str, attempt: int | None = None) -> Iterator[bytes]:
        stream = self._app.follow_log(job_id, attempt)
        try:
            while True:
                try:
                    yield self._portal.call(stream.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            self._portal.call(stream.aclose)

    def create_schedule(self, document: Mapping[str, Any], *, name: str | None = None) -> Schedule:
        result: Schedule = self._call(self._app.create_schedule, document, name)
        return result

    def schedule(self, name: str) -> Schedule:
        result: Schedule = self._call(self._app.get_schedule, name)
        return result

    def schedules(self) -> builtins.list[Schedule]:
        result: builtins.list[Schedule] = self._call(self._app.list_schedules)
        return result

    def update_schedule(self, name: str, changes: Mapping[str, Any]) -> Schedule:
        result: Schedule = self._call(self._app.update_schedule, name, changes)
        return result

    def pause_schedule(self, name: str) -> Schedule:
        result: Schedule = self._call(self._app.set_schedule_enabled, name, False)
        return result

    def resume_schedule(self, name: str) -> Schedule:
        result: Schedule = self._call(self._app.set_schedule_enabled, name, True)
        return result

    def delete_schedule(self, name: str) -> Schedule:
        result: Schedule = self._call(self._app.delete_schedule, name)
        return result

    def put_events(
        self, entries: Sequence[Mapping[str, Any]] | Mapping[str, Any]
    ) -> builtins.list[str]:
        events: builtins.list[Event] = self._call(self._app.put_events, event_entries(entries))
        return [event.id for event in events]

    def events(self, limit: int = 100, source: str | None = None) -> builtins.list[dict[str, Any]]:
        stored = self._call(self._app.list_events, limit, source)
        return [dict(item.envelope) for item in stored]

    def registry_notification(
        self, body: bytes, content_type: str | None
    ) -> builtins.list[dict[str, Any]]:
        events: builtins.list[Event] = self._call(
            self._app.registry_notification, body, content_type
        )
        return [event.envelope() for event in events]

    def create_rule(self, document: Mapping[str, Any], *, name: str | None = None) -> Rule:
        result: Rule = self._call(self._app.create_rule, document, name)
        return result

    def rule(self, name: str) -> Rule:
        result: Rule = self._call(self._app.get_rule, name)
        return result

    def rules(self) -> builtins.list[Rule]:
        result: builtins.list[Rule] = self._call(self._app.list_rules)
        return result

    def update_rule(self, name: str, changes: Mapping[str, Any]) -> Rule:
        result: Rule = self._call(self._app.update_rule, name, changes)
        return result

    def enable_rule(self, name: str) -> Rule:
        result: Rule = self._call(self._app.set_rule_enabled, name, True)
        return result

    def disable_rule(self, name: str) -> Rule:
        result: Rule = self._call(self._app.set_rule_enabled, name, False)
        return result

    def delete_rule(self, name: str) -> Rule:
        result: Rule = self._call(self._app.delete_rule, name)
        return result

    def rule_history(
        self, name: str, *, state: InvocationState | str | None = None, limit: int = 100
    ) -> builtins.list[Invocation]:
        result: builtins.list[Invocation] = self._call(
            self._app.rule_history, name, invocation_state(state), limit
        )
        return result

    def retry_invocations(self, name: str, ids: Sequence[str] | None = None) -> int:
        result: int = self._call(
            self._app.retry_invocations, name, None if ids is None else list(ids)
        )
        return result

    def test_event_pattern(
        self, pattern: str | Mapping[str, Any], event: str | Mapping[str, Any]
    ) -> bool:
        return Dockyard.test_event_pattern(pattern, event)

    def queues(self) -> builtins.list[QueueInfo]:
        result: builtins.list[QueueInfo] = self._call(self._app.list_queues)
        return result

    def pause_queue(self, name: str) -> QueueInfo:
        result: QueueInfo = self._call(self._app.set_queue_paused, name, True)
        return result

    def resume_queue(self, name: str) -> QueueInfo:
        result: QueueInfo = self._call(self._app.set_queue_paused, name, False)
        return result

    def workers(self) -> builtins.list[WorkerInfo]:
        result: builtins.list[WorkerInfo] = self._call(self._app.list_workers)
        return result

    def create_token(self, name: str, role: str) -> tuple[Token, str]:
        result: tuple[Token, str] = self._call(self._app.create_token, name, role)
        return result

    def tokens(self) -> builtins.list[Token]:
        result: builtins.list[Token] = self._call(self._app.list_tokens)
        return result

    def revoke_token(self, token_id: str) -> Token:
        result: Token = self._call(self._app.revoke_token, token_id)
        return result
