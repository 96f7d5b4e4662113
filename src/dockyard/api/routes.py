"""The ``/v1`` routes. Each parses its input, calls the facade, and renders a document."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from dockyard.api.auth import facade, require
from dockyard.api.problems import PROBLEM_RESPONSES, problem
from dockyard.api.schemas import (
    BatchIn,
    BatchOut,
    CancelIn,
    DefinitionIn,
    DefinitionOut,
    EventOut,
    InvocationOut,
    JobIn,
    JobOut,
    JobPage,
    PatternTestIn,
    PatternTestOut,
    PutEventsOut,
    QueueOut,
    RegistryNotificationOut,
    RetryIn,
    RetryOut,
    RuleIn,
    RuleOut,
    RulePatch,
    ScheduleIn,
    ScheduleOut,
    SchedulePatch,
    TokenCreated,
    TokenIn,
    TokenOut,
    WorkerOut,
)
from dockyard.app import Dockyard, QueueInfo, Token, WorkerInfo
from dockyard.domain.documents import definition_summary, iso, job_document
from dockyard.domain.jobs import SubmitRequest
from dockyard.domain.records import Job
from dockyard.domain.registry import MEDIA_TYPES as REGISTRY_MEDIA_TYPES
from dockyard.domain.rules import InvocationState, invocation_document, rule_document
from dockyard.domain.scheduling import schedule_document
from dockyard.domain.states import JobState
from dockyard.domain.tokens import Permission
from dockyard.errors import ValidationError

__all__ = ["router"]

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)
App = Annotated[Dockyard, Depends(facade)]
Reader = Depends(require(Permission.READ))
Operator = Depends(require(Permission.OPERATE))
Admin = Depends(require(Permission.ADMINISTER))
MAX_WAIT_SECONDS = 60.0


def _job(job: Job, created: bool | None = None) -> dict[str, Any]:
    document = job_document(job)
    if created is not None:
        document["created"] = created
    return document


def _request(body: JobIn) -> SubmitRequest:
    return SubmitRequest(
        definition=body.definition,
        name=body.name,
        queue=body.queue,
        group=body.group,
        idempotency_key=body.idempotency_key,
        priority=body.priority,
        payload=body.payload,
        command=None if body.command is None else tuple(body.command),
        environment=body.environment,
        timeout_seconds=body.timeout,
        attempts=body.attempts,
        parameters=body.parameters,
    )


# -- definitions --------------------------------------------------------------------------------


@router.post("/definitions", status_code=201, response_model=DefinitionOut, dependencies=[Operator])
async def register_definition(body: DefinitionIn, app: App) -> dict[str, Any]:
    """Register a definition: revision 1, or the next revision of an existing name."""
    document = body.model_dump(exclude_none=True, by_alias=True)
    return definition_summary(await app.register_definition(document, name=body.name))


@router.get("/definitions", response_model=list[DefinitionOut], dependencies=[Reader])
async def list_definitions(app: App) -> list[dict[str, Any]]:
    """The latest revision of every definition."""
    return [definition_summary(d) for d in await app.list_definitions()]


@router.get("/definitions/{name}", response_model=list[DefinitionOut], dependencies=[Reader])
async def describe_definition(name: str, app: App) -> list[dict[str, Any]]:
    """Every revision of a definition, oldest first."""
    return [definition_summary(d) for d in await app.definition_revisions(name)]


@router.get("/definitions/{name}/active", response_model=DefinitionOut, dependencies=[Reader])
async def get_active(name: str, app: App) -> dict[str, Any]:
    """The latest ACTIVE revision: the one ``name`` means when submitting."""
    return definition_summary(await app.get_definition(name))


@router.get("/definitions/{name}/{revision}", response_model=DefinitionOut, dependencies=[Reader])
async def get_revision(name: str, revision: int, app: App) -> dict[str, Any]:
    return definition_summary(await app.get_definition(f"{name}:{revision}"))


@router.post(
    "/definitions/{name}/rollback",
    status_code=201,
    response_model=DefinitionOut,
    dependencies=[Operator],
)
async def rollback_definition(name: str, app: App) -> dict[str, Any]:
    """Register a new revision equal to the ACTIVE one before the latest (409 if none)."""
    return definition_summary(await app.rollback_definition(name))


@router.delete(
    "/definitions/{name}/{revision}", response_model=DefinitionOut, dependencies=[Operator]
)
async def deregister_definition(name: str, revision: int, app: App) -> dict[str, Any]:
    """Make a revision INACTIVE: it takes no new jobs."""
    return definition_summary(await app.deregister_definition(f"{name}:{revision}"))


# -- jobs ---------------------------------------------------------------------------------------


@router.post("/jobs", status_code=201, response_model=JobOut, dependencies=[Operator])
async def submit(body: JobIn, app: App, response: Response) -> dict[str, Any]:
    """Submit a job. With an idempotency key seen before: the earlier job, status 200."""
    submitted = await app.submit(_request(body))
    if not submitted.created:
        response.status_code = 200
    return _job(submitted.job, submitted.created)


@router.post("/jobs/batch", status_code=201, response_model=BatchOut, dependencies=[Operator])
async def submit_batch(body: BatchIn, app: App) -> dict[str, Any]:
    """Submit up to 1,000 jobs in one transaction: all of them, or none when one is invalid."""
    submitted = await app.submit_many([_request(job) for job in body.jobs])
    return {"jobs": [_job(item.job, item.created) for item in submitted]}


@router.get("/jobs", response_model=JobPage, dependencies=[Reader])
async def list_jobs(
    app: App,
    state: Annotated[list[JobState] | None, Query()] = None,
    queue: str | None = None,
    definition: str | None = None,
    group: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Jobs, newest first; follow ``next_cursor`` for older pages."""
    jobs = await app.list_jobs(
        states=[s.value for s in state or []],
        queue=queue,
        definition=definition,
        group=group,
        limit=limit,
        before=cursor,
    )
    return {
        "jobs": [_job(job) for job in jobs],
        "next_cursor": jobs[-1].id if len(jobs) == limit else None,
    }


@router.get("/jobs/{job_id}", response_model=JobOut, dependencies=[Reader])
async def get_job(
    job_id: str, app: App, wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 0
) -> dict[str, Any]:
    """A job with its attempts. ``?wait=S`` holds the answer up to S seconds until the job ends."""
    if wait > 0:
        try:
            return _job(await app.wait(job_id, timeout=wait))
        except TimeoutError:
            pass
    return _job(await app.get_job(job_id))


@router.get("/jobs/{job_id}/attempts", response_model=list[dict[str, Any]], dependencies=[Reader])
async def attempts(job_id: str, app: App) -> list[dict[str, Any]]:
    attempts: list[dict[str, Any]] = _job(await app.get_job(job_id))["attempts"]
    return attempts


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, dependencies=[Operator])
async def cancel(job_id: str, app: App, body: CancelIn | None = None) -> dict[str, Any]:
    """Cancel a job that has not ended; a running attempt is stopped within seconds."""
    return _job(await app.cancel(job_id, body.reason if body else None))


@router.post("/jobs/{job_id}/retry", response_model=JobOut, dependencies=[Operator])
async def retry(job_id: str, app: App) -> dict[str, Any]:
    """Run a FAILED or CANCELLED job again with its attempts renewed."""
    return _job(await app.retry(job_id))


@router.get(
    "/jobs/{job_id}/logs",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    dependencies=[Reader],
)
async def logs(
    job_id: str,
    app: App,
    attempt: Annotated[int | None, Query(ge=1)] = None,
    follow: bool = False,
) -> StreamingResponse:
    """An attempt's log (the latest by default); ``?follow=true`` streams it until the job ends."""
    if follow:
        await app.check_log(job_id, attempt)  # a 404 now, not inside the stream
        return StreamingResponse(app.follow_log(job_id, attempt), media_type="text/plain")
    data = await app.read_log(job_id, attempt)
    return StreamingResponse(iter([data]), media_type="text/plain")


# -- schedules ----------------------------------------------------------------------------------


@router.post("/schedules", status_code=201, response_model=ScheduleOut, dependencies=[Operator])
async def create_schedule(body: ScheduleIn, app: App) -> dict[str, Any]:
    """Create a schedule; its target definition must exist. 409 if the name is taken."""
    document = body.model_dump(exclude_unset=True)
    return schedule_document(await app.create_schedule(document, name=body.name))


@router.get("/schedules", response_model=list[ScheduleOut], dependencies=[Reader])
async def list_schedules(app: App) -> list[dict[str, Any]]:
    """Every schedule with its next fire time."""
    return [schedule_document(schedule) for schedule in await app.list_schedules()]


@router.get("/schedules/{name}", response_model=ScheduleOut, dependencies=[Reader])
async def get_schedule(name: str, app: App) -> dict[str, Any]:
    return schedule_document(await app.get_schedule(name))


@router.patch("/schedules/{name}", response_model=ScheduleOut, dependencies=[Operator])
async def update_schedule(name: str, body: SchedulePatch, app: App) -> dict[str, Any]:
    """Change the fields given (null: back to the default); ``target`` merges key by key."""
    # exclude_unset, not exclude_none: a key left out keeps its value, a null resets it.
    changes = body.model_dump(exclude_unset=True)
    return schedule_document(await app.update_schedule(name, changes))


@router.post("/schedules/{name}/pause", response_model=ScheduleOut, dependencies=[Operator])
async def pause_schedule(name: str, app: App) -> dict[str, Any]:
    """No fire while paused, and none of the missed ones is caught up on resume."""
    return schedule_document(await app.set_schedule_enabled(name, False))


@router.post("/schedules/{name}/resume", response_model=ScheduleOut, dependencies=[Operator])
async def resume_schedule(name: str, app: App) -> dict[str, Any]:
    """Fire again, from the next fire time after now."""
    return schedule_document(await app.set_schedule_enabled(name, True))


@router.delete("/schedules/{name}", response_model=ScheduleOut, dependencies=[Operator])
async def delete_schedule(name: str, app: App) -> dict[str, Any]:
    """Delete a schedule (its jobs stay); the answer is what was deleted."""
    return schedule_document(await app.delete_schedule(name))


# -- events -------------------------------------------------------------------------------------

#: ``POST /v1/events`` takes a PutEvents request or one event as another service emitted it.
_EVENTS_BODY = Body(
    description='`{"entries": [...]}` (or AWS\'s `Entries`) with 1-10 entries, each in'
    " PutEvents form (`Source`, `DetailType`, `Detail` as JSON text, `Resources`, `Time`) or as an"
    " envelope (`source`, `detail-type`, `detail` as an object, `resources`, `time`, `account`,"
    " `region`); or one envelope alone, e.g. an ECR `ECR Image Action` event posted as it is."
    " Sources beginning `dockyard.` are Dockyard's own and refused.",
    openapi_examples={
        "put-events": {
            "summary": "PutEvents entries",
            "value": {
                "entries": [
                    {"Source": "ci", "DetailType": "Build Done", "Detail": '{"commit": "abc1"}'}
                ]
            },
        },
        "envelope": {
            "summary": "One event as another service emitted it",
            "value": {"source": "aws.ecr", "detail-type": "ECR Image Action", "detail": {}},
        },
    },
)
_REQUEST_KEYS = ("entries", "Entries")
#: The registry posts its envelope with its own media types, which FastAPI would not parse.
_REGISTRY_ENVELOPE_SCHEMA = {
    "type": "object",
    "properties": {"events": {"type": "array", "items": {"type": "object"}}},
    "required": ["events"],
}
_REGISTRY_BODY = {
    "requestBody": {
        "required": True,
        "description": "A Docker Distribution notification envelope (its `notifications`"
        " endpoint), sent with the token in the endpoint's `headers`",
        "content": {
            media_type: {"schema": _REGISTRY_ENVELOPE_SCHEMA}
            for media_type in sorted(REGISTRY_MEDIA_TYPES)
        },
    }
}


def _entries(body: dict[str, Any]) -> object:
    """The entries of a PutEvents request; a body without ``entries`` is one event."""
    given = [key for key in _REQUEST_KEYS if key in body]
    if not given:
        return body
    for key in body:
        if key not in _REQUEST_KEYS:
            raise ValidationError(key, "is not a field of a PutEvents request (entries)")
    if len(given) > 1:
        raise ValidationError("Entries", "give entries or Entries, not both")
    return body[given[0]]


@router.post("/events", response_model=PutEventsOut, dependencies=[Operator])
async def put_events(body: Annotated[dict[str, Any], _EVENTS_BODY], app: App) -> dict[str, Any]:
    """Put events on the bus (PutEvents): all of them, or none when one is invalid (422)."""
    events = await app.put_events(_entries(body))
    return {"entries": [{"event_id": event.id} for event in events], "failed_entry_count": 0}


@router.get("/events", response_model=list[EventOut], dependencies=[Reader])
async def list_events(
    app: App,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """Events on the bus, newest first. The bus keeps events only while a rule is enabled."""
    return [
        {"seq": stored.seq, "received_at": iso(stored.received_at), "event": dict(stored.envelope)}
        for stored in await app.list_events(limit, source)
    ]


@router.post(
    "/webhooks/registry",
    response_model=RegistryNotificationOut,
    dependencies=[Operator],
    openapi_extra=_REGISTRY_BODY,
)
async def registry_notification(request: Request, app: App) -> JSONResponse | dict[str, Any]:
    """A registry's notification: each tagged manifest push becomes an ``Image Pushed`` event
    of source ``dockyard.registry``; pulls, deletes and layer pushes make none."""
    body = await request.body()
    try:
        json.loads(body)
    except ValueError:  # as for every other body: malformed JSON is 400
        return problem(400, "Malformed request", "the body is not valid JSON")
    events = await app.registry_notification(body, request.headers.get("content-type"))
    return {"events": [event.envelope() for event in events]}


# -- rules --------------------------------------------------------------------------------------


@router.post("/rules", status_code=201, response_model=RuleOut, dependencies=[Operator])
async def create_rule(body: RuleIn, app: App) -> dict[str, Any]:
    """Create a rule: an event pattern and the targets it invokes. 409 if the name is taken."""
    document = body.model_dump(exclude_unset=True)
    return rule_document(await app.create_rule(document, name=body.name))


@router.get("/rules", response_model=list[RuleOut], dependencies=[Reader])
async def list_rules(app: App) -> list[dict[str, Any]]:
    return [rule_document(rule) for rule in await app.list_rules()]


@router.post("/rules/test-pattern", response_model=PatternTestOut, dependencies=[Reader])
async def test_pattern(body: PatternTestIn, app: App) -> dict[str, Any]:
    """TestEventPattern: whether the event matches; an invalid pattern is 422 with AWS's reason."""
    return {"result": app.test_event_pattern(body.pattern, body.event)}


@router.get("/rules/{name}", response_model=RuleOut, dependencies=[Reader])
async def get_rule(name: str, app: App) -> dict[str, Any]:
    return rule_document(await app.get_rule(name))


@router.patch("/rules/{name}", response_model=RuleOut, dependencies=[Operator])
async def update_rule(name: str, body: RulePatch, app: App) -> dict[str, Any]:
    """Change the fields given; the others keep their values, and ``targets`` is replaced whole."""
    return rule_document(await app.update_rule(name, body.model_dump(exclude_unset=True)))


@router.delete("/rules/{name}", response_model=RuleOut, dependencies=[Operator])
async def delete_rule(name: str, app: App) -> dict[str, Any]:
    """Delete a rule and its invocations; the answer is what was deleted."""
    return rule_document(await app.delete_rule(name))


@router.post("/rules/{name}/enable", response_model=RuleOut, dependencies=[Operator])
async def enable_rule(name: str, app: App) -> dict[str, Any]:
    """Match events again."""
    return rule_document(await app.set_rule_enabled(name, True))


@router.post("/rules/{name}/disable", response_model=RuleOut, dependencies=[Operator])
async def disable_rule(name: str, app: App) -> dict[str, Any]:
    """Match no event while disabled; invocations already made are still delivered."""
    return rule_document(await app.set_rule_enabled(name, False))


@router.get("/rules/{name}/history", response_model=list[InvocationOut], dependencies=[Reader])
async def rule_history(
    name: str,
    app: App,
    state: InvocationState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """The rule's invocations, newest first; ``?state=DEAD`` is its dead list."""
    return [invocation_document(i) for i in await app.rule_history(name, state, limit)]


@router.post("/rules/{name}/retry", response_model=RetryOut, dependencies=[Operator])
async def retry_invocations(name: str, app: App, body: RetryIn | None = None) -> dict[str, Any]:
    """Deliver dead invocations again (these ``ids``, or the whole dead list)."""
    return {"retried": await app.retry_invocations(name, body.ids if body else None)}


# -- queues, workers, tokens --------------------------------------------------------------------


def _queue(queue: QueueInfo) -> dict[str, Any]:
    return {"name": queue.name, "paused": queue.paused, "counts": dict(queue.counts)}


@router.get("/queues", response_model=list[QueueOut], dependencies=[Reader])
async def list_queues(app: App) -> list[dict[str, Any]]:
    """Every queue with its job counts per state."""
    return [_queue(queue) for queue in await app.list_queues()]


@router.post("/queues/{name}/pause", response_model=QueueOut, dependencies=[Operator])
async def pause_queue(name: str, app: App) -> dict[str, Any]:
    """Workers take no job from a paused queue; submissions still land."""
    return _queue(await app.set_queue_paused(name, True))


@router.post("/queues/{name}/resume", response_model=QueueOut, dependencies=[Operator])
async def resume_queue(name: str, app: App) -> dict[str, Any]:
    return _queue(await app.set_queue_paused(name, False))


def _worker(worker: WorkerInfo) -> dict[str, Any]:
    return {
        "id": worker.id,
        "hostname": worker.hostname,
        "pid": worker.pid,
        "queues": None if worker.queues is None else list(worker.queues),
        "concurrency": worker.concurrency,
        "started_at": iso(worker.started_at),
        "heartbeat_at": iso(worker.heartbeat_at),
        "stopped_at": iso(worker.stopped_at),
        "running": list(worker.running),
    }


@router.get("/workers", response_model=list[WorkerOut], dependencies=[Reader])
async def list_workers(app: App) -> list[dict[str, Any]]:
    """Workers with their last heartbeat and the jobs they run now."""
    return [_worker(worker) for worker in await app.list_workers()]


def _token(token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "role": token.role.value,
        "created_at": iso(token.created_at),
        "revoked_at": iso(token.revoked_at),
    }


@router.post("/tokens", status_code=201, response_model=TokenCreated, dependencies=[Admin])
async def create_token(body: TokenIn, app: App) -> dict[str, Any]:
    """A new token; its secret is in this answer only."""
    token, secret = await app.create_token(body.name, body.role)
    return {**_token(token), "secret": secret}


@router.get("/tokens", response_model=list[TokenOut], dependencies=[Admin])
async def list_tokens(app: App) -> list[dict[str, Any]]:
    return [_token(token) for token in await app.list_tokens()]


@router.delete("/tokens/{token_id}", response_model=TokenOut, dependencies=[Admin])
async def revoke_token(token_id: str, app: App) -> dict[str, Any]:
    return _token(await app.revoke_token(token_id))
