"""Records for the conformance suite, made by the domain's own constructors at fixed times.

The suite never writes rows by hand: a job is what :func:`new_job` validates, a schedule what
:func:`parse_schedule` reads, a rule what :func:`parse_rule` reads, and a change of state is a
:mod:`~dockyard.domain.transitions` constructor. So the records a backend is given are exactly
those production gives it, and times are fixed (``T0`` and offsets from it), never the clock.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from dockyard.domain.definitions import parse_definition
from dockyard.domain.events import Event
from dockyard.domain.fire_plans import first_fire
from dockyard.domain.jobs import SubmitRequest, new_job
from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import Definition, DefinitionSpec, Job, NewJob
from dockyard.domain.retry import RetryPolicy
from dockyard.domain.rules import Rule, parse_rule
from dockyard.domain.scheduling import Schedule, parse_schedule
from dockyard.domain.transitions import Transition, after_outcome
from dockyard.storage import ClaimRequest

__all__ = [
    "LEASE",
    "T0",
    "at",
    "claim_request",
    "definition_spec",
    "event",
    "finish",
    "job",
    "rule",
    "schedule",
]

#: The moment every test starts from (a fixed time, so each run writes the same rows).
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def at(seconds: float) -> datetime:
    """``seconds`` after :data:`T0`."""
    return T0 + timedelta(seconds=seconds)


def definition_spec(**fields: Any) -> DefinitionSpec:
    """A process definition's spec, with the document ``fields`` given."""
    return parse_definition({"executor": "process", "command": ["true"], **fields})


def job(definition: Definition, now: datetime = T0, **request: Any) -> NewJob:
    """A job of ``definition`` submitted at ``now`` (``request``: the fields of a submit)."""
    return new_job(SubmitRequest(definition=definition.name, **request), definition, now)


def claim_request(
    worker_id: str = "w1",
    *,
    now: datetime = T0,
    limit: int = 10,
    queues: tuple[str, ...] | None = None,
    executors: tuple[str, ...] | None = None,
) -> ClaimRequest:
    return ClaimRequest(
        worker_id=worker_id,
        queues=queues,
        limit=limit,
        now=now,
        lease_until=now + LEASE,
        executors=executors,
    )


def finish(
    claimed: Job, worker_id: str, now: datetime, outcome: Outcome | None = None
) -> Transition:
    """The worker's end of a RUNNING job's attempt (success unless ``outcome`` says otherwise)."""
    return after_outcome(
        claimed,
        RetryPolicy(attempts=claimed.max_attempts),
        outcome or Outcome.succeeded(exit_code=0),
        worker_id=worker_id,
        now=now,
        rng=random.Random(0),
    )


def schedule(name: str, expression: str, now: datetime = T0, **fields: Any) -> Schedule:
    """A new schedule of ``build`` jobs created at ``now``, its first fire worked out as the
    facade does (``fields``: the schedule document's)."""
    spec, enabled = parse_schedule(
        {"expression": expression, "target": {"definition": "build"}, **fields}
    )
    return Schedule(
        name=name,
        spec=spec,
        enabled=enabled,
        created_at=now,
        updated_at=now,
        next_fire_at=first_fire(spec, now=now, anchor=now),
    )


def rule(name: str, now: datetime = T0, *, source: str = "shop", **fields: Any) -> Rule:
    """A rule matching events of ``source``, with one webhook target ``hook`` unless ``fields``
    say otherwise (``fields``: the rule document's)."""
    document = {
        "event_pattern": {"source": [source]},
        "targets": [{"id": "hook", "kind": "webhook", "url": "https://hooks.example.com/a"}],
        **fields,
    }
    spec, enabled = parse_rule(document)
    return Rule(name=name, spec=spec, enabled=enabled, created_at=now, updated_at=now)


def event(source: str = "shop", detail_type: str = "Order Placed", now: datetime = T0) -> Event:
    return Event.new(source, detail_type, {"order": 1}, now=now)
