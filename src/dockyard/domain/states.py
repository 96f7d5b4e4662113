"""Job and definition states, named as AWS Batch names them."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ACTIVE_STATES", "TERMINAL_STATES", "DefinitionStatus", "JobState"]


class JobState(StrEnum):
    """Where a job is in its life; see DESIGN.md §3 for the diagram."""

    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNABLE = "RUNNABLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
#: States in which a worker holds the job under a lease.
ACTIVE_STATES = frozenset({JobState.STARTING, JobState.RUNNING})


class DefinitionStatus(StrEnum):
    """An INACTIVE revision takes no new jobs; jobs already submitted still run."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
