"""The HTTP transport: the same client over a Dockyard server's ``/v1`` API, on httpx.

Errors come back as ``application/problem+json`` and are raised as the same exceptions the
direct transport raises, so callers need not know which transport they hold.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, NoReturn

import httpx

from dockyard.app import AuditEntry, QueueInfo, Submitted, Token, WorkerInfo
from dockyard.app.logs import LOG_CHUNK_BYTES
from dockyard.client.base import Client, decode_chunks, event_entries, invocation_state
from dockyard.client.documents import audit_entry, queue_info, token, worker_info
from dockyard.domain.documents import parse_definition_document, parse_job_document
from dockyard.domain.jobs import SubmitRequest
from dockyard.domain.patterns import REASON_PREFIX, InvalidEventPattern
from dockyard.domain.records import Definition, Job
from dockyard.domain.rules import (
    Invocation,
    InvocationState,
    Rule,
    parse_invocation_record,
    parse_rule_record,
)
from dockyard.domain.scheduling import Schedule, parse_schedule_record
from dockyard.domain.states import TERMINAL_STATES
from dockyard.errors import (
    AuthenticationError,
    ConflictError,
    DockyardError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)

__all__ = ["HttpClient"]

BATCH = 1000
#: The server holds a wait for at most this long; the client asks again until its own timeout.
LONG_POLL_SECONDS = 30.0


class HttpClient(Client):
    """A client of a Dockyard server at ``url`` (``http://host:8000``).

    ``unsent_token`` says why a token the user may expect was not sent (the home's token file
    belongs to another server); a 401 answer repeats it.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        timeout: float = 60.0,
        unsent_token: str | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self._unsent_token = None if token else unsent_token

    def close(self) -> None:
        self._http.close()

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Network failures become one DockyardError naming the server."""
        try:
            yield
        except httpx.HTTPError as error:
            raise DockyardError(f"cannot reach {self._http.base_url}: {error}") from None

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._reaching():
            response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            self._raise(response)
        return response.json()

    def _raise(self, response: httpx.Response) -> NoReturn:
        try:
            _raise(response)
        except AuthenticationError as error:
            if self._unsent_token is None:
                raise
            raise AuthenticationError(
                f"{error}; no token was sent: {self._unsent_token}"
                " (give --token or DOCKYARD_TOKEN to send one)"
            ) from None

    # -- definitions ----------------------------------------------------------------------------

    def register(self, document: Mapping[str, Any], *, name: str | None = None) -> Definition:
        body = {**document, **({"name": name} if name is not None else {})}
        return parse_definition_document(self._send("POST", "/v1/definitions", json=body))

    def definition(self, ref: str) -> Definition:
        name, _, revision = ref.partition(":")
        if revision:
            return parse_definition_document(
                self._send("GET", f"/v1/definitions/{name}/{revision}")
            )
        return parse_definition_document(self._send("GET", f"/v1/definitions/{name}/active"))

    def revisions(self, name: str) -> builtins.list[Definition]:
        return [parse_definition_document(d) for d in self._send("GET", f"/v1/definitions/{name}")]

    def definitions(self) -> builtins.list[Definition]:
        return [parse_definition_document(d) for d in self._send("GET", "/v1/definitions")]

    def deregister(self, ref: str) -> Definition:
        name, _, revision = ref.partition(":")
        if not revision:
            raise ValidationError("definition", "name the revision to deregister, as NAME:REVISION")
        return parse_definition_document(self._send("DELETE", f"/v1/definitions/{name}/{revision}"))

    def rollback(self, name: str) -> Definition:
        return parse_definition_document(self._send("POST", f"/v1/definitions/{name}/rollback"))

    # -- jobs -----------------------------------------------------------------------------------

    def submit_requests(self, requests: Sequence[SubmitRequest]) -> builtins.list[Submitted]:
        """Submit in batches of 1,000 requests; each batch is all-or-nothing on the server."""
        submitted: builtins.list[Submitted] = []
        for start in range(0, len(requests), BATCH):
            chunk = [_job_body(request) for request in requests[start : start + BATCH]]
            answer = self._send("POST", "/v1/jobs/batch", json={"jobs": chunk})
            submitted.extend(
                Submitted(job=parse_job_document(doc), created=bool(doc["created"]))
                for doc in answer["jobs"]
            )
        return submitted

    def get(self, job_id: str) -> Job:
        return parse_job_document(self._send("GET", f"/v1/jobs/{job_id}"))

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
        params: dict[str, Any] = {"state": [state.upper() for state in states], "limit": limit}
        for key, value in (
            ("queue", queue),
            ("definition", definition),
            ("group", group),
            ("cursor", before),
        ):
            if value is not None:
                params[key] = value
        page = self._send("GET", "/v1/jobs", params=params)
        return [parse_job_document(doc) for doc in page["jobs"]]

    def cancel(self, job_id: str, reason: str | None = None) -> Job:
        return parse_job_document(
            self._send("POST", f"/v1/jobs/{job_id}/cancel", json={"reason": reason})
        )

    def retry(self, job_id: str) -> Job:
        return parse_job_document(self._send("POST", f"/v1/jobs/{job_id}/retry"))

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            hold = LONG_POLL_SECONDS
            if deadline is not None:
                hold = min(hold, deadline - time.monotonic())
                if hold <= 0:
                    raise TimeoutError(f"job {job_id} did not end within {timeout} s")
            job = parse_job_document(
                self._send("GET", f"/v1/jobs/{job_id}", params={"wait": round(hold, 3)},
                           timeout=hold + 30)
            )  # fmt: skip
            if job.state in TERMINAL_STATES:
                return job

    def logs(self, job_id: str, attempt: int | None = None, *, offset: int = 0) -> str:
        params = {**_attempt(attempt), **({"offset": offset} if offset else {})}
        with (
            self._reaching(),
            self._http.stream("GET", f"/v1/jobs/{job_id}/logs", params=params) as response,
        ):
            if response.status_code >= 400:
                response.read()
                self._raise(response)
            # A body shorter than its Content-Length (the log was pruned meanwhile) raises.
            return decode_chunks(response.iter_bytes(LOG_CHUNK_BYTES))

    def follow(self, job_id: str, attempt: int | None = None) -> Iterator[bytes]:
        params = {**_attempt(attempt), "follow": "true"}
        path = f"/v1/jobs/{job_id}/logs"
        with (
            self._reaching(),
            self._http.stream("GET", path, params=params, timeout=None) as response,
        ):
            if response.status_code >= 400:
                response.read()
                self._raise(response)
            yield from response.iter_bytes()

    # -- schedules ------------------------------------------------------------------------------

    def create_schedule(self, document: Mapping[str, Any], *, name: str | None = None) -> Schedule:
        body = _json_body({**document, **({"name": name} if name is not None else {})}, "schedule")
        return parse_schedule_record(self._send("POST", "/v1/schedules", json=body))

    def schedule(self, name: str) -> Schedule:
        return parse_schedule_record(self._send("GET", f"/v1/schedules/{name}"))

    def schedules(self) -> builtins.list[Schedule]:
        return [parse_schedule_record(doc) for doc in self._send("GET", "/v1/schedules")]

    def update_schedule(self, name: str, changes: Mapping[str, Any]) -> Schedule:
        body = _json_body(dict(changes), "schedule")
        return parse_schedule_record(self._send("PATCH", f"/v1/schedules/{name}", json=body))

    def pause_schedule(self, name: str) -> Schedule:
        return parse_schedule_record(self._send("POST", f"/v1/schedules/{name}/pause"))

    def resume_schedule(self, name: str) -> Schedule:
        return parse_schedule_record(self._send("POST", f"/v1/schedules/{name}/resume"))

    def delete_schedule(self, name: str) -> Schedule:
        return parse_schedule_record(self._send("DELETE", f"/v1/schedules/{name}"))

    # -- events and rules -----------------------------------------------------------------------

    def put_events(
        self, entries: Sequence[Mapping[str, Any]] | Mapping[str, Any]
    ) -> builtins.list[str]:
        body = _json_body({"entries": event_entries(entries)}, "entries")
        answer = self._send("POST", "/v1/events", json=body)
        return [entry["event_id"] for entry in answer["entries"]]

    def events(self, limit: int = 100, source: str | None = None) -> builtins.list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if source is not None:
            params["source"] = source
        return [item["event"] for item in self._send("GET", "/v1/events", params=params)]

    def registry_notification(
        self, body: bytes, content_type: str | None
    ) -> builtins.list[dict[str, Any]]:
        headers = {} if content_type is None else {"Content-Type": content_type}
        answer = self._send("POST", "/v1/webhooks/registry", content=body, headers=headers)
        events: builtins.list[dict[str, Any]] = answer["events"]
        return events

    def create_rule(self, document: Mapping[str, Any], *, name: str | None = None) -> Rule:
        body = _json_body({**document, **({"name": name} if name is not None else {})}, "rule")
        return parse_rule_record(self._send("POST", "/v1/rules", json=body))

    def rule(self, name: str) -> Rule:
        return parse_rule_record(self._send("GET", f"/v1/rules/{name}"))

    def rules(self) -> builtins.list[Rule]:
        return [parse_rule_record(doc) for doc in self._send("GET", "/v1/rules")]

    def update_rule(self, name: str, changes: Mapping[str, Any]) -> Rule:
        body = _json_body(dict(changes), "rule")
        return parse_rule_record(self._send("PATCH", f"/v1/rules/{name}", json=body))

    def enable_rule(self, name: str) -> Rule:
        return parse_rule_record(self._send("POST", f"/v1/rules/{name}/enable"))

    def disable_rule(self, name: str) -> Rule:
        return parse_rule_record(self._send("POST", f"/v1/rules/{name}/disable"))

    def delete_rule(self, name: str) -> Rule:
        return parse_rule_record(self._send("DELETE", f"/v1/rules/{name}"))

    def rule_history(
        self, name: str, *, state: InvocationState | str | None = None, limit: int = 100
    ) -> builtins.list[Invocation]:
        params: dict[str, Any] = {"limit": limit}
        wanted = invocation_state(state)
        if wanted is not None:
            params["state"] = wanted.value
        answer = self._send("GET", f"/v1/rules/{name}/history", params=params)
        return [parse_invocation_record(doc) for doc in answer]

    def retry_invocations(self, name: str, ids: Sequence[str] | None = None) -> int:
        body = {"ids": None if ids is None else list(ids)}
        retried: int = self._send("POST", f"/v1/rules/{name}/retry", json=body)["retried"]
        return retried

    def test_event_pattern(
        self, pattern: str | Mapping[str, Any], event: str | Mapping[str, Any]
    ) -> bool:
        body = {
            "pattern": pattern if isinstance(pattern, str) else dict(pattern),
            "event": event if isinstance(event, str) else dict(event),
        }
        try:
            result: bool = self._send(
                "POST", "/v1/rules/test-pattern", json=_json_body(body, "pattern")
            )["result"]
        except ValidationError as error:
            # The same exception as the direct transport's, carrying AWS's reason.
            if error.field == "pattern" and error.rule.startswith(REASON_PREFIX):
                raise InvalidEventPattern(error.rule.removeprefix(REASON_PREFIX)) from None
            raise
        return result

    # -- queues, workers, tokens ----------------------------------------------------------------

    def queues(self) -> builtins.list[QueueInfo]:
        return [queue_info(doc) for doc in self._send("GET", "/v1/queues")]

    def pause_queue(self, name: str) -> QueueInfo:
        return queue_info(self._send("POST", f"/v1/queues/{name}/pause"))

    def resume_queue(self, name: str) -> QueueInfo:
        return queue_info(self._send("POST", f"/v1/queues/{name}/resume"))

    def workers(self) -> builtins.list[WorkerInfo]:
        return [worker_info(doc) for doc in self._send("GET", "/v1/workers")]

    def create_token(
        self,
        name: str,
        role: str,
        *,
        expires_at: datetime | None = None,
        expires_in: timedelta | None = None,
    ) -> tuple[Token, str]:
        body: dict[str, Any] = {"name": name, "role": role}
        if expires_at is not None:
            body["expires_at"] = expires_at.isoformat()
        if expires_in is not None:
            body["expires_in_seconds"] = expires_in.total_seconds()
        doc = self._send("POST", "/v1/tokens", json=body)
        return token(doc), doc["secret"]

    def tokens(self) -> builtins.list[Token]:
        return [token(doc) for doc in self._send("GET", "/v1/tokens")]

    def revoke_token(self, token_id: str) -> Token:
        return token(self._send("DELETE", f"/v1/tokens/{token_id}"))

    def audit(self, limit: int = 100, before: int | None = None) -> builtins.list[AuditEntry]:
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        page = self._send("GET", "/v1/audit", params=params)
        return [audit_entry(doc) for doc in page["entries"]]


def _attempt(attempt: int | None) -> dict[str, Any]:
    return {} if attempt is None else {"attempt": attempt}


def _job_body(request: SubmitRequest) -> dict[str, Any]:
    try:
        json.dumps(request.payload)
    except (TypeError, ValueError):
        raise ValidationError("payload", "must be JSON-serialisable") from None
    optional = {
        "name": request.name,
        "queue": request.queue,
        "group": request.group,
        "idempotency_key": request.idempotency_key,
        "command": None if request.command is None else list(request.command),
        "timeout": request.timeout_seconds,
        "attempts": request.attempts,
    }
    return {
        "definition": request.definition,
        "priority": request.priority,
        "payload": request.payload,
        "environment": dict(request.environment),
        "parameters": dict(request.parameters),
        **{key: value for key, value in optional.items() if value is not None},
    }


def _json_body(document: dict[str, Any], what: str) -> dict[str, Any]:
    """``document`` if JSON can carry it; else the same error the server would give."""
    try:
        json.dumps(document)
    except (TypeError, ValueError):
        raise ValidationError(what, "must be JSON-serialisable") from None
    return document


def _raise(response: httpx.Response) -> NoReturn:
    try:
        problem = response.json()
        detail = str(problem.get("detail", response.text))
    except ValueError:
        problem, detail = {}, response.text or response.reason_phrase
    status = response.status_code
    if status == 422 and "field" in problem:
        raise ValidationError(problem["field"], problem.get("rule", detail))
    if status in (400, 422):
        raise ValidationError("request", detail)
    if status == 401:
        raise AuthenticationError(detail)
    if status == 403:
        raise PermissionDeniedError(detail)
    if status == 404:
        kind, _, ref = detail.partition(" not found: ")
        raise NotFoundError(kind, ref) if ref else NotFoundError("resource", str(response.url.path))
    if status == 409:
        raise ConflictError(detail)
    raise DockyardError(f"server error {status}: {detail}")
