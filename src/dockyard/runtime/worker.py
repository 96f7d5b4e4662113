"""The worker: claim runnable jobs in batches, run them through executors, record how they end.

One asyncio loop drives everything. Jobs are claimed up to the free slots in one call; each runs
in its own task; the outcome an executor returns becomes a transition in one place
(:func:`dockyard.domain.transitions.after_outcome`). A side task renews leases and notices jobs
that were cancelled (or taken over) and stops them. Beside it runs the maintenance service
(:mod:`dockyard.runtime.maintenance`), started and stopped with the worker, which rescues jobs
whose worker died when this worker leads. The worker sleeps until storage reports a change, a
slot frees up, or the next delayed job is due, with a polling fallback so that a lost wake-up
costs latency, never a job. It keeps the service contract of :mod:`dockyard.runtime.service`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from dockyard.domain import transitions
from dockyard.domain.clock import Clock
from dockyard.domain.jobs import effective_spec
from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import Definition, DefinitionSpec, Job, JobId
from dockyard.domain.states import JobState
from dockyard.executors.port import Closes, ExecutionContext, Executor
from dockyard.logs.port import LogStore
from dockyard.runtime.leftovers import remove_leftovers
from dockyard.runtime.maintenance import Maintenance
from dockyard.runtime.service import Service
from dockyard.storage.ports import ClaimRequest, Heartbeat, Storage, WorkerInfo

__all__ = ["Worker", "WorkerConfig"]

log = logging.getLogger("dockyard.worker")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    #: Queues to take jobs from; None takes from every queue.
    queues: tuple[str, ...] | None = None
    #: Jobs run at once.
    concurrency: int = 4
    #: How long a claim holds a job without a heartbeat; a dead worker's jobs wait this long.
    lease_seconds: float = 30.0
    #: How often running jobs are checked for cancellation.
    check_seconds: float = 0.5
    #: Longest idle sleep without a wake-up (the polling fallback).
    poll_seconds: float = 1.0
    #: How long running jobs may finish after a stop before they are handed back.
    shutdown_grace: float = 30.0
    #: Work until nothing is runnable, then return.
    burst: bool = False
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")


@dataclass(slots=True)
class _Running:
    job: Job
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set at shutdown: the attempt is handed back instead of being judged.
    hand_back: bool = False
    task: asyncio.Task[None] | None = None
    #: Until when the store holds the job for this worker, as far as this worker knows.
    lease_until: datetime | None = None


def _stop_unless_started(start: asyncio.Future[bool], running: _Running) -> None:
    if start.cancelled() or start.exception() is not None or not start.result():
        running.cancelled.set()


class Worker(Service):
    """Runs jobs until :meth:`stop` is called (or, in burst mode, until none is runnable).

    A stop ends the claiming at once; running jobs get ``shutdown_grace`` to finish, then are
    handed back. ``started`` is set once the worker is registered and claims.
    """

    name = "worker"

    def __init__(
        self,
        *,
        storage: Storage,
        executors: Mapping[str, Executor],
        logs: LogStore,
        clock: Clock,
        config: WorkerConfig,
        rng: random.Random | None = None,
        maintenance: Maintenance | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.maintenance = maintenance
        self.id = config.worker_id
        self._storage = storage
        self._executors = executors
        self._logs = logs
        self._clock = clock
        self._rng = rng or random.Random()
        self._running: dict[JobId, _Running] = {}
        self._definitions: dict[tuple[str, int], Definition] = {}
        self._wake = asyncio.Event()
        self._pending: list[tuple[transitions.Transition, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._started_at = clock.now()
        self.jobs_done = 0

    def _on_stop(self) -> None:
        self._wake.set()  # the claim loop sleeps on it

    @property
    def running(self) -> int:
        return len(self._running)

    async def _serve(self) -> None:
        self._started_at = self._clock.now()
        await self._storage.queues.register_worker(self._info())
        await remove_leftovers(self._storage, self._executors, self.id)
        helpers = [asyncio.create_task(self._monitor()), asyncio.create_task(self._fencing())]
        try:
            if self.maintenance is not None:
                await self.maintenance.start()
            self._announce_started()
            await self._claim_loop()
        finally:
            await self._shut_down()
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            if self.maintenance is not None:
                self.maintenance.stop()  # lets its round finish: rescues and prunes are guarded
                await self.maintenance.wait()
            stopped = replace(self._info(), stopped_at=self._clock.now())
            await self._storage.queues.register_worker(stopped)
            for executor in self._executors.values():
                if isinstance(executor, Closes):
                    await executor.aclose()

    def _info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            queues=self.config.queues,
            concurrency=self.config.concurrency,
            started_at=self._started_at,
            heartbeat_at=self._clock.now(),
        )

    async def _claim_loop(self) -> None:
        config = self.config
        while not self.stopping:
            self._wake.clear()
            free = config.concurrency - len(self._running)
            claimed: list[Job] = []
            if free > 0:
                claimed = await self._storage.jobs.claim(self._claim_request(free))
                for job in claimed:
                    self._launch(job)
                if claimed and len(claimed) == free:
                    continue
            if config.burst and not claimed and not self._running:
                return
            # Read after the claim: its own commit bumps the change signal, so a token read
            # before it would end the sleep below at once and an idle worker would spin.
            token = self._storage.changes.token()
            await self._sleep(token, free=free - len(claimed))

    def _claim_request(self, limit: int) -> ClaimRequest:
        now = self._clock.now()
        return ClaimRequest(
            worker_id=self.id,
            queues=self.config.queues,
            limit=limit,
            now=now,
            lease_until=now + timedelta(seconds=self.config.lease_seconds),
        )

    async def _sleep(self, token: int, *, free: int) -> None:
        """Wait for a wake-up: a freed slot or a stop always; a storage change when a slot is free."""
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wake.wait())]
        if free > 0:
            timeout = self.config.poll_seconds
            due = await self._storage.jobs.next_runnable_at(self.config.queues)
            if due is not None:
                timeout = min(timeout, max((due - self._clock.now()).total_seconds(), 0.0))
            waits.append(asyncio.ensure_future(self._storage.changes.wait(token, timeout)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def _launch(self, job: Job) -> None:
        running = _Running(job=job, lease_until=job.lease_expires_at)
        running.task = asyncio.create_task(self._execute(running), name=f"job-{job.id}")
        self._running[job.id] = running

    async def _definition(self, job: Job) -> Definition:
        key = (job.definition_name, job.definition_revision)
        definition = self._definitions.get(key)
        if definition is None:
            found = await self._storage.definitions.get(*key)
            if found is None:
                raise LookupError(f"definition {job.definition_ref} is gone")
            definition = self._definitions[key] = found
        return definition

    async def _execute(self, running: _Running) -> None:
        job = running.job
        try:
            definition = await self._definition(job)
            spec = effective_spec(definition, job)
            # The start is written while the attempt begins, saving a round trip per job; if it
            # does not apply (the job was cancelled since its claim), the attempt is stopped.
            started = asyncio.ensure_future(
                self._apply(transitions.start(job, self.id, self._clock.now()))
            )
            started.add_done_callback(lambda done: _stop_unless_started(done, running))
            outcome = await self._run_attempt(job, spec, running)
            if started.done() and started.exception() is None and not started.result():
                return  # the cancel that beat the start also closed the attempt
            now = self._clock.now()
            if running.hand_back:
                transition = transitions.release(job, self.id, now)
            else:
                transition = transitions.after_outcome(
                    job, spec.retry, outcome, worker_id=self.id, now=now, rng=self._rng
                )
            # The end does not wait for the start's commit: batches are written one at a time
            # and in order, so a job that ends before its start was written has both in one
            # transaction (one commit instead of two), and if the start does not apply, neither
            # does the end (its guard expects RUNNING).
            await self._apply(transition)
            await started
        except Exception:
            log.exception("worker failed to run job %s; its lease will expire", job.id)
        finally:
            self._running.pop(job.id, None)
            self.jobs_done += 1
            self._wake.set()

    async def _run_attempt(self, job: Job, spec: DefinitionSpec, running: _Running) -> Outcome:
        """Run one attempt through its executor; an executor's bug becomes a failed attempt."""
        executor = self._executors.get(spec.executor.kind)
        if executor is None:
            return Outcome.failed(
                reason="NoExecutor",
                status_reason=f"This worker has no {spec.executor.kind} executor",
            )
        sink = self._logs.open(job.id, job.attempt_count, spec.log_max_bytes)
        context = ExecutionContext(
            job=job,
            attempt=job.attempt_count,
            spec=spec,
            log=sink,
            cancelled=running.cancelled,
            worker_id=self.id,
        )
        try:
            return await executor.run(context)
        except Exception as error:  # an executor bug must not kill the worker
            log.exception("executor failed on job %s", job.id)
            return Outcome.failed(
                reason="ExecutorError", status_reason=f"{type(error).__name__}: {error}"
            )
        finally:
            sink.close()

    async def _apply(self, transition: transitions.Transition) -> bool:
        """Apply a transition together with the others made meanwhile: one write for many jobs.

        While one batch is being written, new transitions queue up and go in the next, so under
        load starts and finishes share transactions without waiting on a timer. Batches are
        written strictly one after the other, in the order the transitions were made: a job's
        end is never written before its start.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((transition, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            pending = [transition for transition, _ in batch]
            # Jobs that end in this batch free their slots: fill them in the same transaction.
            ending = sum(1 for transition in pending if transition.to is not JobState.RUNNING)
            free = self.config.concurrency - len(self._running) + ending
            claimed: list[Job] = []
            try:
                if free > 0 and ending and not self.stopping:
                    applied, claimed = await self._storage.jobs.apply_and_claim(
                        pending, self._claim_request(free)
                    )
                else:
                    applied = await self._storage.jobs.apply(pending)
            except Exception as error:
                for _, future in batch:
                    future.set_exception(error)
                continue
            for (_, future), result in zip(batch, applied, strict=True):
                future.set_result(result)
            for job in claimed:
                self._launch(job)

    async def _monitor(self) -> None:
        """Renew leases and stop jobs that are no longer ours."""
        config = self.config
        loop = asyncio.get_running_loop()
        renew_every = config.lease_seconds / 3
        next_renewal = loop.time()
        while True:
            try:
                renew = loop.time() >= next_renewal
                if renew:
                    next_renewal = loop.time() + renew_every
                if self._running or renew:
                    await self._check_running(renew)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker monitor failed; retrying")
            await asyncio.sleep(config.check_seconds)

    async def _check_running(self, renew: bool) -> None:
        now = self._clock.now()
        lease_until = now + timedelta(seconds=self.config.lease_seconds) if renew else None
        ids = tuple(self._running)
        beat = Heartbeat(worker_id=self.id, job_ids=ids, now=now, lease_until=lease_until)
        # A renewal still unanswered when a lease runs out comes too late: stop waiting for it
        # (the store may be unreachable, the call hanging), so that _fence can act in time.
        leases = [r.lease_until for r in self._running.values() if r.lease_until is not None]
        timeout = None
        if leases:
            timeout = max((min(leases) - now).total_seconds() - self._fence_margin, 0.1)
        lost = await asyncio.wait_for(self._storage.jobs.heartbeat(beat), timeout)
        for job_id in ids:
            running = self._running.get(job_id)
            if running is None:
                continue
            if job_id in lost:
                running.cancelled.set()
            elif lease_until is not None:
                running.lease_until = lease_until

    async def _fencing(self) -> None:
        """Fence on a timer of its own, so that a heartbeat held up in the driver cannot delay it.

        A heartbeat cut off mid-query is cancelled by the timeout of :meth:`_check_running`,
        but psycopg then tries to cancel the query on the server and waits for it to end, up to
        5 s each, before the cancellation goes through: long past a short lease.
        """
        while True:
            self._fence()
            await asyncio.sleep(self.config.check_seconds)

    @property
    def _fence_margin(self) -> float:
        return min(2 * self.config.check_seconds, self.config.lease_seconds / 3)

    def _fence(self) -> None:
        """Stop the jobs whose lease runs out before this worker could renew it.

        Another worker rescues such a job and runs it again: stopping ours first keeps one
        job from running twice at once on two hosts (this one cut off from the store).
        """
        deadline = self._clock.now() + timedelta(seconds=self._fence_margin)
        for running in self._running.values():
            expiring = running.lease_until is not None and running.lease_until <= deadline
            if expiring and not running.cancelled.is_set():
                log.warning("could not renew the lease of job %s; stopping it", running.job.id)
                running.hand_back = True
                running.cancelled.set()

    async def _shut_down(self) -> None:
        tasks = [running.task for running in self._running.values() if running.task is not None]
        if not tasks:
            return
        log.info("waiting up to %gs for %d running job(s)", self.config.shutdown_grace, len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=self.config.shutdown_grace)
        for running in list(self._running.values()):
            running.hand_back = True
            running.cancelled.set()
        if pending:
            await asyncio.wait(pending)
