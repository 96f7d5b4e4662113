"""Jobs as a resource: submit (one or many, all or none), read, list, cancel, retry, wait."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Sequence
from dataclasses import dataclass

from dockyard.app.core import Resource, requires
from dockyard.app.definitions import find_definition
from dockyard.domain import transitions
from dockyard.domain.definitions import parse_definition_ref
from dockyard.domain.jobs import SubmitRequest, new_job
from dockyard.domain.records import Definition, Job, JobId
from dockyard.domain.states import TERMINAL_STATES, JobState
from dockyard.domain.tokens import Permission
from dockyard.errors import ConflictError, NotFoundError, ValidationError
from dockyard.storage import JobQuery

__all__ = ["MAX_BATCH", "Jobs", "Submitted"]

READ, OPERATE = Permission.READ, Permission.OPERATE
MAX_BATCH = 10_000
MAX_PAGE = 10_000
#: How often ``wait`` looks again when no change was signalled.
WAIT_POLL_SECONDS = 0.2


@dataclass(frozen=True, slots=True, kw_only=True)
class Submitted:
    job: Job
    #: False when the idempotency key matched an earlier job, which is returned instead.
    created: bool


class Jobs(Resource):
    __slots__ = ()

    @requires(OPERATE)
    async def submit(self, request: SubmitRequest) -> Submitted:
        (submitted,) = await self._submit_many([request])
        return submitted

    @requires(OPERATE)
    async def submit_many(self, requests: Sequence[SubmitRequest]) -> builtins.list[Submitted]:
        """Submit many jobs in one transaction; all are validated before any is written."""
        return await self._submit_many(requests)

    async def _submit_many(self, requests: Sequence[SubmitRequest]) -> builtins.list[Submitted]:
        if len(requests) > MAX_BATCH:
            raise ValidationError("jobs", f"at most {MAX_BATCH} jobs per call")
        now = self._core.clock.now()
        definitions: dict[str, Definition] = {}
        jobs = []
        for index, request in enumerate(requests):
            if request.definition not in definitions:
                definitions[request.definition] = await find_definition(self, request.definition)
            try:
                jobs.append(new_job(request, definitions[request.definition], now))
            except ValidationError as error:
                if len(requests) == 1:
                    raise
                raise ValidationError(f"jobs.{index}.{error.field}", error.rule) from None
        inserted = await self._core.storage.jobs.insert(jobs)
        return [Submitted(job=item.job, created=item.created) for item in inserted]

    @requires(READ)
    async def get(self, job_id: str) -> Job:
        return await find_job(self, job_id)

    @requires(READ)
    async def list(
        self,
        *,
        states: Sequence[str] = (),
        queue: str | None = None,
        definition: str | None = None,
        group: str | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> builtins.list[Job]:
        """Jobs newest first; ``before`` is the ``next_cursor`` of the previous page."""
        try:
            parsed = frozenset(JobState(state.upper()) for state in states)
        except ValueError:
            raise ValidationError("state", f"must be one of {', '.join(JobState)}") from None
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError("limit", f"must be from 1 to {MAX_PAGE}")
        store = self._core.storage.jobs
        if before is not None and await store.get(JobId(before)) is None:
            raise ValidationError("cursor", f"no job {before!r}: pass a next_cursor you were given")
        return await store.select(
            JobQuery(
                states=parsed,
                queue=queue,
                definition_name=None if definition is None else parse_definition_ref(definition)[0],
                group_key=group,
                limit=limit,
                before=None if before is None else JobId(before),
            )
        )

    @requires(OPERATE)
    async def cancel(self, job_id: str, reason: str | None = None) -> Job:
        """Cancel a job that has not finished; a running attempt is stopped within seconds."""
        job = await find_job(self, job_id)
        if job.state in TERMINAL_STATES:
            raise ConflictError(f"job {job_id} is already {job.state}")
        return await self._apply_or_conflict(
            transitions.cancel(job, self._core.clock.now(), reason), job
        )

    @requires(OPERATE)
    async def retry(self, job_id: str) -> Job:
        """Requeue a FAILED or CANCELLED job with its attempts renewed.

        Refused (ConflictError) while its last attempt's body still runs on a worker: a new
        attempt never starts beside the old one (docs/guarantees.md).
        """
        job = await find_job(self, job_id)
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            raise ConflictError(
                f"job {job_id} is {job.state}; only FAILED or CANCELLED jobs can be retried"
            )
        now = self._core.clock.now()
        requeue = transitions.requeue(job, now)
        (applied,) = await self._core.storage.jobs.apply([requeue])
        if applied:
            return transitions.applied(job, requeue)
        # The guard failed: the job changed, or its last attempt's body still holds a lease (a
        # cancel its worker is still carrying out, an inline function past its timeout).
        latest = await find_job(self, job_id)
        stopping = latest.lease_expires_at is not None and latest.lease_expires_at >= now
        if latest.state in (JobState.FAILED, JobState.CANCELLED) and stopping:
            raise ConflictError(
                f"job {job_id}: its last attempt is still stopping on worker {latest.worker_id};"
                " retry once it has stopped"
            )
        raise ConflictError(f"job {job_id} changed state meanwhile; try again")

    async def _apply_or_conflict(self, transition: transitions.Transition, job: Job) -> Job:
        """Apply ``transition`` and return the job as it left it (a worker may move on at once)."""
        (applied,) = await self._core.storage.jobs.apply([transition])
        if not applied:
            raise ConflictError(f"job {job.id} changed state meanwhile; try again")
        return transitions.applied(job, transition)

    @requires(READ)
    async def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Return the job once it is SUCCEEDED, FAILED or CANCELLED."""
        changes = self._core.storage.changes
        async with asyncio.timeout(timeout):
            while True:
                token = changes.token()
                job = await find_job(self, job_id)
                if job.state in TERMINAL_STATES:
                    return job
                await changes.wait(token, WAIT_POLL_SECONDS)


async def find_job(resource: Resource, job_id: str) -> Job:
    """The job with its attempts (the operation that asks has checked its permission)."""
    job = await resource._core.storage.jobs.get(JobId(job_id))
    if job is None:
        raise NotFoundError("job", job_id)
    return job
