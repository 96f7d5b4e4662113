"""The rules engine: one leader among all processes routes events to targets and delivers them.

Every process that runs it tries to lead (the loop of :mod:`dockyard.runtime.leader`, as the
scheduler does). The leader

- **routes**: reads the events no one has matched yet, oldest first, matches each against every
  enabled rule's compiled pattern (:mod:`dockyard.domain.patterns`), and in one transaction
  records an invocation per matching target and marks the events routed. A leader that dies
  before that commit leaves them unrouted for the next one; one invocation per rule, target and
  event is all the store keeps, so a repeat changes nothing. An invocation deeper than the
  causation cap is recorded REFUSED, and one over its rule's rate THROTTLED
  (:mod:`dockyard.domain.rule_limits`): neither is ever delivered, so a rule that triggers
  itself stops. The rates are token buckets in this leader's memory (one leader routes).
- **delivers**: tries each due invocation (several at once): ``submit-job`` submits a job keyed by
  rule, target and event (a delivery made twice makes one job) at the invocation's causation
  depth, which its state changes carry to the rules they match; ``register-revision`` registers
  the definition's latest revision again with the pushed image (not when the latest already
  has it); ``webhook`` POSTs the event, signed, with the depth in ``X-Dockyard-Causation-Depth``.
  A failure is tried again with the target's backoff, then lands on the rule's dead list.

It wakes when the store changes (a job's state, an event put) and otherwise looks every
``poll_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dockyard.domain.clock import Clock
from dockyard.domain.definitions import (
    admit_definition,
    definition_document,
    parse_definition,
    parse_definition_ref,
)
from dockyard.domain.events import iso_time
from dockyard.domain.jobs import new_job
from dockyard.domain.records import Definition
from dockyard.domain.rule_index import RuleIndex
from dockyard.domain.rule_limits import (
    DEFAULT_MAX_CAUSATION_DEPTH,
    InvocationBudget,
    depth_refusal,
    throttled_reason,
)
from dockyard.domain.rule_targets import (
    RegisterRevisionTarget,
    SubmitJobTarget,
    Target,
    WebhookTarget,
    job_request,
    revision_document,
)
from dockyard.domain.rules import Invocation, InvocationState, Rule
from dockyard.errors import ConflictError, DockyardError, NotFoundError, ValidationError
from dockyard.executors.http import HttpExecutor, WebhookError
from dockyard.runtime.leader import LeaderService
from dockyard.storage.ports import InvocationUpdate, NewInvocation, Storage, StoredEvent

__all__ = ["DEPTH_HEADER", "ROLE", "RulesConfig", "RulesEngine", "RulesReport"]

log = logging.getLogger("dockyard.rules")

ROLE = "rules"
#: The header a webhook target's POST carries the invocation's causation depth in.
DEPTH_HEADER = "X-Dockyard-Causation-Depth"


@dataclass(frozen=True, slots=True, kw_only=True)
class RulesConfig:
    #: Longest sleep between looks when nothing wakes the engine.
    poll_seconds: float = 1.0
    #: Events routed, and invocations delivered, per round.
    batch_size: int = 500
    #: Deliveries in flight at once.
    concurrency: int = 16
    #: The shortest pause between rounds: a burst of writes wakes the leader once per gap.
    min_gap_seconds: float = 0.01
    #: The deepest causation depth an invocation may act at; deeper ones are REFUSED.
    max_causation_depth: int = DEFAULT_MAX_CAUSATION_DEPTH


@dataclass(frozen=True, slots=True, kw_only=True)
class RulesReport:
    events: int = 0
    #: Invocations recorded, including those THROTTLED or REFUSED.
    invocations: int = 0
    delivered: int = 0
    failed: int = 0
    #: Of the invocations recorded, those over their rule's rate, and those too deep.
    throttled: int = 0
    refused: int = 0


class _Failure(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class RulesEngine(LeaderService):
    """Routes and delivers while this process leads the ``rules`` role (see :mod:`.leader`)."""

    name = "rules engine"
    wake_on_change = True

    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        http: HttpExecutor,
        config: RulesConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(storage=storage, role=ROLE, log=log)
        self.config = config or RulesConfig()
        self._clock = clock
        self._http = http
        self._rng = rng or random.Random()
        self._rule_index: RuleIndex | None = None
        self._budget = InvocationBudget()

    @property
    def poll_seconds(self) -> float:
        return self.config.poll_seconds

    @property
    def min_gap_seconds(self) -> float:
        return self.config.min_gap_seconds

    async def _lead(self) -> float | None:
        """Rounds until a batch is not full; then sleep until the next retry is due."""
        while True:
            report = await self.run_once()
            if max(report.events, report.delivered + report.failed) < self.config.batch_size:
                break
        upcoming = await self._storage.rules.next_invocation_at()
        return None if upcoming is None else (upcoming - self._clock.now()).total_seconds()

    async def run_once(self) -> RulesReport:
        """Route the unrouted events and deliver the due invocations (one batch of each)."""
        routed = await self._route()
        delivered, failed = await self._deliver()
        return RulesReport(
            events=routed.events,
            invocations=routed.invocations,
            delivered=delivered,
            failed=failed,
            throttled=routed.throttled,
            refused=routed.refused,
        )

    # -- routing --------------------------------------------------------------------------------

    async def _route(self) -> RulesReport:
        events = await self._storage.events.unrouted(self.config.batch_size)
        if not events:
            return RulesReport()
        index = await self._index()
        now = self._clock.now()
        invocations = [
            self._invocation(stored, rule, target.id, now)
            for stored in events
            for rule in index.matching(stored.envelope)
            for target in rule.spec.targets
        ]
        recorded = await self._storage.events.route(
            [stored.seq for stored in events], invocations, now
        )
        throttled = self._count(invocations, InvocationState.THROTTLED, "throttled")
        refused = self._count(invocations, InvocationState.REFUSED, "refused")
        return RulesReport(
            events=len(events), invocations=recorded, throttled=throttled, refused=refused
        )

    def _invocation(
        self, stored: StoredEvent, rule: Rule, target: str, now: datetime
    ) -> NewInvocation:
        """The invocation of ``target`` for ``stored``: PENDING, or REFUSED when it would act
        deeper than the cap, or THROTTLED when its rule is over its rate (a refusal spends none
        of the rate)."""
        depth = stored.depth + 1
        per_minute = rule.spec.max_invocations_per_minute
        state = InvocationState.PENDING
        error = depth_refusal(depth, self.config.max_causation_depth)
        if error is not None:
            state = InvocationState.REFUSED
        elif not self._budget.take(rule.name, per_minute, now):
            state, error = InvocationState.THROTTLED, throttled_reason(per_minute)
        return NewInvocation(
            id=str(uuid.uuid4()),
            rule=rule.name,
            target=target,
            event=stored.envelope,
            depth=depth,
            state=state,
            error=error,
        )

    @staticmethod
    def _count(invocations: list[NewInvocation], state: InvocationState, verb: str) -> int:
        """How many of ``invocations`` are in ``state``; a warning per rule that has some."""
        by_rule: dict[str, list[NewInvocation]] = {}
        for invocation in invocations:
            if invocation.state is state:
                by_rule.setdefault(invocation.rule, []).append(invocation)
        for rule, some in by_rule.items():
            log.warning("rule %s: %d invocations %s: %s", rule, len(some), verb, some[-1].error)
        return sum(len(some) for some in by_rule.values())

    async def _index(self) -> RuleIndex:
        """The enabled rules, indexed; made again only when one changed."""
        rules = await self._storage.rules.all(enabled_only=True)
        if self._rule_index is None or self._rule_index.rules != tuple(rules):
            self._rule_index = RuleIndex(rules)
            self._budget.keep_only(rule.name for rule in rules)
        return self._rule_index

    # -- delivering -----------------------------------------------------------------------------

    async def _deliver(self) -> tuple[int, int]:
        now = self._clock.now()
        due = await self._storage.rules.due_invocations(now, self.config.batch_size)
        if not due:
            return 0, 0
        rules = {rule.name: rule for rule in await self._storage.rules.all()}
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(invocation: Invocation) -> InvocationUpdate:
            async with gate:
                return await self._try(invocation, rules.get(invocation.rule))

        updates = await asyncio.gather(*(one(invocation) for invocation in due))
        await self._storage.rules.update_invocations(updates)
        delivered = sum(update.state is InvocationState.DELIVERED for update in updates)
        return delivered, len(updates) - delivered

    async def _try(self, invocation: Invocation, rule: Rule | None) -> InvocationUpdate:
        attempts = invocation.attempts + 1
        target = None if rule is None else rule.spec.target(invocation.target)
        try:
            if rule is None or target is None:
                raise _Failure("the rule no longer has this target", retryable=False)
            result = await self._invoke(rule, target, invocation)
        except _Failure as failure:
            now = self._clock.now()
            retry_at = None
            if failure.retryable and target is not None:
                retry_at = target.retry_policy.next_attempt(
                    attempts, invocation.created_at, now, self._rng
                )
            log.warning(
                "rule %s target %s: %s%s",
                invocation.rule,
                invocation.target,
                failure,
                "" if retry_at else " (dead)",
            )
            return InvocationUpdate(
                id=invocation.id,
                state=InvocationState.PENDING if retry_at else InvocationState.DEAD,
                attempts=attempts,
                next_attempt_at=retry_at,
                error=str(failure),
                now=now,
            )
        return InvocationUpdate(
            id=invocation.id,
            state=InvocationState.DELIVERED,
            attempts=attempts,
            next_attempt_at=None,
            result=result,
            now=self._clock.now(),
        )

    async def _invoke(self, rule: Rule, target: Target, invocation: Invocation) -> str:
        event = invocation.event
        try:
            if isinstance(target, SubmitJobTarget):
                return await self._submit(rule, target, event, invocation.depth)
            if isinstance(target, RegisterRevisionTarget):
                return await self._register(target, event)
            return await self._post(target, event, invocation.depth)
        except _Failure:
            raise
        except WebhookError as error:
            raise _Failure(str(error), retryable=error.retryable) from None
        except (ValidationError, NotFoundError, ConflictError) as error:
            # A target that cannot work for this event (a definition gone or inactive, an event
            # without an image): trying again would not help.
            raise _Failure(str(error), retryable=False) from None
        except DockyardError as error:  # the store could not be reached, say
            raise _Failure(str(error), retryable=True) from None

    async def _submit(
        self, rule: Rule, target: SubmitJobTarget, event: Mapping[str, Any], depth: int
    ) -> str:
        now = self._clock.now()
        request = job_request(rule.name, target, event, ingestion_time=iso_time(now))
        definition = await self._definition(request.definition)
        inserted = await self._storage.rules.submit_job(new_job(request, definition, now), depth)
        return f"job {inserted.job.id}"

    async def _register(self, target: RegisterRevisionTarget, event: Mapping[str, Any]) -> str:
        latest = await self._definition(target.definition)
        current = definition_document(latest.name, latest.spec)
        document = revision_document(current, event)
        if document == current:
            return f"definition {latest.ref} already runs {document['image']}"
        spec = admit_definition(parse_definition(document))
        registered = await self._storage.definitions.insert(latest.name, spec, self._clock.now())
        log.info("rule registered %s with %s", registered.ref, document["image"])
        return f"definition {registered.ref}"

    async def _post(self, target: WebhookTarget, event: Mapping[str, Any], depth: int) -> str:
        return await self._http.post_event(
            target.url,
            json.dumps(event).encode(),
            secret_env=target.secret_env,
            headers={**target.headers, DEPTH_HEADER: str(depth)},
            timeout=target.timeout_seconds,
        )

    async def _definition(self, ref: str) -> Definition:
        name, revision = parse_definition_ref(ref)
        definition = await self._storage.definitions.get(name, revision)
        if definition is None:
            raise NotFoundError("active revision of definition", ref)
        return definition
