"""Amazon EventBridge event patterns: validation and matching.

``compile_pattern`` validates a pattern the way EventBridge does (``PutRule``,
``TestEventPattern``) and turns it into an :class:`EventPattern`, a tree of small matchers built
once; :meth:`EventPattern.matches` then tests events against it without parsing anything again.
``matches(pattern, event)`` is the one-shot form of ``TestEventPattern``.

No suitable maintained Python library exists: AWS's engine is the Java library event-ruler
(https://github.com/aws/event-ruler), and the Python re-implementations live inside larger
emulators (LocalStack, moto) rather than being published as libraries, and simplify some rules
(LocalStack's, for one, judges wildcard complexity by counting stars). So this module is written
by hand, from the EventBridge user guide, event-ruler's behaviour (``JsonRuleCompiler``,
``ByteMachine``, ``ACFinder``, ``CIDR``, ``WildcardParser``, ``MachineComplexityEvaluator``) and
the cases recorded against AWS by LocalStack; it passes every case of the vectors in
``tests/vectors/eventbridge-patterns``.

Syntax. A pattern is a JSON object; an object value nests, an array value lists what a field may
be (any element may match: OR), and different fields must all match (AND). An array element is:

- a string, number, ``true``, ``false`` or ``null``: equality. Types never mix (``"300"`` is not
  ``300``, ``true`` is not ``1``), numbers compare numerically (``300`` matches ``300.0``), and a
  string that is an IP address matches the same address spelt differently (event-ruler turns it
  into an address range);
- ``{"prefix": s}``, ``{"suffix": s}``, either with ``{"equals-ignore-case": s}`` inside,
  ``{"equals-ignore-case": s}``, ``{"wildcard": s}`` and ``{"exactly": s}``: strings only;
- ``{"anything-but": v}`` with a string, a number, a list of strings or of numbers, or an object
  ``{"prefix"|"suffix"|"equals-ignore-case"|"wildcard": s or [s, ...]}``. It matches any present
  value that is not excluded, including ``null`` and values of another type, never an absent field;
- ``{"numeric": [op, n]}`` or ``{"numeric": [">"|">=", low, "<"|"<=", high]}``: JSON numbers only;
- ``{"cidr": "10.0.0.0/24"}`` (IPv4 or IPv6): strings that are addresses in the block;
- ``{"exists": true|false}``: whether the field has a leaf value (an object, or an empty array,
  is no value: ``exists: false`` matches it, ``exists: true`` does not).

``"$or": [{...}, {...}, ...]`` at any level makes the pattern match when any of the objects does
(with the fields around it); an object inside ``$or`` may not use an operator name as a field.

Matching. Keys are joined with dots on both sides, so ``{"a": {"b": [1]}}``, ``{"a.b": [1]}``,
``{"a": {"b": 1}}`` and ``{"a.b": 1}`` all name the field ``a.b``. An array in the event is looked
through: each element is a candidate (a field matches if any element does). Matching is array
consistent, like event-ruler's ``rulesForJSONEvent``: the fields a pattern matches must not come
from different elements of the same array of objects (``{"m": {"x": [1], "y": [2]}}`` does not
match ``{"m": [{"x": 1}, {"y": 2}]}``). As in event-ruler, fields are tried in sorted order and
``exists: false`` only looks at the elements still consistent with the fields sorted before it.

Validation raises :class:`InvalidEventPattern` with AWS's own reason text (``.message``), e.g.
``Event pattern is not valid. Reason: "int" must be an object or an array``, including wildcard
patterns that are too nondeterministic (event-ruler's complexity measure, see
:func:`_wildcard_complexity`). Known differences from AWS, all outside the public vectors: numbers
are compared as Python numbers over the whole float range (event-ruler, depending on its version,
limits ranges to +/-5e9 and rounds to 6 decimals); JSON syntax errors carry Python's wording, not
Jackson's; ``$or`` may expand to at most 1,000 combinations (EventBridge documents a limit; the
wording of our error is ours); and the handful of event-ruler quirks where one field mixes IP or
numeric patterns with string patterns are not reproduced.

Size and cost. A pattern that comes in — one to test, or a rule's new pattern — is at most
:data:`MAX_PATTERN_CHARACTERS` long (:func:`check_pattern_size`), EventBridge's own ceiling, so that
what compiling it costs is bounded. :func:`matches`, the one-shot test, compiles without caching:
what a caller merely tries never stays in memory. :func:`compile_pattern`, the form for stored
rules, keeps the patterns it compiled in a least-recently-used cache bounded both by entries and
by characters of pattern text, whatever the size of the patterns stored before the limit existed.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from dockyard.errors import ValidationError

__all__ = [
    "MAX_PATTERN_CHARACTERS",
    "EventPattern",
    "InvalidEvent",
    "InvalidEventPattern",
    "check_pattern_size",
    "compile_pattern",
    "matches",
]

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


# -- the compiled form --------------------------------------------------------------------------

#: One leaf value of the event and the array elements it sits in: ``((id(array), index), ...)``.
_Occurrence = tuple[Any, tuple[tuple[int, int], ...]]
_Accept = Callable[[Any], bool]
_MISSING: Final = object()
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


@dataclass(frozen=True, slots=True)
class _Field:
    """One dotted field name of a pattern and what its leaf values may be."""

    name: str
    #: The leaf values the event has under the name (see :func:`_collector`).
    collect: Callable[[Mapping[str, Any]], list[_Occurrence]]
    accept: _Accept
    #: ``{"exists": false}`` is one of the alternatives.
    absent: bool


@dataclass(frozen=True, slots=True)
class _Branch:
    """The fields that must all match (one alternative of the pattern's ``$or``s), sorted."""

    fields: tuple[_Field, ...]

    def matches(self, event: Mapping[str, Any], cache: dict[str, list[_Occurrence]] | None) -> bool:
        found: list[list[_Occurrence]] = []
        in_arrays = False
        for item in self.fields:
            if cache is None:
                occurrences = item.collect(event)
            elif item.name in cache:
                occurrences = cache[item.name]
            else:
                occurrences = cache[item.name] = item.collect(event)
            hit = nested = False
            accept = item.accept
            for value, membership in occurrences:
                if membership:
                    nested = True
                if not hit and accept(value):
                    hit = True
            # A necessary condition, and the whole answer when no array of objects is involved.
            if not (hit or (item.absent and (nested or not occurrences))):
                return False
            in_arrays = in_arrays or nested
            found.append(occurrences)
        if not in_arrays:
            return True
        return _consistent_match(self.fields, found, 0, {}, set())


@dataclass(frozen=True, slots=True)
class EventPattern:
    """A validated pattern, compiled; immutable and safe to share between threads."""

    #: The pattern as JSON (``json.dumps`` of it, keys in the order given).
    source: str
    _branches: tuple[_Branch, ...] = field(repr=False, compare=False)

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` (a parsed JSON object) matches, as EventBridge would decide."""
        if type(event) is not dict and not isinstance(event, Mapping):
            raise InvalidEvent("an event is a JSON object")
        branches = self._branches
        if len(branches) == 1:
            return branches[0].matches(event, None)
        cache: dict[str, list[_Occurrence]] = {}
        return any(branch.matches(event, cache) for branch in branches)


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


# -- parsing and validation (event-ruler's JsonRuleCompiler, on parsed JSON) --------------------


class _Object(list[tuple[str, Any]]):
    """A JSON object as the key/value pairs written, in order, repeated keys included."""

    __slots__ = ()


def _no_constant(name: str) -> Any:
    raise ValueError(f"Non-standard token '{name}'")


def _plain(value: Any) -> Any:
    """Back to ordinary JSON values (a repeated key keeps its last value)."""
    if isinstance(value, _Object):
        return {key: _plain(item) for key, item in value}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _is_array(value: Any) -> bool:
    return isinstance(value, list) and not isinstance(value, _Object)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class _Term:
    """One alternative of a field: ``kind`` names the operator, ``value`` its compiled operand."""

    kind: str
    value: Any = None


_RESERVED_IN_OR: Final = frozenset(
    {
        "exactly",
        "equals-ignore-case",
        "prefix",
        "suffix",
        "anything-but",
        "exists",
        "wildcard",
        "numeric",
        "cidr",
        "=",
        "<",
        "<=",
        ">",
        ">=",
        "regex",
        "not-wildcard",
        "not-equals-ignore-case",
        "date-after",
        "date-on-or-after",
        "date-before",
        "date-on-or-before",
        "in-date-range",
        "ip-address-in-range",
        "ip-address-not-in-range",
    }
)


def _parse_object(
    node: _Object, path: list[str], rules: list[dict[str, tuple[_Term, ...]]], *, in_or: bool
) -> None:
    if not node:
        raise InvalidEventPattern("Empty objects are not allowed")
    for key, value in node:
        if key == "$or":
            _parse_or(value, path, rules)
        elif in_or and key in _RESERVED_IN_OR:
            raise InvalidEventPattern(
                f"{key} is Ruler reserved fieldName which cannot be used inside $or."
            )
        elif isinstance(value, _Object):
            _parse_object(value, [*path, key], rules, in_or=in_or)
        elif isinstance(value, list):
            _write_field(rules, ".".join([*path, key]), value)
        else:
            raise InvalidEventPattern(f'"{key}" must be an object or an array')


def _parse_or(value: Any, path: list[str], rules: list[dict[str, tuple[_Term, ...]]]) -> None:
    """Each object of the array forks every alternative found so far (a cross product)."""
    before = [dict(rule) for rule in rules]
    rules.clear()
    if not _is_array(value):
        raise InvalidEventPattern("It must be an Array followed with $or.")
    for element in value:
        if not isinstance(element, _Object):
            raise InvalidEventPattern("Only JSON object is allowed in array of $or relationship.")
        forked = [dict(rule) for rule in before] or [{}]
        _parse_object(element, path, forked, in_or=True)
        rules.extend(forked)
        if len(rules) > MAX_COMBINATIONS:
            raise InvalidEventPattern(
                f"The $or operators expand to more than {MAX_COMBINATIONS} combinations"
            )
    if len(value) < 2:
        raise InvalidEventPattern("There must have at least 2 Objects in $or relationship.")


def _write_field(rules: list[dict[str, tuple[_Term, ...]]], name: str, values: list[Any]) -> None:
    terms = tuple(_value_term(value) for value in values)
    if not terms:
        raise InvalidEventPattern("Empty arrays are not allowed")
    if not rules:
        rules.append({})
    for rule in rules:
        rule[name] = terms  # a repeated field: the last one wins


def _value_term(value: Any) -> _Term:
    if isinstance(value, _Object):
        return _match_expression(value)
    if isinstance(value, str):
        return _Term("string", value)
    if value is None or isinstance(value, bool):
        return _Term("literal", value)
    if _is_number(value):
        return _Term("number", value)
    raise InvalidEventPattern("Match value must be String, number, true, false, or null")


def _match_expression(node: _Object) -> _Term:
    if not node:
        raise InvalidEventPattern("Match expression name not found")
    (kind, value), rest = node[0], node[1:]
    compile_operand = _OPERATORS.get(kind)
    if compile_operand is None:
        raise InvalidEventPattern(f"Unrecognized match type {kind}")
    return compile_operand(value, rest)


def _only_one_key(rest: Sequence[Any]) -> None:
    if rest:
        raise InvalidEventPattern("Only one key allowed in match expression")


def _string_operand(kind: str, message: str) -> Callable[[Any, list[Any]], _Term]:
    def compile_operand(value: Any, rest: list[Any]) -> _Term:
        if not isinstance(value, str):
            raise InvalidEventPattern(message)
        _only_one_key(rest)
        return _Term(kind, value)

    return compile_operand


def _affix(kind: str) -> Callable[[Any, list[Any]], _Term]:
    """``prefix`` / ``suffix``, plain or with ``{"equals-ignore-case": s}`` inside."""

    def compile_operand(value: Any, rest: list[Any]) -> _Term:
        if isinstance(value, _Object):
            if not value:
                raise InvalidEventPattern(f"{kind.capitalize()} expression name not found")
            (inner, operand), inner_rest = value[0], value[1:]
            if inner != "equals-ignore-case":
                raise InvalidEventPattern(f"Unsupported {kind} pattern: {inner}")
            if not isinstance(operand, str):
                raise InvalidEventPattern("equals-ignore-case match pattern must be a string")
            _only_one_key(inner_rest)
            _only_one_key(rest)
            return _Term(f"{kind}-ignore-case", operand)
        if not isinstance(value, str):
            raise InvalidEventPattern(f"{kind} match pattern must be a string")
        _only_one_key(rest)
        return _Term(kind, value)

    return compile_operand


def _wildcard_operand(value: Any, rest: list[Any]) -> _Term:
    if not isinstance(value, str):
        raise InvalidEventPattern("wildcard match pattern must be a string")
    tokens = _wildcard_tokens(value)
    _only_one_key(rest)
    return _Term("wildcard", tokens)


def _exists_operand(value: Any, rest: list[Any]) -> _Term:
    if not isinstance(value, bool):
        raise InvalidEventPattern("exists match pattern must be either true or false.")
    _only_one_key(rest)
    return _Term("exists", value)


def _cidr_operand(value: Any, rest: list[Any]) -> _Term:
    if not isinstance(value, str):  # sic: AWS names the wrong operator here
        raise InvalidEventPattern("prefix match pattern must be a string")
    block = _cidr_block(value)
    _only_one_key(rest)
    return _Term("cidr", block)


def _numeric_operand(value: Any, rest: list[Any]) -> _Term:
    if not _is_array(value):
        raise InvalidEventPattern("Value of numeric must be an array.")
    term = _numeric_range(value)
    if rest:
        raise InvalidEventPattern("Too many elements in numeric expression")
    return term


def _token_text(items: list[Any], index: int) -> str:
    """What Jackson's ``getText()`` says of the token at ``index`` (``]`` past the end)."""
    if index >= len(items):
        return "]"
    value = items[index]
    if isinstance(value, _Object):
        return "{"
    if isinstance(value, list):
        return "["
    if isinstance(value, str):
        return value
    return json.dumps(value)


_LOWER_BOUNDS: Final = {">": True, ">=": False}  # operator -> open
_UPPER_BOUNDS: Final = {"<": True, "<=": False}


def _numeric_range(items: list[Any]) -> _Term:
    """``[op, n]`` or ``[> or >=, low, < or <=, high]`` -> ``(low, low_open, high, high_open)``."""
    if not items or not isinstance(items[0], str):
        raise InvalidEventPattern(f"Invalid member in numeric match: {_token_text(items, 0)}")
    operator = items[0]
    operand = items[1] if len(items) > 1 else None
    if operator == "=" or operator in _UPPER_BOUNDS or operator in _LOWER_BOUNDS:
        if not _is_number(operand):
            name = "equals" if operator == "=" else operator
            raise InvalidEventPattern(f"Value of {name} must be numeric")
    else:
        raise InvalidEventPattern(f"Unrecognized numeric range operator: {operator}")
    if operator in _LOWER_BOUNDS and len(items) > 2:
        return _numeric_between(items, operand, _LOWER_BOUNDS[operator])
    if len(items) > 2:
        raise InvalidEventPattern("Too many elements in numeric expression")
    if operator == "=":
        return _Term("numeric", (operand, False, operand, False))
    if operator in _LOWER_BOUNDS:
        return _Term("numeric", (operand, _LOWER_BOUNDS[operator], None, False))
    return _Term("numeric", (None, False, operand, _UPPER_BOUNDS[operator]))


def _numeric_between(items: list[Any], low: Any, low_open: bool) -> _Term:
    operator = items[2]
    if not isinstance(operator, str):
        raise InvalidEventPattern(f"Bad value in numeric range: {_token_text(items, 2)}")
    if operator not in _UPPER_BOUNDS:
        raise InvalidEventPattern(f"Bad numeric range operator: {operator}")
    high = items[3] if len(items) > 3 else None
    if not _is_number(high):
        raise InvalidEventPattern(f"Value of {operator} must be numeric")
    if len(items) > 4:
        raise InvalidEventPattern("Too many terms in numeric range expression")
    if low >= high:
        raise InvalidEventPattern("Bottom must be less than top")
    return _Term("numeric", (low, low_open, high, _UPPER_BOUNDS[operator]))


_ANYTHING_BUT_KINDS: Final = {
    "equals-ignore-case": "anything-but-ignore-case",
    "prefix": "anything-but-prefix",
    "suffix": "anything-but-suffix",
    "wildcard": "anything-but-wildcard",
}
_ANYTHING_BUT_TYPE_ERRORS: Final = {
    "equals-ignore-case": "Inside anything-but/equals-ignore-case list, "
    "number|start|null|boolean is not supported.",
    "prefix": "prefix/suffix match pattern must be a string",
    "suffix": "prefix/suffix match pattern must be a string",
    "wildcard": "wildcard match pattern must be a string",
}


def _anything_but_operand(value: Any, rest: list[Any]) -> _Term:
    operator: str | None = None
    inner_rest: list[Any] = []
    if isinstance(value, _Object):
        if not value:
            raise InvalidEventPattern("Anything-But expression name not found")
        (operator, value), inner_rest = value[0], value[1:]
        if operator not in _ANYTHING_BUT_KINDS:
            raise InvalidEventPattern(f"Unsupported anything-but pattern: {operator}")
    is_list = _is_array(value)
    if not (is_list or isinstance(value, str) or _is_number(value)):
        raise InvalidEventPattern(
            "Value of anything-but must be an array or single string/number value."
        )
    items = value if is_list else [value]
    if operator is None:
        term = _anything_but_values(items, is_list)
    else:
        term = _anything_but_matching(operator, items)
    if inner_rest or rest:
        raise InvalidEventPattern("Too many elements in numeric expression")  # sic
    return term


def _anything_but_values(items: list[Any], is_list: bool) -> _Term:
    strings: set[str] = set()
    numbers: set[int | float] = set()
    for item in items:
        if isinstance(item, str):
            strings.add(item)
        elif _is_number(item):
            numbers.add(item)
        else:
            raise InvalidEventPattern(
                "Inside anything but list, start|null|boolean is not supported."
            )
    if is_list and bool(strings) == bool(numbers):
        raise InvalidEventPattern(
            "Inside anything but list, either all values are number or string, "
            "mixed type is not supported"
        )
    return _Term("anything-but", (frozenset(strings), frozenset(numbers)))


def _anything_but_matching(operator: str, items: list[Any]) -> _Term:
    texts: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidEventPattern(_ANYTHING_BUT_TYPE_ERRORS[operator])
        if not item and operator in ("prefix", "suffix"):
            raise InvalidEventPattern("Null prefix/suffix not allowed")
        texts.append(item)
    if operator == "wildcard":
        return _Term(_ANYTHING_BUT_KINDS[operator], tuple(_wildcard_tokens(text) for text in texts))
    return _Term(_ANYTHING_BUT_KINDS[operator], tuple(texts))


_OPERATORS: Final[dict[str, Callable[[Any, list[Any]], _Term]]] = {
    "exactly": _string_operand("exactly", "exact match pattern must be a string"),
    "prefix": _affix("prefix"),
    "suffix": _affix("suffix"),
    "numeric": _numeric_operand,
    "anything-but": _anything_but_operand,
    "exists": _exists_operand,
    "cidr": _cidr_operand,
    "equals-ignore-case": _string_operand(
        "equals-ignore-case", "equals-ignore-case match pattern must be a string"
    ),
    "wildcard": _wildcard_operand,
}


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


# -- IP addresses -------------------------------------------------------------------------------

_IPV4: Final = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6: Final = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")
_MASK: Final = re.compile(r"[+-]?[0-9]+")
#: An address: (its length in bytes, its value).
_Address = tuple[int, int]


def _address(text: str) -> _Address | None:
    """``text`` as an IP address literal, as event-ruler reads one (an IPv4-mapped IPv6
    address is the IPv4 address), else None."""
    if _IPV4.fullmatch(text):
        try:
            return 4, int(ipaddress.IPv4Address(text))
        except ValueError:
            return None
    if _IPV6.fullmatch(text):
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            return None
        if address.ipv4_mapped is not None:
            return 4, int(address.ipv4_mapped)
        return 16, int(address)
    return None


def _cidr_block(text: str) -> tuple[int, int, int]:
    """``"10.0.0.0/24"`` -> (address length, lowest, highest), or AWS's complaint."""
    parts = text.split("/") if "/" in text else [text]
    while parts and parts[-1] == "":  # like Java's split, which drops trailing empty strings
        parts.pop()
    if len(parts) != 2:
        raise InvalidEventPattern("Malformed CIDR, one '/' required")
    ip, mask_text = parts
    if not _MASK.fullmatch(mask_text) or not -(2**31) <= int(mask_text) < 2**31:
        raise InvalidEventPattern("Malformed CIDR, mask bits must be an integer")
    mask = int(mask_text)
    if mask < 0:
        raise InvalidEventPattern("Malformed CIDR, mask bits must not be negative")
    if not (_IPV4.fullmatch(ip) or _IPV6.fullmatch(ip)):
        raise InvalidEventPattern(f"Nonstandard IP address: {ip}")
    address = _address(ip)
    if address is None:
        raise InvalidEventPattern(f"Invalid IP address: {ip}")
    size, value = address
    if size == 4 and mask > 31:
        raise InvalidEventPattern("IPv4 mask bits must be < 32")
    if size == 16 and mask > 127:
        raise InvalidEventPattern("IPv6 mask bits must be < 128")
    # Like event-ruler, the block starts at the address given (host bits are not cleared).
    return size, value, value | ((1 << (size * 8 - mask)) - 1)


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


# -- walking the event --------------------------------------------------------------------------


def _collector_two(
    name: str, outer: str, inner: str
) -> Callable[[Mapping[str, Any]], list[_Occurrence]]:
    """``_collector`` for ``outer.inner``, the second most common shape (``detail.state``)."""
    steps = (((outer, 1), (name, 2)), ((inner, 2),))

    def collect_two(event: Mapping[str, Any]) -> list[_Occurrence]:
        found: list[_Occurrence] = []
        parent = event.get(outer, _MISSING)
        if parent.__class__ is dict:
            value = parent.get(inner, _MISSING)
            if value.__class__ in _SCALARS:
                found.append((value, ()))
            elif value is not _MISSING:
                _leaves(value, (), found)
        elif parent is not _MISSING:
            _collect({outer: parent}, steps, 0, 2, (), found)
        value = event.get(name, _MISSING)  # the key "outer.inner" itself
        if value is not _MISSING:
            _leaves(value, (), found)
        return found

    return collect_two


def _collect(
    node: Mapping[str, Any],
    steps: tuple[tuple[tuple[str, int], ...], ...],
    index: int,
    size: int,
    membership: tuple[tuple[int, int], ...],
    found: list[_Occurrence],
) -> None:
    """Append the leaf values under ``node`` whose path, from name component ``index`` on, spells
    the field's name; event keys may hold dots (``"a.b"`` is the path ``a`` then ``b``)."""
    for key, after in steps[index]:
        child = node.get(key, _MISSING)
        if child is _MISSING:
            continue
        if after == size:
            if child.__class__ in _SCALARS:
                found.append((child, membership))
            else:
                _leaves(child, membership, found)
        elif type(child) is dict or isinstance(child, Mapping):
            _collect(child, steps, after, size, membership, found)
        elif isinstance(child, list | tuple):
            _collect_in_array(child, steps, after, size, membership, found)


def _collect_in_array(
    array: Sequence[Any],
    steps: tuple[tuple[tuple[str, int], ...], ...],
    index: int,
    size: int,
    membership: tuple[tuple[int, int], ...],
    found: list[_Occurrence],
) -> None:
    for position, element in enumerate(array):
        inner = (*membership, (id(array), position))
        if type(element) is dict or isinstance(element, Mapping):
            _collect(element, steps, index, size, inner, found)
        elif isinstance(element, list | tuple):
            _collect_in_array(element, steps, index, size, inner, found)


def _leaves(value: Any, membership: tuple[tuple[int, int], ...], found: list[_Occurrence]) -> None:
    """The leaf values of a field: the value itself, or the scalars in an array (objects are no
    value). Like event-ruler, only containers inside an array record their position in it."""
    if isinstance(value, list | tuple):
        for position, element in enumerate(value):
            if isinstance(element, list | tuple):
                _leaves(element, (*membership, (id(value), position)), found)
            elif not isinstance(element, Mapping):
                found.append((element, membership))
    elif not isinstance(value, Mapping):
        found.append((value, membership))


def _consistent_match(
    fields: tuple[_Field, ...],
    found: list[list[_Occurrence]],
    index: int,
    chosen: dict[int, int],
    failed: set[tuple[int, tuple[tuple[int, int], ...]]],
) -> bool:
    """Whether fields ``index`` on can match with values from the array elements ``chosen`` so
    far (array id -> position), each field adding the elements its value comes from."""
    if index == len(fields):
        return True
    key = (index, tuple(sorted(chosen.items())))
    if key in failed:
        return False
    item = fields[index]
    tried: set[tuple[tuple[int, int], ...]] = set()
    compatible = False
    for value, membership in found[index]:
        if not all(chosen.get(array, position) == position for array, position in membership):
            continue
        compatible = True
        if membership in tried or not item.accept(value):
            continue
        tried.add(membership)
        following = {**chosen, **dict(membership)} if membership else chosen
        if _consistent_match(fields, found, index + 1, following, failed):
            return True
    if (
        item.absent
        and not compatible
        and _consistent_match(fields, found, index + 1, chosen, failed)
    ):
        return True
    failed.add(key)
    return False
