"""Rules indexed by the sources their patterns require, so that an event is matched against the
few rules that can match it instead of all of them.

The index answers exactly what matching every rule in turn answers, in the same order (a test
checks this against random rules and events); it only skips patterns that cannot match.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from dockyard.domain.rules import Rule

__all__ = ["RuleIndex"]


class RuleIndex:
    """Rules indexed by the exact sources their patterns require, for matching many at once.

    Most patterns name their ``source`` with exact values; an event is then tried only against
    the patterns of its own source and those that name none (or name it otherwise: a prefix, an
    ``anything-but``). With 1,000 rules over 50 sources, that is ~20 patterns per event instead
    of 1,000 (``python -m bench.rules``).
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        anywhere: list[Rule] = []
        by_source: dict[str, list[Rule]] = {}
        for rule in self.rules:
            sources = _exact_sources(rule.spec.event_pattern)
            if sources is None:
                anywhere.append(rule)
            for source in sources or ():
                by_source.setdefault(source, []).append(rule)
        self._anywhere = tuple(anywhere)
        order = {id(rule): index for index, rule in enumerate(self.rules)}
        #: Per source, its rules and those of any source, in the order they were given.
        self._by_source = {
            source: tuple(sorted((*anywhere, *own), key=lambda rule: order[id(rule)]))
            for source, own in by_source.items()
        }

    def matching(self, event: Mapping[str, Any]) -> list[Rule]:
        """The rules whose pattern ``event`` matches, in the order they were given."""
        source = event.get("source")
        if isinstance(source, str):
            candidates = self._by_source.get(source, self._anywhere)
        else:
            candidates = self.rules
        return [rule for rule in candidates if rule.spec.pattern.matches(event)]


@functools.lru_cache(maxsize=4096)
def _exact_sources(pattern_text: str) -> frozenset[str] | None:
    """The only sources a pattern can match, when it names them as exact strings; else None."""
    pattern = json.loads(pattern_text)
    values = pattern.get("source") if isinstance(pattern, dict) else None
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        return frozenset(values)
    return None
