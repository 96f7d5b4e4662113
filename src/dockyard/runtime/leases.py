"""How a worker keeps its leases, and stops its bodies before a lease it cannot keep runs out.

A lease is the store's promise that no other worker runs the job: the rescue takes a job only
once its lease has expired. Its other half is the worker's: **a body never outlives its lease**
(docs/guarantees.md). :class:`LeaseKeeper` keeps both halves for one worker:

- **Renewal.** Every ``lease / 3`` one heartbeat renews the lease of every job the worker holds,
  whatever the job's state (a cancelled job's body may still be stopping, an inline function past
  its timeout still runs), and names the jobs no longer active in its hands, whose bodies are
  then stopped. A renewal that fails (the store unreachable, a connection cut) is not a lost
  lease: it is tried again at every check until the lease's own deadline.
- **Self-fencing, on the worker's own clock.** A job whose lease would run out before it could
  be renewed is stopped a margin ahead (``min(2 × check_seconds, lease / 3)``) and handed back,
  so that the rescue elsewhere never starts it beside a body that still runs here. A body that
  cannot be stopped (an inline function on a thread) leaves one way out: the worker process
  ends (CRITICAL log naming the jobs, then ``os._exit``), since only the end of the process ends
  the thread; its reaper then stops the worker's other bodies.
- **A watchdog for a worker that cannot act** (frozen by SIGSTOP, a paused VM, a stuck loop).
  Every lease the worker holds is told to its reaper (:mod:`dockyard.executors.reaper`) as it
  is taken and renewed, as seconds left less half the margin (:attr:`LeaseKeeper.ahead`); the
  reaper kills the attempt's processes and containers when that passes unrenewed. A lease that
  ran out that far by the worker's clock has **lapsed**: the worker never renews it again (the
  store would renew an expired lease the rescue has not reached yet, after the watchdog killed
  the body), and hands the attempt back with a guarded release, whatever its body came to (the
  rescue's write, if it came first, stands). An inline thread whose lease lapsed while the
  worker was frozen resumed with it: the fence ends the process at once when it wakes.
- **Two attempts of one job** can be in a worker's hands at once only for an instant (the old
  one's body has ended, its lease is let go, and a retry of the job is claimed by the same
  worker before the old one is gone); :class:`Running` is keyed by job and attempt, and the
  worker starts the new attempt only once the old one is gone.
- **Leases that start when the claim is applied.** A claim carries a lease computed from the
  worker's clock when the request was built; a claim that waited through a database outage
  writes a lease that has (nearly) run out. Such jobs (less than half a lease left when the claim
  returns) are renewed before they start (:meth:`LeaseKeeper.renew_claimed`); one whose renewal
  fails until its lease has run out is not started but handed back with a guarded release: the
  attempt does not count (a rescue would count it as lost), and the guard makes the release a
  no-op if the rescue came first.

What this relies on: the worker's clock runs at the rate of the other workers' (the lease is
measured on the worker's clock, expiry on the rescuer's); a skew between hosts must stay well
under the fence's margin plus the lease's unspent part.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dockyard.domain.clock import Clock
from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import Job, JobId
from dockyard.executors.port import lease_key
from dockyard.executors.reaper import ReaperUnavailable, check_reaper, shared_reaper
from dockyard.storage.ports import Heartbeat, Storage

__all__ = ["EXIT_UNSTOPPABLE", "LeaseKeeper", "Renewal", "Running"]

log = logging.getLogger("dockyard.worker")

#: The worker's exit status when it ends itself to stop bodies it cannot stop (EX_SOFTWARE).
EXIT_UNSTOPPABLE = 70


@dataclass(slots=True)
class Running:
    """One job in a worker's hands, from its claim until its body has ended."""

    job: Job
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set at shutdown or by the fence: an attempt whose body was stopped is handed back.
    hand_back: bool = False
    #: The hand-back came from the fence: the lease is about to run out.
    fenced: bool = False
    task: asyncio.Task[None] | None = None
    #: Until when the store holds the job for this worker, as far as this worker knows.
    lease_until: datetime | None = None
    #: The body was started: the fence stops only started bodies.
    started: bool = False
    #: The write of the start (STARTING → RUNNING), once the body begins.
    start: asyncio.Future[bool] | None = None
    #: The renewal of a lease that the claim wrote nearly spent, before the start.
    renewal: asyncio.Future[Renewal] | None = None
    #: A body that outlives the attempt's outcome (:meth:`ExecutionContext.linger`).
    body: asyncio.Future[Outcome] | None = None
    #: The job may hold this worker's lease in a state that no longer needs it: let it go.
    let_go: bool = False
    #: The body runs on a thread of the worker until this is done (only the process ends it).
    thread: asyncio.Future[Any] | None = None
    #: The lease ran out by this worker's clock before it was renewed: never renewed again.
    lapsed: bool = False
    #: The store says another worker, or none, holds the lease now.
    taken: bool = False
    #: An older attempt of the same job still in this worker's hands: started after it ends.
    after: asyncio.Task[None] | None = None

    @property
    def key(self) -> tuple[JobId, int]:
        """The attempt, as the worker keys its running jobs."""
        return (self.job.id, self.job.attempt_count)

    @property
    def lease(self) -> str:
        """The attempt's lease, as the reaper knows it."""
        return lease_key(self.job.id, self.job.attempt_count)

    @property
    def lingering(self) -> bool:
        """The outcome is decided but the body still runs."""
        return self.body is not None and not self.body.done()

    @property
    def unstoppable(self) -> bool:
        """The body runs and nothing but the end of the process can stop it."""
        return self.lingering or (self.thread is not None and not self.thread.done())

    def linger(self, body: asyncio.Future[Outcome]) -> None:
        self.body = body

    def runs_on_thread(self, call: asyncio.Future[Any]) -> None:
        self.thread = call


@dataclass(frozen=True, slots=True, kw_only=True)
class Renewal:
    """What the renewal of freshly claimed jobs came to."""

    #: The renewed lease; None when no renewal succeeded before the leases ran out.
    lease_until: datetime | None
    #: The jobs still active in the worker's hands (the others were cancelled meanwhile).
    held: frozenset[JobId] = frozenset()


class LeaseKeeper:
    """Renews the leases of ``running`` (the worker's attempts, by job and attempt), tells the
    reaper until when they hold, and fences them."""

    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        worker_id: str,
        running: Mapping[tuple[JobId, int], Running],
        lease_seconds: float,
        check_seconds: float,
        exit_process: Callable[[int], object],
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._worker_id = worker_id
        self._running = running
        self._lease = lease_seconds
        self._check = check_seconds
        self._exit_process = exit_process
        #: Set once the worker has decided to end its process.
        self.exiting = False
        #: The newest attempt of each job in ``running``: an older one writes nothing more.
        self._newest: dict[JobId, int] = {}

    @property
    def margin(self) -> float:
        """How long before a lease runs out the fence acts."""
        return min(2 * self._check, self._lease / 3)

    @property
    def ahead(self) -> float:
        """How long before a lease runs out the reaper kills its bodies, unrenewed; a lease
        this close to its end by the worker's clock has lapsed."""
        return self.margin / 2

    def held(self, running: Running, lease_until: datetime) -> None:
        """The store holds ``running``'s lease until ``lease_until``: so does the reaper."""
        running.lease_until = lease_until
        left = (lease_until - self._clock.now()).total_seconds() - self.ahead
        shared_reaper().lease(running.lease, left)

    def lapse(self, running: Running, now: datetime | None = None) -> bool:
        """Whether the lease of a started attempt has lapsed (see the module docstring)."""
        if running.started and not running.lapsed and running.lease_until is not None:
            now = self._clock.now() if now is None else now
            running.lapsed = running.lease_until - timedelta(seconds=self.ahead) <= now
        return running.lapsed

    def hold(self, running: Running) -> None:
        """A claimed attempt enters the worker's hands (before it is in ``running``): it starts
        after an older attempt of its job still there, and the reaper learns its lease."""
        older = self._newest.get(running.job.id)
        previous = None if older is None else self._running.get((running.job.id, older))
        if previous is not None:
            running.after = previous.task  # its body has ended; its lease was let go
        self._newest[running.job.id] = running.job.attempt_count
        job = running.job
        if job.lease_expires_at is not None and not self.stale(job):
            self.held(running, job.lease_expires_at)

    def drop(self, running: Running) -> None:
        """The attempt has left the worker's hands (and ``running``)."""
        if self._newest.get(running.job.id) == running.job.attempt_count:
            del self._newest[running.job.id]
        shared_reaper().end_lease(running.lease)

    def superseded(self, running: Running) -> bool:
        """A newer attempt of the job is in the worker's hands: the job is no longer this
        attempt's to write (the guards of its transitions name the worker, not the attempt)."""
        return self._newest.get(running.job.id, 0) > running.job.attempt_count

    # -- renewal --------------------------------------------------------------------------------

    async def monitor(self) -> None:
        """Renew leases and stop jobs that are no longer ours; see that the reaper lives."""
        loop = asyncio.get_running_loop()
        renew_every = self._lease / 3
        next_renewal = loop.time()
        while True:
            renew = loop.time() >= next_renewal
            try:
                if renew:
                    next_renewal = loop.time() + renew_every
                if self._running or renew:
                    await self._check_running(renew)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if renew:  # not a lost lease: tried again at the next check, until it expires
                    next_renewal = loop.time()
                log.warning(
                    "could not renew or check the leases: %s", error or type(error).__name__
                )
            try:
                check_reaper()
            except ReaperUnavailable as error:
                log.error("%s; programs and containers will not start until one does", error)
            await asyncio.sleep(self._check)

    async def _check_running(self, renew: bool) -> None:
        now = self._clock.now()
        # A lapsed lease is never renewed: the store would take the renewal (it does not look
        # at the time) though the watchdog may have killed the body and the rescue be on its way.
        entries = [r for r in self._running.values() if not (self.lapse(r, now) or r.taken)]
        lease_until = now + timedelta(seconds=self._lease) if renew else None
        ids = tuple(dict.fromkeys(r.job.id for r in entries))
        beat = Heartbeat(worker_id=self._worker_id, job_ids=ids, now=now, lease_until=lease_until)
        # A renewal still unanswered when a lease runs out comes too late: stop waiting for it
        # (the store may be unreachable, the call hanging), so that the fence can act in time.
        leases = [
            r.lease_until for r in entries if r.lease_until is not None and r.lease_until > now
        ]
        timeout = self._lease / 3
        if leases:
            timeout = max((min(leases) - now).total_seconds() - self.margin, 0.1)
        # asyncio.timeout, not wait_for: on 3.11, wait_for can swallow a cancel that comes as
        # the call ends (the helper would then never stop, and its worker never exit).
        async with asyncio.timeout(timeout):
            lost = await self._storage.jobs.heartbeat(beat)
        # Jobs no longer active in this worker's hands (cancelled, ended) whose bodies still run
        # or stop keep their lease, renewed with the others; those another worker (or none)
        # holds now were taken.
        kept = await self._still_held(lost) if renew else {}
        unstoppable: list[JobId] = []
        for running in entries:
            if self._running.get(running.key) is not running:
                continue  # gone meanwhile
            job_id = running.job.id
            if job_id in lost:
                running.cancelled.set()
            if job_id in lost and renew and job_id not in kept:
                running.taken = True
                if running.unstoppable:
                    unstoppable.append(job_id)
            elif lease_until is not None and not self.lapse(running):
                self.held(running, kept.get(job_id, lease_until))
        if unstoppable:
            self.end_process(unstoppable)

    async def _still_held(self, ids: Iterable[JobId]) -> dict[JobId, datetime]:
        """Of ``ids``, those whose lease this worker still holds, with its end (the store's)."""
        held: dict[JobId, datetime] = {}
        for job_id in ids:
            job = await self._storage.jobs.get(job_id)
            if job is not None and job.worker_id == self._worker_id and job.lease_expires_at:
                held[job_id] = job.lease_expires_at
        return held

    def stale(self, job: Job) -> bool:
        """True when a claimed job's lease has less than half a lease left by this clock."""
        if job.lease_expires_at is None:
            return True
        left = (job.lease_expires_at - self._clock.now()).total_seconds()
        return left < self._lease / 2

    async def renew_claimed(self, jobs: Iterable[Job]) -> Renewal:
        """Renew the leases of freshly claimed jobs, retrying until the earliest one expires.

        Tried at least once, even on a lease already spent: no body runs yet, and a renewal
        that applies proves that no one else took the jobs (the rescue would have moved them).
        """
        claimed = list(jobs)
        ids = tuple(job.id for job in claimed)
        ends = [job.lease_expires_at for job in claimed if job.lease_expires_at is not None]
        deadline = min(ends, default=self._clock.now())
        tried = False
        while True:
            now = self._clock.now()
            left = (deadline - now).total_seconds()
            if left <= 0 and tried:
                return Renewal(lease_until=None)
            tried = True
            lease_until = now + timedelta(seconds=self._lease)
            beat = Heartbeat(
                worker_id=self._worker_id, job_ids=ids, now=now, lease_until=lease_until
            )
            try:
                async with asyncio.timeout(max(left, self._lease / 3)):
                    lost = await self._storage.jobs.heartbeat(beat)
            except Exception as error:
                log.warning("could not renew the leases of %d claimed job(s): %s", len(ids), error)
                await asyncio.sleep(min(self._check, max(left, 0.0)))
                continue
            return Renewal(lease_until=lease_until, held=frozenset(ids) - lost)

    # -- fencing --------------------------------------------------------------------------------

    async def fencing(self) -> None:
        """Fence on a timer of its own, so that a heartbeat held up in the driver cannot delay it.

        A heartbeat cut off mid-query is cancelled by the timeout of the renewal, but psycopg
        then tries to cancel the query on the server and waits for it to end, up to 5 s each,
        before the cancellation goes through: long past a short lease.
        """
        while True:
            self.fence()
            await asyncio.sleep(self._check)

    def fence(self) -> None:
        """Stop the started bodies whose lease runs out before this worker could renew it.

        Another worker rescues such a job and runs it again: stopping ours first keeps one
        job from running twice at once on two hosts (this one cut off from the store). A body
        that cannot be stopped ends the process: before its lease runs out, or at once when
        the worker wakes to find it lapsed (it was frozen) or taken.
        """
        now = self._clock.now()
        deadline = now + timedelta(seconds=self.margin)
        unstoppable: list[JobId] = []
        for running in self._running.values():
            if not running.started or running.lease_until is None:
                continue
            lost = self.lapse(running, now) or running.taken
            if not (lost or running.lease_until <= deadline):
                continue
            if running.unstoppable:
                unstoppable.append(running.job.id)
            elif not running.cancelled.is_set():
                log.warning("could not renew the lease of job %s; stopping it", running.job.id)
                running.hand_back = running.fenced = True
                running.cancelled.set()
        if unstoppable:
            self.end_process(unstoppable)

    def end_process(self, job_ids: Iterable[JobId]) -> None:
        """The leases of bodies nothing can stop run out: end the process, the only thing that
        ends their threads, before the rescue starts the jobs elsewhere."""
        if self.exiting:
            return
        self.exiting = True
        log.critical(
            "cannot renew the leases of job(s) %s, whose inline functions cannot be stopped;"
            " ending the worker process so that they stop before their leases run out",
            ", ".join(sorted(job_ids)),
        )
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        self._exit_process(EXIT_UNSTOPPABLE)
