"""What stops a rule that triggers itself: a causation depth with a cap, and a rate per rule.

**Causation depth.** Every event has a depth: 0 when a user, a registry or a schedule is behind
it, and, for Dockyard's own ``Job State Change`` events, the depth of the job they are about. A
job has depth 0 when a user, the API or a schedule submitted it, and ``d + 1`` when a rule's
``submit-job`` target submitted it for an event of depth ``d``. An invocation acts at the depth
of its event plus one; one deeper than the engine's cap (16 by default, as AWS Lambda stops a
recursive loop after about 16 invocations) is not made but recorded ``REFUSED``: a chain of
rules that keeps feeding itself ends after 16 links, whatever each link does.

**Rate.** A rule invokes its targets at most ``max_invocations_per_minute`` times a minute (one
invocation per target and matching event; 1,000 by default): each rule has a token bucket that
holds that many and refills at that rate, so a burst of up to the limit goes at once and a
steady flow at the limit never waits. An invocation over the limit is not made but recorded
``THROTTLED``, and is not tried again (a loop fed by retries would never stop): events that
matter are put again, once the rule's limit is raised.

The bucket is written here rather than taken from ``limits`` or ``aiolimiter``: those read the
system clock, and the rules engine takes its time from an injected clock (tests move it), so a
bucket is a few lines of arithmetic on the times it is given. Buckets live in the memory of the
one rules leader; a new leader starts them full (a failover forgives a minute's count).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from dockyard.errors import ValidationError

__all__ = [
    "DEFAULT_MAX_CAUSATION_DEPTH",
    "DEFAULT_MAX_INVOCATIONS_PER_MINUTE",
    "MAX_INVOCATIONS_PER_MINUTE",
    "InvocationBudget",
    "check_invocations_per_minute",
    "depth_refusal",
    "throttled_reason",
]

#: The deepest an invocation may act at (what the rules engine uses unless told otherwise).
DEFAULT_MAX_CAUSATION_DEPTH = 16
#: A rule's limit when its document names none: about 17 a second, or a burst of 1,000.
DEFAULT_MAX_INVOCATIONS_PER_MINUTE = 1000
#: The highest limit a rule may set.
MAX_INVOCATIONS_PER_MINUTE = 100_000


def check_invocations_per_minute(value: object, field: str = "max_invocations_per_minute") -> int:
    """A rule's rate limit, validated; errors name ``field``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer from 1 to {MAX_INVOCATIONS_PER_MINUTE}")
    if not 1 <= value <= MAX_INVOCATIONS_PER_MINUTE:
        raise ValidationError(field, f"must be an integer from 1 to {MAX_INVOCATIONS_PER_MINUTE}")
    return value


def depth_refusal(depth: int, cap: int) -> str | None:
    """Why an invocation at ``depth`` is not made, or None when it may be."""
    if depth <= cap:
        return None
    return f"causation depth {depth} exceeds {cap}: a rule loop?"


def throttled_reason(per_minute: int) -> str:
    """What a throttled invocation's history says."""
    return f"throttled: over the rule's max_invocations_per_minute ({per_minute})"


class InvocationBudget:
    """A token bucket per rule: ``take`` answers whether one more invocation fits the rate."""

    __slots__ = ("_buckets",)

    def __init__(self) -> None:
        #: Per rule: the tokens left, and when they were counted.
        self._buckets: dict[str, tuple[float, datetime]] = {}

    def take(self, rule: str, per_minute: int, now: datetime) -> bool:
        """Spend one of ``rule``'s tokens at ``now``, if it has one."""
        capacity = float(per_minute)
        tokens, counted_at = self._buckets.get(rule, (capacity, now))
        elapsed = max((now - counted_at).total_seconds(), 0.0)  # a clock set back adds nothing
        tokens = min(capacity, tokens + elapsed * per_minute / 60.0)
        allowed = tokens >= 1.0
        self._buckets[rule] = (tokens - 1.0 if allowed else tokens, now)
        return allowed

    def keep_only(self, rules: Iterable[str]) -> None:
        """Forget the buckets of rules that are gone (or disabled), so none leak."""
        kept = set(rules)
        for name in [name for name in self._buckets if name not in kept]:
            del self._buckets[name]
