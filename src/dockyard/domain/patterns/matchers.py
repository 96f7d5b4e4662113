"""Matchers: what a field's leaf values may be, built from parsed terms."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from dockyard.domain.patterns.addresses import _Address, _address
from dockyard.domain.patterns.compiled import (
    _MISSING,
    _SCALARS,
    _Accept,
    _Branch,
    _collect,
    _collector_two,
    _Field,
    _leaves,
    _Occurrence,
)
from dockyard.domain.patterns.parse import _Term
from dockyard.domain.patterns.wildcards import _glob

# -- matchers -----------------------------------------------------------------------------------


def _ignore_case(pattern: str, mode: str) -> Callable[[str], bool]:
    """Case-insensitive equality, prefix or suffix: each character of ``pattern`` matches
    itself, its lower case or its upper case (event-ruler's rule, so the Kelvin sign is not k)."""
    if pattern.isascii():
        folded, size = pattern.lower(), len(pattern)
        if mode == "full":
            return lambda value: len(value) == size and value.isascii() and value.lower() == folded
        if mode == "prefix":
            return lambda value: (head := value[:size]).isascii() and head.lower() == folded
        if size == 0:
            return lambda value: True
        return lambda value: (tail := value[-size:]).isascii() and tail.lower() == folded
    alternatives = []
    for char in pattern:
        variants = sorted({char, char.lower(), char.upper()}, key=len, reverse=True)
        alternatives.append("(?:" + "|".join(re.escape(variant) for variant in variants) + ")")
    body = "".join(alternatives)
    if mode == "full":
        full = re.compile(body, re.DOTALL).fullmatch
        return lambda value: full(value) is not None
    if mode == "prefix":
        start = re.compile(body, re.DOTALL).match
        return lambda value: start(value) is not None
    end = re.compile(f"(?:{body})\\Z", re.DOTALL).search
    return lambda value: end(value) is not None


def _in_range(low: Any, low_open: bool, high: Any, high_open: bool) -> _Accept:
    if low is not None and high is not None:
        if low == high:
            return lambda value: value == low
        if low_open:
            if high_open:
                return lambda value: low < value < high
            return lambda value: low < value <= high
        if high_open:
            return lambda value: low <= value < high
        return lambda value: low <= value <= high
    if low is not None:
        return (lambda value: value > low) if low_open else (lambda value: value >= low)
    return (lambda value: value < high) if high_open else (lambda value: value <= high)


class _Alternatives:
    """The alternatives of one field, sorted by the types of value they can accept."""

    def __init__(self) -> None:
        self.strings: set[str] = set()
        self.numbers: set[int | float] = set()
        self.literals: list[Any] = []  # None, True, False
        self.addresses: set[_Address] = set()
        self.blocks: list[tuple[int, int, int]] = []
        self.string_tests: list[Callable[[str], bool]] = []
        self.number_tests: list[_Accept] = []
        self.any_tests: list[_Accept] = []
        self.any_value = False
        self.absent = False

    def add(self, term: _Term) -> None:
        _ADDERS[term.kind](self, term.value)

    def accept(self) -> _Accept:
        if self.any_value:
            return _always
        strings = frozenset(self.strings)
        if not (self.numbers or self.literals or self.addresses or self.blocks) and not (
            self.string_tests or self.number_tests or self.any_tests
        ):
            return lambda value: value.__class__ is str and value in strings
        return _general_accept(self, strings)


def _always(value: Any) -> bool:
    return True


def _general_accept(alternatives: _Alternatives, strings: frozenset[str]) -> _Accept:
    """One test per JSON type of the value, each trying the alternatives of that type first,
    then the anything-buts (which accept values of every type)."""
    any_tests: list[_Accept] = list(alternatives.any_tests)
    string_tests: list[_Accept] = [strings.__contains__, *alternatives.string_tests]
    if alternatives.addresses or alternatives.blocks:
        string_tests.append(_address_test(alternatives.addresses, alternatives.blocks))
    numbers = frozenset(alternatives.numbers)
    number_tests: list[_Accept] = [numbers.__contains__, *alternatives.number_tests]
    literals = alternatives.literals
    by_kind = (
        _first_of([*string_tests, *any_tests]),
        _first_of([*number_tests, *any_tests]),
        _first_of(
            [
                *[(lambda item, v=v: item is v) for v in literals if v is not None],
                *any_tests,
            ]
        ),
        _first_of([_always] if None in literals else any_tests),
        _first_of(any_tests),
    )

    def accept(value: Any) -> bool:
        kind = _KINDS.get(value.__class__)
        if kind is None:
            kind = _kind(value)
        return by_kind[kind](value)

    return accept


def _address_test(addresses: set[_Address], blocks: list[tuple[int, int, int]]) -> _Accept:
    known = frozenset(addresses)
    ranges = tuple(blocks)

    def address_matches(value: str) -> bool:
        address = _address(value)
        if address is None:
            return False
        if address in known:
            return True
        size, number = address
        return any(size == length and low <= number <= high for length, low, high in ranges)

    return address_matches


_STRING, _NUMBER, _BOOLEAN, _NULL, _OTHER = range(5)
_KINDS: Final = {str: _STRING, int: _NUMBER, float: _NUMBER, bool: _BOOLEAN, type(None): _NULL}


def _kind(value: Any) -> int:
    """The JSON type of a value of an unusual class (a ``str`` or ``int`` subclass, say)."""
    if isinstance(value, str):
        return _STRING
    if isinstance(value, bool):
        return _BOOLEAN
    if isinstance(value, int | float):
        return _NUMBER
    return _OTHER


def _add_string(alternatives: _Alternatives, value: str) -> None:
    alternatives.strings.add(value)
    address = _address(value)  # event-ruler matches a literal address as an address
    if address is not None:
        alternatives.addresses.add(address)


def _add_anything_but(alternatives: _Alternatives, value: Any) -> None:
    strings, numbers = value

    def anything_but(item: Any) -> bool:
        kind = _KINDS.get(item.__class__)
        if kind is None:
            kind = _kind(item)
        if kind == _STRING:
            return item not in strings
        if kind == _NUMBER:
            return item not in numbers
        return True

    alternatives.any_tests.append(anything_but)


def _add_test(kind: str) -> Callable[[_Alternatives, Any], None]:
    def add(alternatives: _Alternatives, value: Any) -> None:
        alternatives.string_tests.append(_STRING_TESTS[kind](value))

    return add


def _add_anything_but_test(kind: str) -> Callable[[_Alternatives, Any], None]:
    def add(alternatives: _Alternatives, value: Any) -> None:
        affixes = tuple(value)
        if kind == "prefix":
            test: Callable[[str], bool] = lambda text: text.startswith(affixes)  # noqa: E731
        elif kind == "suffix":
            test = lambda text: text.endswith(affixes)  # noqa: E731
        else:
            test = _first_of([_STRING_TESTS[kind](item) for item in value])
        alternatives.any_tests.append(lambda item: not (isinstance(item, str) and test(item)))

    return add


def _first_of(tests: Sequence[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    """A test true when one of ``tests`` is (tried in order)."""
    if not tests:
        return _never
    if len(tests) == 1:
        return tests[0]
    checks = tuple(tests)

    def any_test(value: Any) -> bool:
        for test in checks:
            if test(value):
                return True
        return False

    return any_test


def _never(value: Any) -> bool:
    return False


def _add_numeric(alternatives: _Alternatives, value: Any) -> None:
    alternatives.number_tests.append(_in_range(*value))


def _add_exists(alternatives: _Alternatives, value: Any) -> None:
    if value:
        alternatives.any_value = True
    else:
        alternatives.absent = True


_STRING_TESTS: Final[dict[str, Callable[[Any], Callable[[str], bool]]]] = {
    "exactly": lambda text: text.__eq__,
    "prefix": lambda text: lambda value: value.startswith(text),
    "suffix": lambda text: lambda value: value.endswith(text),
    "equals-ignore-case": lambda text: _ignore_case(text, "full"),
    "prefix-ignore-case": lambda text: _ignore_case(text, "prefix"),
    "suffix-ignore-case": lambda text: _ignore_case(text, "suffix"),
    "wildcard": _glob,
}

_ADDERS: Final[dict[str, Callable[[_Alternatives, Any], None]]] = {
    "string": _add_string,
    "number": lambda alternatives, value: alternatives.numbers.add(value),
    "literal": lambda alternatives, value: alternatives.literals.append(value),
    "numeric": _add_numeric,
    "cidr": lambda alternatives, value: alternatives.blocks.append(value),
    "exists": _add_exists,
    "anything-but": _add_anything_but,
    "anything-but-prefix": _add_anything_but_test("prefix"),
    "anything-but-suffix": _add_anything_but_test("suffix"),
    "anything-but-ignore-case": _add_anything_but_test("equals-ignore-case"),
    "anything-but-wildcard": _add_anything_but_test("wildcard"),
    **{kind: _add_test(kind) for kind in _STRING_TESTS},
}


def _make_branch(rule: dict[str, tuple[_Term, ...]]) -> _Branch:
    fields = []
    # event-ruler walks a rule's fields in Java String order (UTF-16 code units).
    for name in sorted(rule, key=lambda key: key.encode("utf-16-be", "surrogatepass")):
        alternatives = _Alternatives()
        for term in rule[name]:
            alternatives.add(term)
        fields.append(
            _Field(
                name=name,
                collect=_collector(name),
                accept=alternatives.accept(),
                absent=alternatives.absent,
            )
        )
    return _Branch(fields=tuple(fields))


def _collector(name: str) -> Callable[[Mapping[str, Any]], list[_Occurrence]]:
    """A function listing an event's leaf values for the dotted field ``name``."""
    parts = name.split(".")
    if len(parts) == 1:  # the common case, made cheap

        def collect_top(event: Mapping[str, Any]) -> list[_Occurrence]:
            value = event.get(name, _MISSING)
            if value is _MISSING:
                return []
            if value.__class__ in _SCALARS:
                return [(value, ())]
            found: list[_Occurrence] = []
            _leaves(value, (), found)
            return found

        return collect_top
    if len(parts) == 2:
        return _collector_two(name, parts[0], parts[1])
    # For each component: the event keys that may continue the path there ("a", "a.b", ...)
    # and the component each one leads to.
    steps = tuple(
        tuple((".".join(parts[start:end]), end) for end in range(start + 1, len(parts) + 1))
        for start in range(len(parts))
    )
    size = len(parts)

    def collect(event: Mapping[str, Any]) -> list[_Occurrence]:
        found: list[_Occurrence] = []
        _collect(event, steps, 0, size, (), found)
        return found

    return collect
