"""Retry policy: attempts, exponential backoff with jitter, and AWS Batch ``evaluateOnExit`` rules.

The semantics follow AWS Batch (see ``shared/reference/aws-semantics.md`` §1.4): rules are tried in
order and the first whose every given condition matches decides; when none matches, the attempt is
retried if attempts remain. Timeouts and cancellations are never retried; the caller decides that
before asking the policy.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DEFAULT_BACKOFF_BASE",
    "DEFAULT_BACKOFF_MAX",
    "ExitAction",
    "ExitRule",
    "RetryPolicy",
    "backoff_delay",
    "matching_rule",
]

DEFAULT_BACKOFF_BASE = 60.0
DEFAULT_BACKOFF_MAX = 24 * 3600.0
#: The delay is stretched by a random fraction up to this much, so that retries of many jobs that
#: failed together do not all come back in the same instant.
JITTER = 0.1

_EXIT_CODE_GLOB = re.compile(r"^[0-9]*\*?$")
_REASON_GLOB = re.compile(r"^[A-Za-z0-9.:\s]*\*?$")


class ExitAction(StrEnum):
    RETRY = "RETRY"
    EXIT = "EXIT"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitRule:
    """One ``evaluate_on_exit`` entry: all given conditions must match for ``action`` to apply."""

    action: ExitAction
    on_exit_code: str | None = None
    on_reason: str | None = None
    on_status_reason: str | None = None

    def matches(self, *, exit_code: int | None, reason: str, status_reason: str) -> bool:
        code = "" if exit_code is None else str(exit_code)
        return (
            _glob_matches(self.on_exit_code, code)
            and _glob_matches(self.on_reason, reason)
            and _glob_matches(self.on_status_reason, status_reason)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    attempts: int = 1
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_max: float = DEFAULT_BACKOFF_MAX
    evaluate_on_exit: tuple[ExitRule, ...] = ()


def _glob_matches(pattern: str | None, value: str) -> bool:
    if pattern is None:
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def is_valid_exit_code_glob(pattern: str) -> bool:
    return len(pattern) <= 512 and bool(_EXIT_CODE_GLOB.match(pattern))


def is_valid_reason_glob(pattern: str) -> bool:
    return len(pattern) <= 512 and bool(_REASON_GLOB.match(pattern))


def matching_rule(
    policy: RetryPolicy, *, exit_code: int | None, reason: str, status_reason: str
) -> ExitRule | None:
    """The first rule that matches the failed attempt, or None."""
    for rule in policy.evaluate_on_exit:
        if rule.matches(exit_code=exit_code, reason=reason, status_reason=status_reason):
            return rule
    return None


def backoff_delay(policy: RetryPolicy, failed_attempts: int, rng: random.Random) -> float:
    """Seconds to wait before the next attempt: ``min(base × 2^(n-1), max)`` plus up to 10 % jitter.

    ``failed_attempts`` counts the attempts that failed so far (1 after the first failure).
    The result never exceeds ``backoff_max`` and is never below the un-jittered delay.
    """
    if policy.backoff_base <= 0:
        return 0.0
    delay = min(policy.backoff_base * 2.0 ** max(failed_attempts - 1, 0), policy.backoff_max)
    return min(delay * (1 + JITTER * rng.random()), policy.backoff_max)
