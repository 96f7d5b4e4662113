"""What an executor reports when an attempt ends. Executors never touch storage; they return this."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from dockyard.domain.records import JSON
from dockyard.domain.staging import OutputRecord

__all__ = ["Outcome", "OutcomeKind"]


class OutcomeKind(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"
    LOST = "LOST"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How an attempt ended. ``reason`` is short and matchable (``NonZeroExit``, ``Timeout``,
    ``ValueError``); ``status_reason`` is the sentence a person reads."""

    kind: OutcomeKind
    exit_code: int | None = None
    reason: str | None = None
    status_reason: str | None = None
    result: JSON = None
    #: The image that ran, as ``reference@digest`` (containers only).
    image: str | None = None
    #: False when retrying cannot help (an HTTP 404): the job ends unless a rule says RETRY.
    retryable: bool = True
    #: Seconds the other side asked to wait before a retry (HTTP ``Retry-After``).
    retry_after: float | None = None
    #: The output files uploaded after the attempt (kept on the attempt).
    outputs: tuple[OutputRecord, ...] = ()

    def with_retry(self, retryable: bool, retry_after: float | None = None) -> Outcome:
        """This outcome, saying whether a retry can help and when the other side wants it."""
        return replace(self, retryable=retryable, retry_after=retry_after)

    @classmethod
    def succeeded(cls, *, exit_code: int | None = 0, result: JSON = None) -> Outcome:
        return cls(kind=OutcomeKind.SUCCEEDED, exit_code=exit_code, result=result)

    @classmethod
    def failed(cls, *, reason: str, status_reason: str, exit_code: int | None = None) -> Outcome:
        return cls(
            kind=OutcomeKind.FAILED,
            exit_code=exit_code,
            reason=reason,
            status_reason=status_reason,
        )

    @classmethod
    def exited(cls, exit_code: int) -> Outcome:
        """The outcome of a program that ended by itself with ``exit_code``."""
        if exit_code == 0:
            return cls.succeeded(exit_code=0)
        if exit_code < 0:
            return cls.failed(
                reason="Signal",
                status_reason=f"Killed by signal {-exit_code}",
                exit_code=128 - exit_code,
            )
        return cls.failed(
            reason="NonZeroExit", status_reason=f"Exited with code {exit_code}", exit_code=exit_code
        )

    @classmethod
    def timed_out(cls, seconds: float, exit_code: int | None = None) -> Outcome:
        return cls(
            kind=OutcomeKind.TIMED_OUT,
            exit_code=exit_code,
            reason="Timeout",
            status_reason=f"Job attempt duration exceeded timeout ({seconds:g} s)",
        )

    @classmethod
    def cancelled(cls, exit_code: int | None = None) -> Outcome:
        return cls(
            kind=OutcomeKind.CANCELLED,
            exit_code=exit_code,
            reason="Cancelled",
            status_reason="Cancelled while running",
        )
