"""Limits and errors of event patterns, with AWS's reason text."""

from __future__ import annotations

from typing import Final

from dockyard.errors import ValidationError

REASON_PREFIX: Final = "Event pattern is not valid. Reason: "
#: The longest pattern taken in, in characters: EventBridge's API refuses an ``EventPattern``
#: longer than 4,096 (``PutRule``; its "Event pattern size" quota is 2,048 by default and may be
#: raised to that), and so does Dockyard, so that every pattern AWS can hold works here too.
MAX_PATTERN_CHARACTERS: Final = 4096
#: The compiled patterns :func:`compile_pattern` keeps: at most this many, and at most this much
#: pattern text in all (a compiled pattern takes about 25 bytes a character of its text).
MAX_CACHED_PATTERNS: Final = 4096
MAX_CACHED_CHARACTERS: Final = 2 * 1024 * 1024
#: At most this many alternatives after expanding every ``$or``.
MAX_COMBINATIONS: Final = 1000
#: The most complexity the wildcards of one field may have (see :func:`_wildcard_complexity`).
#: Inferred from AWS: ``/Users/*/dir/dir/dir/dir/dir/doc.txt`` (7) is accepted and
#: ``*:*:*:*:*:event-bus/*`` (11) is refused.
MAX_WILDCARD_COMPLEXITY: Final = 10


class InvalidEventPattern(ValidationError, ValueError):
    """A pattern EventBridge would reject; ``message`` is AWS's text for the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.message = REASON_PREFIX + reason
        super().__init__("pattern", self.message)


class InvalidEvent(ValidationError, ValueError):
    """An event that is not a JSON object."""

    def __init__(self, rule: str) -> None:
        super().__init__("event", rule)
