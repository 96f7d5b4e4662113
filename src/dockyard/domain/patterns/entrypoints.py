"""Compiling, size checks and the one-shot test; the cache of compiled patterns."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

from dockyard.domain.patterns.compiled import EventPattern
from dockyard.domain.patterns.errors import (
    MAX_CACHED_CHARACTERS,
    MAX_CACHED_PATTERNS,
    MAX_PATTERN_CHARACTERS,
    InvalidEvent,
    InvalidEventPattern,
)
from dockyard.domain.patterns.matchers import _make_branch
from dockyard.domain.patterns.parse import _no_constant, _Object, _parse_object, _plain, _Term
from dockyard.domain.patterns.wildcards import _check_wildcard_complexity


def compile_pattern(pattern: str | Mapping[str, Any]) -> EventPattern:
    """Validate ``pattern`` (JSON text or a parsed object) and compile it, or take it from the
    cache of compiled patterns: the form for the patterns of stored rules, compiled again and
    again. It takes a pattern of any size (one stored before the size limit existed must still
    load): check what comes in with :func:`check_pattern_size` first.

    Raises :class:`InvalidEventPattern` with AWS's reason when EventBridge would refuse it. Text
    keeps every key as written: when a key repeats, the last one wins, as on AWS."""
    text = _pattern_text(pattern)
    compiled = _CACHE.get(text)
    if compiled is None:
        compiled = _compile_text(text)
        _CACHE.put(text, compiled)
    return compiled


def check_pattern_size(pattern: object) -> None:
    """Refuse a pattern longer than :data:`MAX_PATTERN_CHARACTERS`, before anything compiles it.

    Text is measured as written, as AWS measures it; a parsed object as its compact JSON (no
    space between tokens). Anything else is left for the compiler to refuse."""
    if isinstance(pattern, str):
        size = len(pattern)
    elif isinstance(pattern, Mapping):
        try:
            size = len(json.dumps(pattern, separators=(",", ":"), ensure_ascii=False))
        except (TypeError, ValueError, RecursionError):
            return  # not JSON: the compiler says why
    else:
        return
    if size > MAX_PATTERN_CHARACTERS:
        raise InvalidEventPattern(
            f"Event pattern must have length less than or equal to {MAX_PATTERN_CHARACTERS}"
            f" characters (this one has {size})"
        )


def matches(pattern: str | Mapping[str, Any], event: str | Mapping[str, Any]) -> bool:
    """``TestEventPattern``: whether ``event`` matches ``pattern``.

    The pattern is refused past :data:`MAX_PATTERN_CHARACTERS` and compiled for this call only,
    never cached. The work grows with the pattern and the event: callers that serve others run
    it off their event loop."""
    check_pattern_size(pattern)
    compiled = _compile_text(_pattern_text(pattern))
    if isinstance(event, str):
        try:
            event = json.loads(event)
        except RecursionError:
            raise InvalidEvent("nested too deeply") from None
        except ValueError as error:
            raise InvalidEvent(f"not valid JSON: {error}") from None
        if not isinstance(event, dict):
            raise InvalidEvent("an event is a JSON object")
    return compiled.matches(event)


def _pattern_text(pattern: str | Mapping[str, Any]) -> str:
    if isinstance(pattern, str):
        return pattern
    if not isinstance(pattern, Mapping):
        raise InvalidEventPattern("Filter is not an object")
    try:
        return json.dumps(pattern, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidEventPattern(f"Filter is not valid JSON: {error}") from None


class _CompiledPatterns:
    """The compiled patterns used most recently, at most ``entries`` of them and ``characters``
    of their text in all; one lock makes it safe to share between threads."""

    def __init__(self, entries: int, characters: int) -> None:
        self.entries = entries
        self.characters = characters
        self._patterns: OrderedDict[str, EventPattern] = OrderedDict()
        self._size = 0  # the characters of the texts held, kept equal to their sum
        self._lock = threading.Lock()

    def get(self, text: str) -> EventPattern | None:
        with self._lock:
            compiled = self._patterns.get(text)
            if compiled is not None:
                self._patterns.move_to_end(text)
            return compiled

    def put(self, text: str, compiled: EventPattern) -> None:
        if len(text) > self.characters:
            return  # larger than the whole cache: compiled each time rather than held
        with self._lock:
            if text in self._patterns:
                return
            self._patterns[text] = compiled
            self._size += len(text)
            while len(self._patterns) > self.entries or self._size > self.characters:
                evicted, _ = self._patterns.popitem(last=False)
                self._size -= len(evicted)

    def size(self) -> tuple[int, int]:
        """How many patterns are held, and how many characters of text they have."""
        with self._lock:
            return len(self._patterns), self._size

    def clear(self) -> None:
        with self._lock:
            self._patterns.clear()
            self._size = 0


_CACHE: Final = _CompiledPatterns(MAX_CACHED_PATTERNS, MAX_CACHED_CHARACTERS)


def _compile_text(text: str) -> EventPattern:
    try:
        document = json.loads(text, object_pairs_hook=_Object, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidEventPattern("Filter is nested too deeply") from None
    except ValueError as error:
        raise InvalidEventPattern(f"Filter is not valid JSON: {error}") from None
    if not isinstance(document, _Object):
        raise InvalidEventPattern("Filter is not an object")
    rules: list[dict[str, tuple[_Term, ...]]] = []
    try:
        _parse_object(document, [], rules, in_or=False)
    except RecursionError:
        raise InvalidEventPattern("Filter is nested too deeply") from None
    _check_wildcard_complexity(rules)
    branches = tuple(_make_branch(rule) for rule in rules)
    return EventPattern(source=json.dumps(_plain(document)), _branches=branches)
