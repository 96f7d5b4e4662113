"""Wildcard patterns: tokens, globbing, and event-ruler's complexity measure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from dockyard.domain.patterns.compiled import _Accept
from dockyard.domain.patterns.errors import MAX_WILDCARD_COMPLEXITY, InvalidEventPattern

if TYPE_CHECKING:  # only an annotation: parse imports this module
    from dockyard.domain.patterns.parse import _Term


# -- wildcards ----------------------------------------------------------------------------------

#: A wildcard token that is ``*`` rather than a byte.
_STAR: Final = -1


def _wildcard_tokens(text: str, *, quoted: bool = True) -> tuple[int, ...]:
    """``text`` as event-ruler reads a wildcard: the UTF-8 bytes of ``"text"`` (quotes included,
    as the error positions count them), ``_STAR`` for each unescaped ``*``."""
    data = (f'"{text}"' if quoted else text).encode("utf-8", "surrogatepass")
    tokens: list[int] = []
    index = 0
    while index < len(data):
        byte = data[index]
        following = data[index + 1] if index + 1 < len(data) else None
        if byte == 0x2A:  # *
            if following == 0x2A:
                raise InvalidEventPattern(f"Consecutive wildcard characters at pos {index}")
            tokens.append(_STAR)
        elif byte == 0x5C:  # backslash: escapes * or itself, nothing else
            if following not in (0x2A, 0x5C):
                raise InvalidEventPattern(f"Invalid escape character at pos {index}")
            tokens.append(following)
            index += 1
        else:
            tokens.append(byte)
        index += 1
    return tuple(tokens)


def _glob(tokens: tuple[int, ...]) -> _Accept:
    """A test of strings against quoted wildcard ``tokens`` (``*`` matches any run, even empty)."""
    segments: list[str] = []
    current = bytearray()
    for token in tokens[1:-1]:
        if token == _STAR:
            segments.append(current.decode("utf-8", "surrogatepass"))
            current = bytearray()
        else:
            current.append(token)
    segments.append(current.decode("utf-8", "surrogatepass"))
    if len(segments) == 1:
        exact = segments[0]
        return lambda value: value == exact
    first, middle, last = segments[0], tuple(segments[1:-1]), segments[-1]
    shortest = len(first) + len(last)

    def glob(value: str) -> bool:
        if len(value) < shortest or not value.startswith(first) or not value.endswith(last):
            return False
        position, end = len(first), len(value) - len(last)
        for segment in middle:  # leftmost first is always right with only *
            found = value.find(segment, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True

    return glob


def _wildcard_complexity(patterns: Iterable[tuple[int, ...]], limit: int) -> int:
    """event-ruler's ``MachineComplexityEvaluator`` measure for the wildcards of one field.

    The most wildcard-pattern prefixes that one input can match at once, summed over the distinct
    patterns: for ``"a*aa"`` the input ``"aaa`` matches ``"a*``, ``"a*a`` and ``"a*aa``, so 3. It
    is computed on the subset automaton of the patterns' prefixes and stops at ``limit``."""
    pats = sorted(set(patterns))
    if not pats:
        return 0
    alphabet = [*sorted({token for pattern in pats for token in pattern if token != _STAR}), 256]

    def closure(pattern: tuple[int, ...], states: Iterable[int]) -> frozenset[int]:
        reached = set(states)
        reached.update(k + 1 for k in list(reached) if k < len(pattern) and pattern[k] == _STAR)
        return frozenset(reached)

    def step(pattern: tuple[int, ...], states: frozenset[int], byte: int) -> frozenset[int]:
        reached = {k + 1 for k in states if k < len(pattern) and pattern[k] == byte}
        reached.update(k for k in states if k > 0 and pattern[k - 1] == _STAR)
        return closure(pattern, reached)

    start = tuple(closure(pattern, (0,)) for pattern in pats)
    seen = {start}
    pending = [start]
    highest = 0
    while pending:
        current = pending.pop()
        highest = max(highest, sum(len(states - {0}) for states in current))
        if highest >= limit:
            return limit
        for byte in alphabet:
            following = tuple(step(p, s, byte) for p, s in zip(pats, current, strict=True))
            if following not in seen:
                if len(seen) >= 50_000:  # a state explosion is complexity enough
                    return limit
                seen.add(following)
                pending.append(following)
    return highest


def _check_wildcard_complexity(rules: list[dict[str, tuple[_Term, ...]]]) -> None:
    by_field: dict[str, set[tuple[int, ...]]] = {}
    for rule in rules:
        for name, terms in rule.items():
            for term in terms:
                if term.kind == "wildcard":
                    by_field.setdefault(name, set()).add(term.value)
    for wildcards in by_field.values():
        limit = MAX_WILDCARD_COMPLEXITY + 1
        if _wildcard_complexity(wildcards, limit) > MAX_WILDCARD_COMPLEXITY:
            raise InvalidEventPattern(
                "Rule is too complex - try using fewer wildcard characters or fewer repeating "
                "character sequences after a wildcard character"
            )
