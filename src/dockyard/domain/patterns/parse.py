"""Parsing and validation (event-ruler's JsonRuleCompiler, on parsed JSON)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from dockyard.domain.patterns.addresses import _cidr_block
from dockyard.domain.patterns.errors import MAX_COMBINATIONS, InvalidEventPattern
from dockyard.domain.patterns.wildcards import _wildcard_tokens

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
