"""The facade and composition root: the only thing the CLI, the SDK and (later) the API call.

:class:`Dockyard` wires storage, the log store, executors and the clock together and exposes the
operations users have: definitions, jobs, logs and running a worker. Every method validates its
input before it writes, so a bad request changes nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from dockyard.domain import transitions
from dockyard.domain.clock import Clock, SystemClock
from dockyard.domain.definitions import (
    check_name,
    check_queue,
    parse_definition,
    parse_definition_ref,
)
from dockyard.domain.events import Event, parse_entries
from dockyard.domain.jobs import SubmitRequest, new_job
from dockyard.domain.patterns import matches as pattern_matches
from dockyard.domain.records import Definition, DockerSpec, Job, JobId
from dockyard.domain.registry import (
    DOCKYARD_REGISTRY_SOURCE,
    IMAGE_PUSHED,
    parse_notifications,
    push_detail,
)
from dockyard.domain.rules import (
    Invocation,
    InvocationState,
    RegisterRevisionTarget,
    Rule,
    RuleSpec,
    SubmitJobTarget,
    parse_rule,
)
from dockyard.domain.rules import spec_document as rule_spec_document
from dockyard.domain.scheduling import (
    Schedule,
    ScheduleSpec,
    fire_request,
    first_fire,
    merge_schedule_document,
    parse_schedule,
)
from dockyard.domain.states import TERMINAL_STATES, DefinitionStatus, JobState
from dockyard.domain.tokens import Token, generate_secret, hash_secret, parse_role
from dockyard.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from dockyard.executors import (
    DockerExecutor,
    Executor,
    HttpExecutor,
    LambdaExecutor,
    ProcessExecutor,
    PythonExecutor,
)
from dockyard.logs import LocalLogStore
from dockyard.runtime import (
    Maintenance,
    MaintenanceConfig,
    RulesConfig,
    RulesEngine,
    Scheduler,
    SchedulerConfig,
    Worker,
    WorkerConfig,
)
from dockyard.settings import Settings
from dockyard.storage import (
    JobQuery,
    QueueInfo,
    Storage,
    StoredEvent,
    WorkerInfo,
    open_storage,
    store_identity,
)

__all__ = [
    "Dockyard",
    "QueueInfo",
    "Submitted",
    "Token",
    "WorkerConfig",
    "WorkerInfo",
    "upgrade_store",
]

MAX_BATCH = 10_000
#: How often ``wait`` and ``follow_log`` look again when no change was signalled.
WAIT_POLL_SECONDS = 0.2
#: How long ``authenticate`` trusts a token without asking the store again: a revoke made
#: through another process takes effect within this time, one made through this facade at once.
TOKEN_CACHE_SECONDS = 1.0
TOKEN_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Submitted:
    job: Job
    #: False when the idempotency key matched an earlier job, which is returned instead.
    created: bool


async def upgrade_store(settings: Settings) -> list[str]:
    """Apply the store's missing migrations (``dockyard db upgrade``); return their names."""
    storage = open_storage(settings.url)
    try:
        return await storage.migrate()
    finally:
        await storage.close()


class Dockyard:
    """One Dockyard: a store, a log store, executors and a clock."""

    def __init__(self, *, settings: Settings, storage: Storage, clock: Clock | None = None) -> None:
        self.settings = settings
        self.storage = storage
        self.clock: Clock = clock or SystemClock()
        self.logs = LocalLogStore(settings.log_dir)
        #: Live tokens by secret hash, each trusted until a monotonic deadline (``authenticate``).
        self._tokens: dict[str, tuple[Token, float]] = {}
        #: The HTTP client of the rules engines' webhooks, made with the first engine.
        self._webhooks: HttpExecutor | None = None

    @classmethod
    async def open(cls, settings: Settings, *, clock: Clock | None = None) -> Dockyard:
        """Open the store named by the settings and bring its schema up to date."""
        storage = open_storage(settings.url)
        await storage.migrate()
        return cls(settings=settings, storage=storage, clock=clock)

    async def close(self) -> None:
        if self._webhooks is not None:
            await self._webhooks.aclose()
        await self.storage.close()

    @property
    def store_id(self) -> str:
        """The store's short name, on the labels of what its workers start outside it."""
        return store_identity(self.settings.url)

    # -- definitions ----------------------------------------------------------------------------

    async def register_definition(
        self, document: Mapping[str, Any], name: str | None = None
    ) -> Definition:
        """Register ``document`` as the next revision of its name (``name`` wins over the document's)."""
        name = check_name(name if name is not None else document.get("name"), "name")
        spec = parse_definition({**document, "name": name})
        return await self.storage.insert_definition(name, spec, self.clock.now())

    async def get_definition(self, ref: str) -> Definition:
        """``name`` (latest ACTIVE revision) or ``name:revision``."""
        name, revision = parse_definition_ref(ref)
        definition = await self.storage.get_definition(name, revision)
        if definition is None:
            revisions = await self.storage.list_definitions(name)
            if revisions and revision is None:
                raise NotFoundError("active revision of definition", name)
            raise NotFoundError("definition", ref)
        return definition

    async def definition_revisions(self, name: str) -> list[Definition]:
        revisions = await self.storage.list_definitions(check_name(name, "definition"))
        if not revisions:
            raise NotFoundError("definition", name)
        return revisions

    async def list_definitions(self) -> list[Definition]:
        """The latest revision of every definition."""
        return await self.storage.list_definitions()

    async def deregister_definition(self, ref: str) -> Definition:
        name, revision = parse_definition_ref(ref)
        if revision is None:
            raise ValidationError("definition", "name the revision to deregister, as NAME:REVISION")
        definition = await self.storage.set_definition_status(
            name, revision, DefinitionStatus.INACTIVE
        )
        if definition is None:
            raise NotFoundError("definition", ref)
        return definition

    async def rollback_definition(self, name: str) -> Definition:
        """Register a new revision equal to the ACTIVE revision before the latest one, so the
        next job runs what ran before and the history stays linear."""
        active = [
            definition
            for definition in await self.definition_revisions(name)
            if definition.status is DefinitionStatus.ACTIVE
        ]
        if len(active) < 2:
            raise ConflictError(f"definition {name} has no earlier ACTIVE revision to roll back to")
        previous = active[-2]
        return await self.storage.insert_definition(name, previous.spec, self.clock.now())

    # -- jobs -----------------------------------------------------------------------------------

    async def submit(self, request: SubmitRequest) -> Submitted:
        (submitted,) = await self.submit_many([request])
        return submitted

    async def submit_many(self, requests: Sequence[SubmitRequest]) -> list[Submitted]:
        """Submit many jobs in one transaction; all are validated before any is written."""
        if len(requests) > MAX_BATCH:
            raise ValidationError("jobs", f"at most {MAX_BATCH} jobs per call")
        now = self.clock.now()
        definitions: dict[str, Definition] = {}
        jobs = []
        for index, request in enumerate(requests):
            if request.definition not in definitions:
                definitions[request.definition] = await self.get_definition(request.definition)
            try:
                jobs.append(new_job(request, definitions[request.definition], now))
            except ValidationError as error:
                if len(requests) == 1:
                    raise
                raise ValidationError(f"jobs.{index}.{error.field}", error.rule) from None
        inserted = await self.storage.insert_jobs(jobs)
        return [Submitted(job=item.job, created=item.created) for item in inserted]

    async def get_job(self, job_id: str) -> Job:
        job = await self.storage.get_job(JobId(job_id))
        if job is None:
            raise NotFoundError("job", job_id)
        return job

    async def list_jobs(
        self,
        *,
        states: Sequence[str] = (),
        queue: str | None = None,
        definition: str | None = None,
        group: str | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[Job]:
        try:
            parsed = frozenset(JobState(state.upper()) for state in states)
        except ValueError:
            raise ValidationError("state", f"must be one of {', '.join(JobState)}") from None
        if not 1 <= limit <= 10_000:
            raise ValidationError("limit", "must be from 1 to 10000")
        if before is not None and await self.storage.get_job(JobId(before)) is None:
            raise ValidationError("cursor", f"no job {before!r}: pass a next_cursor you were given")
        return await self.storage.list_jobs(
            JobQuery(
                states=parsed,
                queue=queue,
                definition_name=None if definition is None else parse_definition_ref(definition)[0],
                group_key=group,
                limit=limit,
                before=None if before is None else JobId(before),
            )
        )

    async def cancel(self, job_id: str, reason: str | None = None) -> Job:
        """Cancel a job that has not finished; a running attempt is stopped within seconds."""
        job = await self.get_job(job_id)
        if job.state in TERMINAL_STATES:
            raise ConflictError(f"job {job_id} is already {job.state}")
        return await self._apply_or_conflict(transitions.cancel(job, self.clock.now(), reason), job)

    async def retry(self, job_id: str) -> Job:
        """Requeue a FAILED or CANCELLED job with its attempts renewed."""
        job = await self.get_job(job_id)
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            raise ConflictError(
                f"job {job_id} is {job.state}; only FAILED or CANCELLED jobs can be retried"
            )
        return await self._apply_or_conflict(transitions.requeue(job, self.clock.now()), job)

    async def _apply_or_conflict(self, transition: transitions.Transition, job: Job) -> Job:
        """Apply ``transition`` and return the job as it left it (a worker may move on at once)."""
        (applied,) = await self.storage.apply([transition])
        if not applied:
            raise ConflictError(f"job {job.id} changed state meanwhile; try again")
        return transitions.applied(job, transition)

    async def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Return the job once it is SUCCEEDED, FAILED or CANCELLED."""
        async with asyncio.timeout(timeout):
            while True:
                token = self.storage.change_token()
                job = await self.get_job(job_id)
                if job.state in TERMINAL_STATES:
                    return job
                await self.storage.wait_for_change(token, WAIT_POLL_SECONDS)

    # -- logs -----------------------------------------------------------------------------------

    async def check_log(self, job_id: str, attempt: int | None = None) -> None:
        """Raise NotFoundError unless the job (and the attempt, when given) exists."""
        self._attempt_number(await self.get_job(job_id), attempt)

    async def read_log(self, job_id: str, attempt: int | None = None) -> bytes:
        """The whole log of one attempt (the latest by default)."""
        job = await self.get_job(job_id)
        number = self._attempt_number(job, attempt)
        return b"" if number == 0 else self.logs.read(job.id, number, 0, None)

    async def follow_log(
        self, job_id: str, attempt: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Yield the log as it is written, across retries, until the job ends."""
        job = await self.get_job(job_id)
        number = self._attempt_number(job, attempt)
        number = max(number, 1)
        offset = 0
        while True:
            token = self.storage.change_token()
            chunk = self.logs.read(job.id, number, offset)
            if chunk:
                offset += len(chunk)
                yield chunk
                continue
            job = await self.get_job(job_id)
            # An attempt writes its last bytes before its state changes: read them first.
            rest = self.logs.read(job.id, number, offset, None)
            if rest:
                offset += len(rest)
                yield rest
            if attempt is None and job.attempt_count > number:
                number, offset = number + 1, 0  # the next attempt began
                continue
            if job.state in TERMINAL_STATES:
                return
            await self.storage.wait_for_change(token, WAIT_POLL_SECONDS)

    @staticmethod
    def _attempt_number(job: Job, attempt: int | None) -> int:
        if attempt is None:
            return job.attempt_count
        if not 1 <= attempt <= max(job.attempt_count, 1):
            raise NotFoundError("attempt", f"{job.id} #{attempt}")
        return attempt

    # -- workers --------------------------------------------------------------------------------

    def executors(self) -> dict[str, Executor]:
        base = dict(os.environ)
        http = HttpExecutor(self.settings.http_allowed_hosts)
        return {
            "process": ProcessExecutor(base),
            "python": PythonExecutor(base, search_path=[os.getcwd()]),
            "docker": DockerExecutor(base, store=self.store_id),
            "http": http,
            "lambda": LambdaExecutor(http),
        }

    def worker(self, config: WorkerConfig, *, rng: random.Random | None = None) -> Worker:
        if config.concurrency < 1:
            raise ValidationError("concurrency", "must be at least 1")
        if config.queues is not None:
            for queue in config.queues:
                check_name(queue, "queues")
        return Worker(
            storage=self.storage,
            executors=self.executors(),
            logs=self.logs,
            clock=self.clock,
            config=config,
            rng=rng,
            maintenance=self.maintenance(rng=rng),
        )

    def maintenance(self, *, rng: random.Random | None = None) -> Maintenance:
        """The leader-elected maintenance service (every worker runs one beside it)."""
        config = MaintenanceConfig(retention=timedelta(days=self.settings.retention_days))
        return Maintenance(
            storage=self.storage, logs=self.logs, clock=self.clock, config=config, rng=rng
        )

    async def run_worker(self, config: WorkerConfig, *, handle_signals: bool = True) -> Worker:
        """Run a worker until SIGTERM or SIGINT (graceful: see :meth:`Worker.stop`)."""
        worker = self.worker(config)
        if handle_signals:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, worker.stop)
        try:
            await worker.run()
        finally:
            if handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)
        return worker

    async def list_workers(self) -> list[WorkerInfo]:
        return await self.storage.list_workers()

    # -- schedules ------------------------------------------------------------------------------

    def scheduler(
        self, config: SchedulerConfig | None = None, *, rng: random.Random | None = None
    ) -> Scheduler:
        """The leader-elected scheduler (``dockyard up`` and ``dockyard scheduler`` run one)."""
        return Scheduler(storage=self.storage, clock=self.clock, config=config, rng=rng)

    async def create_schedule(
        self, document: Mapping[str, Any], name: str | None = None
    ) -> Schedule:
        """Create a schedule from its document (``name`` wins over the document's)."""
        name = check_name(name if name is not None else document.get("name"), "name")
        spec, enabled = parse_schedule({k: v for k, v in document.items() if k != "name"})
        await self._check_target(name, spec)
        now = self.clock.now()
        schedule = Schedule(
            name=name,
            spec=spec,
            enabled=enabled,
            created_at=now,
            updated_at=now,
            next_fire_at=self._first_fire(spec, now, anchor=now),
        )
        if not await self.storage.insert_schedule(schedule):
            raise ConflictError(f"schedule {name} already exists")
        return schedule

    async def get_schedule(self, name: str) -> Schedule:
        schedule = await self.storage.get_schedule(name)
        if schedule is None:
            raise NotFoundError("schedule", name)
        return schedule

    async def list_schedules(self) -> list[Schedule]:
        return await self.storage.list_schedules()

    async def update_schedule(self, name: str, changes: Mapping[str, Any]) -> Schedule:
        """Change some fields: the others keep their values, ``target`` merges key by key, and
        a None sets a field back to its default. A change of timing (expression, time zone,
        start, end) or a resume computes the next fire time afresh."""
        if not isinstance(changes, Mapping):
            raise ValidationError("schedule", "must be a mapping")
        if "name" in changes and changes["name"] != name:
            raise ValidationError("name", "cannot be changed (create a new schedule)")
        # A fire between the read and the write moves next_fire_at: read again and redo.
        for _ in range(10):
            current = await self.get_schedule(name)
            schedule = await self._updated(current, changes)
            if await self.storage.replace_schedule(schedule, current.next_fire_at):
                return schedule
        raise ConflictError(f"schedule {name} keeps changing; try again")

    async def _updated(self, current: Schedule, changes: Mapping[str, Any]) -> Schedule:
        document = merge_schedule_document(current, changes)
        spec, enabled = parse_schedule({k: v for k, v in document.items() if k != "name"})
        now = self.clock.now()
        retargeted = "target" in changes
        if retargeted:
            await self._check_target(current.name, spec)
        old = current.spec
        timing = (spec.expression, spec.timezone, spec.start, spec.end)
        next_fire_at = current.next_fire_at
        after = max(now, current.last_fire_at or now)
        if timing != (old.expression, old.timezone, old.start, old.end):
            next_fire_at = self._first_fire(spec, after, anchor=current.created_at)
        elif enabled and not current.enabled:
            # A resume: no fire caught up for the pause; a schedule that had fired its last
            # (an at) stays done.
            next_fire_at = first_fire(spec, now=after, anchor=current.created_at)
        return replace(
            current,
            spec=spec,
            enabled=enabled,
            next_fire_at=next_fire_at,
            updated_at=now,
            last_error=None if retargeted else current.last_error,
        )

    async def set_schedule_enabled(self, name: str, enabled: bool) -> Schedule:
        """Pause (no fire while paused, none caught up later) or resume a schedule."""
        return await self.update_schedule(name, {"state": "ENABLED" if enabled else "DISABLED"})

    async def delete_schedule(self, name: str) -> Schedule:
        schedule = await self.get_schedule(name)
        if not await self.storage.delete_schedule(name):
            raise NotFoundError("schedule", name)
        return schedule

    async def _check_target(self, name: str, spec: ScheduleSpec) -> None:
        """Refuse a target whose jobs could not be submitted: build one as a fire would."""
        ref = spec.target.definition
        try:
            definition = await self.get_definition(ref)
        except NotFoundError:
            raise ValidationError(
                "target.definition", f"no active definition {ref} (register it first)"
            ) from None
        now = self.clock.now()
        probe = Schedule(
            name=name, spec=spec, enabled=True, created_at=now, updated_at=now, next_fire_at=now
        )
        try:
            new_job(fire_request(probe, now), definition, now)
        except ValidationError as error:
            raise ValidationError(f"target.{error.field}", error.rule) from None

    @staticmethod
    def _first_fire(spec: ScheduleSpec, after: datetime, *, anchor: datetime) -> datetime:
        moment = first_fire(spec, now=after, anchor=anchor)
        if moment is None:
            raise ValidationError(
                "expression",
                f"{spec.expression} has no fire time after {after.isoformat(timespec='seconds')}"
                + (f" before the end {spec.end.isoformat()}" if spec.end else "")
                + f" in {spec.timezone}",
            )
        return moment

    # -- events and rules -----------------------------------------------------------------------

    def rules_engine(
        self, config: RulesConfig | None = None, *, rng: random.Random | None = None
    ) -> RulesEngine:
        """The leader-elected rules engine (``dockyard up`` and ``dockyard scheduler`` run one)."""
        if self._webhooks is None:
            self._webhooks = HttpExecutor(self.settings.http_allowed_hosts)
        return RulesEngine(
            storage=self.storage, clock=self.clock, http=self._webhooks, config=config, rng=rng
        )

    async def put_events(self, entries: object) -> list[Event]:
        """Put up to ten events on the bus (``PutEvents``): all of them, or none when one is bad."""
        now = self.clock.now()
        events = parse_entries(entries, now=now)
        await self.storage.insert_events(events, now)
        return events

    async def registry_notification(self, body: bytes, content_type: str | None) -> list[Event]:
        """A Docker Distribution notification: each tagged manifest push becomes an
        ``Image Pushed`` event (pulls, deletes and layer pushes are ignored)."""
        now = self.clock.now()
        events = [
            Event.new(
                DOCKYARD_REGISTRY_SOURCE,
                IMAGE_PUSHED,
                push_detail(push),
                now=now,
                resources=[f"dockyard:image/{push.image}"],
            )
            for push in parse_notifications(body, content_type)
        ]
        await self.storage.insert_events(events, now)
        return events

    async def list_events(self, limit: int = 100, source: str | None = None) -> list[StoredEvent]:
        return await self.storage.list_events(limit, source)

    @staticmethod
    def test_event_pattern(
        pattern: str | Mapping[str, Any], event: str | Mapping[str, Any]
    ) -> bool:
        """Whether ``event`` matches ``pattern``, as EventBridge's ``TestEventPattern`` says."""
        return pattern_matches(pattern, event)

    async def create_rule(self, document: Mapping[str, Any], name: str | None = None) -> Rule:
        """Create a rule from its document (``name`` wins over the document's)."""
        if not isinstance(document, Mapping):
            raise ValidationError("rule", "must be a mapping")
        name = check_name(name if name is not None else document.get("name"), "name")
        spec, enabled = parse_rule({k: v for k, v in document.items() if k != "name"})
        await self._check_targets(spec)
        now = self.clock.now()
        rule = Rule(name=name, spec=spec, enabled=enabled, created_at=now, updated_at=now)
        if not await self.storage.insert_rule(rule):
            raise ConflictError(f"rule {name} already exists")
        return rule

    async def get_rule(self, name: str) -> Rule:
        rule = await self.storage.get_rule(name)
        if rule is None:
            raise NotFoundError("rule", name)
        return rule

    async def list_rules(self) -> list[Rule]:
        return await self.storage.list_rules()

    async def update_rule(self, name: str, changes: Mapping[str, Any]) -> Rule:
        """Change some fields; the others keep their values (``targets`` is replaced whole)."""
        if not isinstance(changes, Mapping):
            raise ValidationError("rule", "must be a mapping")
        if "name" in changes and changes["name"] != name:
            raise ValidationError("name", "cannot be changed (create a new rule)")
        current = await self.get_rule(name)
        document = {**rule_spec_document(current.spec, current.enabled), **changes}
        spec, enabled = parse_rule({k: v for k, v in document.items() if k != "name"})
        if "targets" in changes:
            await self._check_targets(spec)
        rule = replace(current, spec=spec, enabled=enabled, updated_at=self.clock.now())
        if not await self.storage.replace_rule(rule):
            raise NotFoundError("rule", name)
        return rule

    async def _check_targets(self, spec: RuleSpec) -> None:
        """Refuse targets that could never work: a definition that does not exist, or a new
        revision of one that does not run containers."""
        for index, target in enumerate(spec.targets):
            if isinstance(target, SubmitJobTarget):
                ref, field = target.job.definition, f"targets[{index}].definition"
            elif isinstance(target, RegisterRevisionTarget):
                ref, field = target.definition, f"targets[{index}].definition"
            else:
                continue
            try:
                definition = await self.get_definition(ref)
            except NotFoundError:
                raise ValidationError(
                    field, f"no active definition {ref} (register it first)"
                ) from None
            if isinstance(target, RegisterRevisionTarget) and not isinstance(
                definition.spec.executor, DockerSpec
            ):
                raise ValidationError(
                    field, f"{ref} does not run containers: only docker definitions take an image"
                )

    async def set_rule_enabled(self, name: str, enabled: bool) -> Rule:
        return await self.update_rule(name, {"state": "ENABLED" if enabled else "DISABLED"})

    async def delete_rule(self, name: str) -> Rule:
        rule = await self.get_rule(name)
        if not await self.storage.delete_rule(name):
            raise NotFoundError("rule", name)
        return rule

    async def rule_history(
        self, name: str, state: InvocationState | None = None, limit: int = 100
    ) -> list[Invocation]:
        """The rule's invocations, newest first (``state=DEAD``: its dead list)."""
        await self.get_rule(name)
        return await self.storage.list_invocations(name, state, limit)

    async def retry_invocations(self, name: str, ids: Sequence[str] | None = None) -> int:
        """Put dead invocations (these, or all of the rule's) back to be delivered again."""
        await self.get_rule(name)
        return await self.storage.retry_invocations(name, ids, self.clock.now())

    # -- queues ---------------------------------------------------------------------------------

    async def list_queues(self) -> list[QueueInfo]:
        return await self.storage.list_queues()

    async def set_queue_paused(self, name: str, paused: bool) -> QueueInfo:
        """Pause (workers claim nothing from it; submits still land) or resume a queue."""
        check_queue(name)
        return await self.storage.set_queue_paused(name, paused, self.clock.now())

    # -- tokens ---------------------------------------------------------------------------------

    async def create_token(self, name: str, role: str) -> tuple[Token, str]:
        """A new token and its secret; the secret is not kept and cannot be shown again."""
        if not isinstance(name, str) or not 1 <= len(name) <= 128 or not name.isprintable():
            raise ValidationError("name", "must be 1-128 printable characters")
        token = Token(
            id=uuid.uuid4().hex[:12], name=name, role=parse_role(role), created_at=self.clock.now()
        )
        secret = generate_secret()
        await self.storage.insert_token(token, hash_secret(secret))
        return token, secret

    async def list_tokens(self) -> list[Token]:
        return await self.storage.list_tokens()

    async def revoke_token(self, token_id: str) -> Token:
        token = await self.storage.revoke_token(token_id, self.clock.now())
        self._tokens.clear()
        if token is None:
            raise NotFoundError("token", token_id)
        return token

    async def authenticate(self, secret: str | None) -> Token:
        """The live token whose secret this is; AuthenticationError otherwise."""
        if not secret:
            raise AuthenticationError("a bearer token is required")
        digest = hash_secret(secret)
        now = time.monotonic()
        cached = self._tokens.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        token = await self.storage.find_token(digest)
        if token is None or token.revoked_at is not None:
            self._tokens.pop(digest, None)
            raise AuthenticationError("the token is unknown or revoked")
        if len(self._tokens) >= TOKEN_CACHE_SIZE:
            self._tokens.clear()
        self._tokens[digest] = (token, now + TOKEN_CACHE_SECONDS)
        return token

    async def ensure_admin_token(self) -> str | None:
        """On first start, create an admin token and write it to ``<home>/token`` (mode 0600).

        Returns the path's secret when one was created, None when tokens already exist.
        """
        if await self.storage.list_tokens():
            return None
        _, secret = await self.create_token("admin (created by the first start)", "admin")
        path = self.settings.token_file
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secret + "\n")
        return secret
