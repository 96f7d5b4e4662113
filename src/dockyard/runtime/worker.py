"""The worker: claim runnable jobs in batches, run them through executors, record how they end.

One asyncio loop drives everything. Jobs are claimed up to the free slots in one call; each runs
in its own task; the outcome an executor returns becomes a transition in one place
(:func:`dockyard.domain.transitions.after_outcome`). Side tasks renew leases, notice jobs that
were cancelled (or taken over) and stop them, and fence jobs whose lease cannot be renewed
(:mod:`dockyard.runtime.leases`), and sweep containers that dead workers left
(:mod:`dockyard.runtime.leftovers`). Beside it runs the maintenance service
(:mod:`dockyard.runtime.maintenance`), started and stopped with the worker, which rescues jobs
whose worker died when this worker leads. The worker sleeps until storage reports a change, a
slot frees up, or the next delayed job is due, with a polling fallback so that a lost wake-up
costs latency, never a job. It keeps the service contract of :mod:`dockyard.runtime.service`.

**A body never outlives its lease** (docs/guarantees.md). A job keeps its slot and its lease
until its body has ended, not merely until its outcome is known: an inline function that
outlives its timeout or its cancel is recorded at once (the end keeps the lease), and the lease
is let go only once the function has returned. A retry never starts beside a running body.

**A graceful stop** claims nothing more (a job claimed by a claim in flight at the stop never
starts: it is handed back at once), waits up to ``shutdown_grace`` for every running job, those
launched meanwhile included, then stops the rest and hands back only attempts whose bodies were
really stopped. A body that ended by itself records its real outcome, and an inline function
that cannot be stopped is waited for (a warning names it) and records its own outcome: a job
whose attempt already ran is never handed back to run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from dockyard.domain import transitions
from dockyard.domain.clock import Clock
from dockyard.domain.jobs import effective_spec
from dockyard.domain.outcomes import Outcome, OutcomeKind
from dockyard.domain.records import Definition, DefinitionSpec, Job, JobId
from dockyard.domain.states import TERMINAL_STATES, JobState
from dockyard.executors.port import Closes, Executor, LeavesThingsBehind, starts_at_once
from dockyard.logs.port import LogStore
from dockyard.runtime.attempts import run_attempt
from dockyard.runtime.leases import LeaseKeeper, Running
from dockyard.runtime.leftovers import LeftoverSweep
from dockyard.runtime.maintenance import Maintenance
from dockyard.runtime.service import Service
from dockyard.runtime.shutdown import shut_down
from dockyard.storage.ports import ClaimRequest, Storage, WorkerInfo
from dockyard.storage.ports.jobs import LeaseEnd

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
    #: The executor kinds offered, whose jobs alone are claimed; None: every executor given.
    executors: tuple[str, ...] | None = None
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")


def _stop_unless_started(start: asyncio.Future[bool], running: Running) -> None:
    if start.cancelled() or start.exception() is not None or not start.result():
        running.cancelled.set()


def _never_started() -> asyncio.Future[bool]:
    """A start that was never needed: the attempt ends as it is."""
    never: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    never.set_result(True)
    return never


class Worker(Service):
    """Runs jobs until :meth:`stop` is called (or, in burst mode, until none is runnable).

    A stop ends the claiming at once; running jobs get ``shutdown_grace`` to finish, then are
    stopped and handed back (those whose bodies could be stopped). ``started`` is set once the
    worker is registered and claims. ``exit_process`` ends the process when bodies that cannot
    be stopped would outlive their leases (``os._exit``; tests pass their own).
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
        exit_process: Callable[[int], object] = os._exit,
    ) -> None:
        super().__init__()
        self.config = config
        self.maintenance = maintenance
        self.id = config.worker_id
        self._storage = storage
        # Only the offered executors run; all are closed (lambda shares http's connections).
        self._built = executors
        offered = executors.keys() if config.executors is None else config.executors
        self._executors = {kind: executors[kind] for kind in offered if kind in executors}
        self.executors = tuple(self._executors)  # the kinds offered, of the jobs it claims
        # Their jobs are claimed RUNNING, their attempts started by the claim: no start write.
        self._at_once = tuple(k for k, e in self._executors.items() if starts_at_once(e))
        self._logs = logs
        self._clock = clock
        self._rng = rng or random.Random()
        #: The attempts in this worker's hands, by job and attempt (see runtime/leases.py).
        self._running: dict[tuple[JobId, int], Running] = {}
        self._definitions: dict[tuple[str, int], Definition] = {}
        self._wake = asyncio.Event()
        self._pending: list[tuple[transitions.Transition, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._started_at = clock.now()
        self.leases = LeaseKeeper(
            storage=storage,
            clock=clock,
            worker_id=self.id,
            running=self._running,
            lease_seconds=config.lease_seconds,
            check_seconds=config.check_seconds,
            exit_process=exit_process,
        )
        self.leftovers = LeftoverSweep(storage, self._executors, self.id, clock)
        self.jobs_done = 0

    def _on_stop(self) -> None:
        self._wake.set()  # the claim loop sleeps on it

    @property
    def running(self) -> int:
        return len(self._running)

    async def _serve(self) -> None:
        self._started_at = self._clock.now()
        await self._storage.queues.register_worker(self._info())
        await self.leftovers.sweep(force=True)
        helpers = [
            asyncio.create_task(self.leases.monitor()),
            asyncio.create_task(self.leases.fencing()),
            asyncio.create_task(self._sweeping()),
        ]
        try:
            if self.maintenance is not None:
                await self.maintenance.start()
            self._announce_started()
            await self._claim_loop()
        finally:
            await shut_down(
                self._running,
                grace=self.config.shutdown_grace,
                check=self.config.check_seconds,
            )
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            if self.maintenance is not None:
                self.maintenance.stop()  # lets its round finish: rescues and prunes are guarded
                await self.maintenance.wait()
            stopped = replace(self._info(), stopped_at=self._clock.now())
            await self._storage.queues.register_worker(stopped)
            for executor in self._built.values():
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
                self._launch_all(claimed)
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
            executors=self.executors,
            starts_at_once=self._at_once,
        )

    async def _sleep(self, token: int, *, free: int) -> None:
        """Wait for a wake-up: a freed slot or a stop always; a storage change when a slot is free."""
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wake.wait())]
        if free > 0:
            timeout = self.config.poll_seconds
            due = await self._storage.jobs.next_runnable_at(self.config.queues, self.executors)
            if due is not None:
                timeout = min(timeout, max((due - self._clock.now()).total_seconds(), 0.0))
            waits.append(asyncio.ensure_future(self._storage.changes.wait(token, timeout)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def _sweeping(self) -> None:
        """Sweep what dead workers left, every ``lease / 3`` (their leases run out meanwhile)."""
        while True:
            await asyncio.sleep(self.config.lease_seconds / 3)
            try:
                await self.leftovers.sweep()
            except Exception:
                log.exception("sweeping leftovers failed; trying again later")

    def _launch_all(self, jobs: Iterable[Job]) -> None:
        """Run claimed jobs; those whose lease the claim wrote nearly spent (it waited through
        an outage) are renewed first, in one heartbeat (see :mod:`dockyard.runtime.leases`)."""
        fresh: list[Job] = []
        stale: list[Job] = []
        for job in jobs:
            (stale if self.leases.stale(job) else fresh).append(job)
        renewal = asyncio.ensure_future(self.leases.renew_claimed(stale)) if stale else None
        for job in fresh:
            self._launch(job)
        for job in stale:
            self._launch(job).renewal = renewal

    def _launch(self, job: Job) -> Running:
        running = Running(job=job, lease_until=job.lease_expires_at)
        self.leases.hold(running)
        running.task = asyncio.create_task(self._execute(running), name=f"job-{job.id}")
        self._running[running.key] = running
        return running

    async def _definition(self, job: Job) -> Definition:
        key = (job.definition_name, job.definition_revision)
        definition = self._definitions.get(key)
        if definition is None:
            found = await self._storage.definitions.get(*key)
            if found is None:
                raise LookupError(f"definition {job.definition_ref} is gone")
            definition = self._definitions[key] = found
        return definition

    async def _execute(self, running: Running) -> None:
        job = running.job
        try:
            if not await self._admit(running):
                return
            definition = await self._definition(job)
            spec = effective_spec(definition, job)
            running.started = True
            outcome = await self._run_attempt(job, spec, running)
            # No start: the attempt ended before its body began (a failed fetch), from STARTING.
            started = running.start or _never_started()
            if started.done() and started.exception() is None and not started.result():
                # The cancel that beat the start also closed the attempt; its lease stays ours
                # until the body has ended.
                await self._body_ended(running)
                running.let_go = True
                return
            await self._end(running, spec, outcome)
            await started
        except Exception:
            log.exception("worker failed to run job %s; its lease will expire", job.id)
        finally:
            if running.let_go and not self.leases.superseded(running):
                await self._let_go(running)
            self._running.pop(running.key, None)
            self.leases.drop(running)
            self.jobs_done += 1
            self._wake.set()

    def _start(self, running: Running) -> asyncio.Future[bool]:
        """Write the start while the attempt begins, saving a round trip per job; if it does
        not apply (the job was cancelled since its claim), the attempt is stopped. A job claimed
        RUNNING (its kind starts at once) was started by its claim: nothing to write."""
        if running.job.state is JobState.RUNNING:
            done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            done.set_result(True)
            return done
        start = transitions.start(running.job, self.id, self._clock.now())
        started = asyncio.ensure_future(self._apply(start))
        started.add_done_callback(lambda done: _stop_unless_started(done, running))
        return started

    async def _admit(self, running: Running) -> bool:
        """Whether a claimed job may start: not once the worker stops, and not on a lease that
        could not be renewed (a job claimed by a claim that waited through an outage)."""
        if running.after is not None:
            await asyncio.wait({running.after})
        if self.stopping:
            # Claimed by a claim in flight at the stop: it never started, so it goes back.
            await self._record(running, self._unstarted(running))
            return False
        if running.renewal is None:
            return True
        renewal = await running.renewal
        if renewal.lease_until is None:
            log.warning(
                "could not renew the lease of job %s before it ran out; handing it back",
                running.job.id,
            )
            await self._record(running, self._unstarted(running))
            return False
        if running.job.id not in renewal.held:
            running.let_go = True  # cancelled meanwhile: the cancel closed the attempt
            return False
        self.leases.held(running, renewal.lease_until)
        return True

    def _unstarted(self, running: Running) -> transitions.Transition:
        return transitions.release(running.job, self.id, self._now(), unstarted=True)

    async def _end(self, running: Running, spec: DefinitionSpec, outcome: Outcome) -> None:
        """Record how the attempt ended; keep the lease while its body still runs."""
        job = running.job
        # A lapsed lease: the watchdog may have killed the body, the rescue may have the job.
        lapsed = self.leases.lapse(running)
        if lapsed or (running.hand_back and outcome.kind is OutcomeKind.CANCELLED):
            if not running.lingering:
                # Stopped by the shutdown, the fence or the watchdog: hand the attempt back
                # (guarded: a rescue that came first stands); it does not count.
                await self._record(running, transitions.release(job, self.id, self._now()))
                return
            if running.fenced or lapsed:
                self.leases.end_process([job.id])
            log.warning(
                "job %s runs an inline function that cannot be stopped; waiting for it to return",
                job.id,
            )
            assert running.body is not None
            outcome = await running.body  # its own outcome: the attempt ran, it is not given back
        decided = self._after(job, spec, outcome)
        if running.lingering and decided.to in TERMINAL_STATES:
            # Recorded now (a timeout fails the job at its time); the lease stays until the body
            # has ended, so that no retry starts beside it.
            await self._record(running, self._after(job, spec, outcome, keep_lease=True))
            await self._body_ended(running)
            running.let_go = True
            return
        await self._body_ended(running)  # a retry must not be claimable beside the body
        await self._record(running, decided)

    def _after(
        self, job: Job, spec: DefinitionSpec, outcome: Outcome, *, keep_lease: bool = False
    ) -> transitions.Transition:
        return transitions.after_outcome(
            job,
            spec.retry,
            outcome,
            worker_id=self.id,
            now=self._now(),
            rng=self._rng,
            keep_lease=keep_lease,
        )

    def _now(self) -> Any:
        return self._clock.now()

    async def _record(self, running: Running, transition: transitions.Transition) -> None:
        """Apply the worker's transition for ``running``; when it does not apply (the job was
        cancelled, rescued or ended meanwhile) or keeps the lease, the lease is let go later."""
        if self.leases.superseded(running):
            log.warning("job %s attempt %d is not recorded: a newer attempt runs", *running.key)
            return
        applied = await self._apply(transition)
        if not applied or transition.updates.get("lease_expires_at", True) is not None:
            running.let_go = True

    @staticmethod
    async def _body_ended(running: Running) -> None:
        if running.body is not None:
            await asyncio.wait({running.body})

    async def _let_go(self, running: Running) -> None:
        """The body has ended: let go of a lease the job may still hold (guarded, idempotent)."""
        try:
            await self._storage.jobs.end_leases(
                LeaseEnd(worker_id=self.id, job_ids=(running.job.id,))
            )
        except Exception as error:  # it runs out by itself: only a retry by request waits for it
            log.warning("could not let go of the lease of job %s: %s", running.job.id, error)

    async def _run_attempt(self, job: Job, spec: DefinitionSpec, running: Running) -> Outcome:
        executor = self._executors.get(spec.executor.kind)
        if isinstance(executor, LeavesThingsBehind):
            self.leftovers.busy = True  # its engine is swept at every round while it is used

        def begin() -> None:  # the body starts: write the start (once)
            if running.start is None:
                running.start = self._start(running)

        return await run_attempt(
            executor,
            job=job,
            spec=spec,
            running=running,
            logs=self._logs,
            worker_id=self.id,
            begin=begin,
        )

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
            # Jobs that end in this batch free their slots: fill them in the same transaction
            # (never once stopping: what a claim takes then is handed back unstarted).
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
            self._launch_all(claimed)
