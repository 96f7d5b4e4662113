"""The ``/v1/jobs`` routes: submit, list, read, wait for, cancel and retry jobs; their logs.

A submission with an idempotency key seen before answers the earlier job with status 200
instead of 201, and creates nothing. ``?wait=S`` is capped at :data:`MAX_WAIT_SECONDS`, so that
no request holds a connection open for long, and a token follows at most
:data:`~dockyard.api.streams.MAX_FOLLOWS_PER_TOKEN` logs at once (429 past it).

A log is sent as it is read, in pieces of :data:`~dockyard.app.logs.LOG_CHUNK_BYTES`, with its
``Content-Length``: memory per reader stays the same whatever the log's size, and ``?offset=N``
resumes a read that was cut at byte N.

A stored payload or result that cannot be rendered (one stored before payloads had a nesting
limit, or a result nested too deep) never breaks an answer: it is given as null, with
``payload_error`` or ``result_error`` saying why, and the rest of the job — and of the page — as
usual.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from dockyard.api.auth import allowed, caller
from dockyard.api.problems import problem, problem_response
from dockyard.api.routes.dependencies import App
from dockyard.api.schemas import BatchIn, BatchOut, CancelIn, JobIn, JobOut, JobOutputOut, JobPage
from dockyard.api.streams import FollowSlots, SlotStream
from dockyard.app import Jobs, Logs
from dockyard.domain.documents import job_document
from dockyard.domain.fields import MAX_DEPTH, too_deep
from dockyard.domain.jobs import SubmitRequest
from dockyard.domain.records import Job
from dockyard.domain.staging import output_record_document
from dockyard.domain.states import JobState
from dockyard.domain.tokens import Token
from dockyard.errors import ValidationError

__all__ = ["MAX_WAIT_SECONDS", "router"]

router = APIRouter()
MAX_WAIT_SECONDS = 60.0
#: Why a stored value is given as null: the reader sees the job, and what to ask about.
UNRENDERABLE = f"cannot be shown: it nests deeper than {MAX_DEPTH} levels of lists and objects"


def _job(job: Job, created: bool | None = None) -> dict[str, Any]:
    document = job_document(job)
    for key in ("payload", "result"):
        if too_deep(document[key]):
            document[key], document[f"{key}_error"] = None, UNRENDERABLE
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


@router.post("/jobs", status_code=201, response_model=JobOut, dependencies=[allowed(Jobs.submit)])
async def submit(body: JobIn, app: App, response: Response) -> dict[str, Any]:
    """Submit a job. With an idempotency key seen before: the earlier job, status 200."""
    submitted = await app.jobs.submit(_request(body))
    if not submitted.created:
        response.status_code = 200
    return _job(submitted.job, submitted.created)


@router.post(
    "/jobs/batch",
    status_code=201,
    response_model=BatchOut,
    dependencies=[allowed(Jobs.submit_many)],
)
async def submit_batch(body: BatchIn, app: App) -> dict[str, Any]:
    """Submit up to 1,000 jobs in one transaction: all of them, or none when one is invalid."""
    submitted = await app.jobs.submit_many([_request(job) for job in body.jobs])
    return {"jobs": [_job(item.job, item.created) for item in submitted]}


@router.get("/jobs", response_model=JobPage, dependencies=[allowed(Jobs.list)])
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
    jobs = await app.jobs.list(
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


@router.get("/jobs/{job_id}", response_model=JobOut, dependencies=[allowed(Jobs.wait)])
async def get_job(
    job_id: str, app: App, wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 0
) -> dict[str, Any]:
    """A job with its attempts. ``?wait=S`` holds the answer up to S seconds until the job ends."""
    if wait > 0:
        try:
            return _job(await app.jobs.wait(job_id, timeout=wait))
        except TimeoutError:
            pass
    return _job(await app.jobs.get(job_id))


@router.get(
    "/jobs/{job_id}/attempts", response_model=list[dict[str, Any]], dependencies=[allowed(Jobs.get)]
)
async def attempts(job_id: str, app: App) -> list[dict[str, Any]]:
    attempts: list[dict[str, Any]] = _job(await app.jobs.get(job_id))["attempts"]
    return attempts


@router.get(
    "/jobs/{job_id}/outputs",
    response_model=list[JobOutputOut],
    dependencies=[allowed(Jobs.get)],
)
async def outputs(job_id: str, app: App) -> list[dict[str, Any]]:
    """The output files the job's attempts uploaded (URI, size, SHA-256, path), oldest first."""
    job = await app.jobs.get(job_id)
    return [
        {**output_record_document(item), "attempt": attempt.number}
        for attempt in job.attempts
        for item in attempt.outputs
    ]


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, dependencies=[allowed(Jobs.cancel)])
async def cancel(job_id: str, app: App, body: CancelIn | None = None) -> dict[str, Any]:
    """Cancel a job that has not ended; a running attempt is stopped within seconds."""
    return _job(await app.jobs.cancel(job_id, body.reason if body else None))


@router.post("/jobs/{job_id}/retry", response_model=JobOut, dependencies=[allowed(Jobs.retry)])
async def retry(job_id: str, app: App) -> dict[str, Any]:
    """Run a FAILED or CANCELLED job again with its attempts renewed."""
    return _job(await app.jobs.retry(job_id))


@router.get(
    "/jobs/{job_id}/logs",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        429: problem_response("The token follows too many logs at once"),
    },
    dependencies=[allowed(Logs.check)],
)
async def logs(
    job_id: str,
    app: App,
    request: Request,
    token: Annotated[Token, Depends(caller)],
    attempt: Annotated[int | None, Query(ge=1)] = None,
    follow: bool = False,
    offset: Annotated[
        int, Query(ge=0, description="The first byte to send: what an earlier read already had")
    ] = 0,
) -> Response:
    """An attempt's log (the latest by default) as it is now, from byte ``offset`` on, with its
    Content-Length; ``?follow=true`` streams it until the job ends instead (at most a few
    streams at once per token: 429 past them)."""
    if follow:
        if offset:
            raise ValidationError("offset", "applies to a read of the log as it is, not to follow")
        await app.logs.check(job_id, attempt)  # a 404 now, not inside the stream
        slots: FollowSlots = request.app.state.follow_slots
        give_back = slots.take(token.id)
        if give_back is None:
            detail = f"a token follows at most {slots.limit} logs at once; end one first"
            return problem(429, "Too many requests", detail)
        stream = app.logs.follow(job_id, attempt)
        return SlotStream(stream, give_back=give_back, media_type="text/plain")
    span = await app.logs.open(job_id, attempt, offset)  # a 404 now, not inside the stream
    return StreamingResponse(
        app.logs.chunks(span),
        media_type="text/plain",
        headers={"Content-Length": str(span.length)},
    )
