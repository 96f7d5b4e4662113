"""Logs as a resource: an attempt's log, whole or followed live across retries."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from dockyard.app.core import Resource, requires, requires_stream
from dockyard.app.jobs import WAIT_POLL_SECONDS, find_job
from dockyard.domain.records import Job
from dockyard.domain.states import TERMINAL_STATES
from dockyard.domain.tokens import Permission
from dockyard.errors import NotFoundError

__all__ = ["Logs"]

READ = Permission.READ


class Logs(Resource):
    __slots__ = ()

    @requires(READ)
    async def check(self, job_id: str, attempt: int | None = None) -> None:
        """Raise NotFoundError unless the job (and the attempt, when given) exists."""
        _attempt_number(await find_job(self, job_id), attempt)

    @requires(READ)
    async def read(self, job_id: str, attempt: int | None = None) -> bytes:
        """The whole log of one attempt (the latest by default)."""
        job = await find_job(self, job_id)
        number = _attempt_number(job, attempt)
        return b"" if number == 0 else self._core.logs.read(job.id, number, 0, None)

    @requires_stream(READ)
    async def follow(self, job_id: str, attempt: int | None = None) -> AsyncGenerator[bytes, None]:
        """Yield the log as it is written, across retries, until the job ends."""
        logs, changes = self._core.logs, self._core.storage.changes
        job = await find_job(self, job_id)
        number = max(_attempt_number(job, attempt), 1)
        offset = 0
        while True:
            token = changes.token()
            chunk = logs.read(job.id, number, offset)
            if chunk:
                offset += len(chunk)
                yield chunk
                continue
            job = await find_job(self, job_id)
            # An attempt writes its last bytes before its state changes: read them first.
            rest = logs.read(job.id, number, offset, None)
            if rest:
                offset += len(rest)
                yield rest
            if attempt is None and job.attempt_count > number:
                number, offset = number + 1, 0  # the next attempt began
                continue
            if job.state in TERMINAL_STATES:
                return
            await changes.wait(token, WAIT_POLL_SECONDS)


def _attempt_number(job: Job, attempt: int | None) -> int:
    if attempt is None:
        return job.attempt_count
    if not 1 <= attempt <= max(job.attempt_count, 1):
        raise NotFoundError("attempt", f"{job.id} #{attempt}")
    return attempt
