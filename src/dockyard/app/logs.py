"""Logs as a resource: an attempt's log, read from an offset or followed live across retries.

Whatever a log's size (up to its definition's ``log_max_bytes``), a reader holds one piece of
:data:`LOG_CHUNK_BYTES` at a time: :meth:`Logs.open` fixes which bytes a read covers (from an
offset to the log's size at that moment, so that a server can announce the length) and
:meth:`Logs.chunks` yields them piece by piece; following reads the same way.

Following is change-driven. A follower re-reads its job only when the store has changed (its
state is what ends a stream), and between changes it only reads its log file, which costs no
query. All the followers of a process share one waiter on the store's change feed
(:class:`_ChangeWatch`), started by the first and stopped with the last, so a hundred followers
cost the store what one does. A lost wake-up costs latency only: each follower re-reads its job
every :data:`RECHECK_SECONDS` anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from dockyard.app.core import Resource, requires, requires_stream
from dockyard.app.jobs import find_job
from dockyard.domain.records import Job
from dockyard.domain.states import TERMINAL_STATES
from dockyard.domain.tokens import Permission
from dockyard.errors import NotFoundError, ValidationError
from dockyard.storage.ports import ChangeFeed

__all__ = ["LOG_CHUNK_BYTES", "LOG_POLL_SECONDS", "RECHECK_SECONDS", "LogRange", "Logs"]

READ = Permission.READ
log = logging.getLogger("dockyard.logs")

#: How often a follower looks at its log file for new bytes (no query: a read of a local file).
LOG_POLL_SECONDS = 0.2
#: How long a follower trusts its job without a change signalled (a lost wake-up's cost).
RECHECK_SECONDS = 5.0
#: How long the shared waiter waits on the change feed at a time.
_WATCH_SECONDS = 1.0
#: The most of a log one reader reads, holds and sends at once.
LOG_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRange:
    """Bytes ``start`` to ``end`` of attempt ``attempt`` of a job's log (0: no attempt yet).
    Bytes of a log never change once written, so the range reads the same later."""

    job_id: str
    attempt: int
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


class Logs(Resource):
    __slots__ = ()

    @requires(READ)
    async def check(self, job_id: str, attempt: int | None = None) -> None:
        """Raise NotFoundError unless the job (and the attempt, when given) exists."""
        _attempt_number(await find_job(self, job_id), attempt)

    @requires(READ)
    async def open(self, job_id: str, attempt: int | None = None, offset: int = 0) -> LogRange:
        """The bytes of one attempt's log (the latest by default) from byte ``offset`` to its
        end now; an offset at or past the end gives none (nothing new yet). NotFoundError for an
        unknown job or attempt."""
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValidationError("offset", "must be a number of bytes, 0 or more")
        job = await find_job(self, job_id)
        number = _attempt_number(job, attempt)
        size = 0 if number == 0 else self._core.logs.size(job.id, number)
        return LogRange(job_id=job.id, attempt=number, start=min(offset, size), end=size)

    @requires_stream(READ)
    async def chunks(self, span: LogRange) -> AsyncGenerator[bytes, None]:
        """Yield the bytes of ``span`` in pieces of at most :data:`LOG_CHUNK_BYTES`; fewer
        than its length only if the log was removed meanwhile (its job was pruned)."""
        logs, offset, end = self._core.logs, span.start, span.end
        while offset < end:
            chunk = logs.read(span.job_id, span.attempt, offset, min(LOG_CHUNK_BYTES, end - offset))
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    @requires_stream(READ)
    async def follow(self, job_id: str, attempt: int | None = None) -> AsyncGenerator[bytes, None]:
        """Yield the log as it is written, across retries, until the job ends."""
        logs = self._core.logs
        loop = asyncio.get_running_loop()
        async with _watching(self._core.storage.changes) as watch:
            generation = watch.generation  # read before the job: a change after it is seen
            job = await find_job(self, job_id)
            number = max(_attempt_number(job, attempt), 1)
            offset = 0
            recheck_at = loop.time() + RECHECK_SECONDS
            unread = True  # the job as last read has not been acted on yet
            while True:
                chunk = logs.read(job.id, number, offset, LOG_CHUNK_BYTES)
                if chunk:
                    offset += len(chunk)
                    yield chunk
                    continue
                if not unread and (watch.generation != generation or loop.time() >= recheck_at):
                    generation = watch.generation
                    job = await find_job(self, job_id)
                    recheck_at = loop.time() + RECHECK_SECONDS
                    unread = True
                if unread:
                    unread = False
                    # An attempt writes its last bytes before its state changes: read them first.
                    while rest := logs.read(job.id, number, offset, LOG_CHUNK_BYTES):
                        offset += len(rest)
                        yield rest
                    if attempt is None and job.attempt_count > number:
                        number, offset = number + 1, 0  # the next attempt began
                        unread = True  # the same read may show it ended too
                        continue
                    if job.state in TERMINAL_STATES:
                        return
                await watch.wait(generation, LOG_POLL_SECONDS)


def _attempt_number(job: Job, attempt: int | None) -> int:
    if attempt is None:
        return job.attempt_count
    if not 1 <= attempt <= max(job.attempt_count, 1):
        raise NotFoundError("attempt", f"{job.id} #{attempt}")
    return attempt


class _ChangeWatch:
    """One waiter on a change feed for every follower of this process: ``generation`` goes up
    after each change the feed signals, and :meth:`wait` returns when it does."""

    def __init__(self, changes: ChangeFeed) -> None:
        self._changes = changes
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self.generation = 0
        self.followers = 0

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="dockyard-log-watch")

    def stop(self) -> None:
        """Stop watching, without waiting: the last follower's stream ends at once. The task
        also looks at ``_stopped`` each round, since a cancel can be lost in a wait that ends
        at the same moment (``asyncio.wait_for`` before Python 3.12)."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def wait(self, generation: int, timeout: float) -> None:
        """Return after a change since ``generation``, or after ``timeout``."""
        if self.generation != generation:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        # One token read per round, used both to judge this wait and for the next one: a change
        # between two reads would otherwise be seen by neither.
        token = self._changes.token()
        while not self._stopped:
            deadline = loop.time() + _WATCH_SECONDS
            try:
                await self._changes.wait(token, _WATCH_SECONDS)
            except Exception as error:  # followers still recheck; say why they are slower
                log.warning("log followers' change watch: %s", error)
                await asyncio.sleep(_WATCH_SECONDS)
                deadline = loop.time() + 1  # and take it as a change
            latest = self._changes.token()
            # The feed returns early only for a change, though not every backend moves the token.
            if latest != token or loop.time() < deadline:
                self.generation += 1
                self._changed.set()
                self._changed = asyncio.Event()
            token = latest


#: The watch of each change feed that has followers now.
_watches: weakref.WeakKeyDictionary[ChangeFeed, _ChangeWatch] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def _watching(changes: ChangeFeed) -> AsyncIterator[_ChangeWatch]:
    """The shared watch of ``changes``, running while at least one follower is inside."""
    watch = _watches.get(changes)
    if watch is None:
        watch = _watches[changes] = _ChangeWatch(changes)
    watch.followers += 1
    watch.start()
    try:
        yield watch
    finally:
        watch.followers -= 1
        if watch.followers == 0:
            del _watches[changes]
            watch.stop()
