"""Input transformers: what a rule's target receives instead of the whole event, as EventBridge does.

An input transformer names values of the event by JSONPath (``"image": "$.detail.image"``) and
places them in a template with ``<image>``. Where a placeholder sits decides how its value goes
in, as in EventBridge:

- inside a JSON string (``"pushed <tag>"``) the value becomes text: a string's characters,
  JSON-escaped, or the JSON of any other value; a path absent from the event adds nothing;
- anywhere else (``{"image": <image>}``, or bare in plain text) the value goes in as JSON: a string
  with its quotes, an object as an object, an absent path as ``null``.

The result is the parsed JSON when the filled-in template is JSON, else the text itself: a template
``"pushed <tag>"`` gives the string ``pushed v1``, a template ``pushed <tag>`` the text
``pushed "v1"``.

Besides the paths, five predefined variables exist: ``<aws.events.rule-name>``,
``<aws.events.rule-arn>`` (``dockyard:rule/<name>`` unless the caller says otherwise),
``<aws.events.event.ingestion-time>``, ``<aws.events.event.json>`` (the whole event) and
``<aws.events.event>`` (the event without its ``detail``, as AWS documents it). A template naming any
other placeholder is refused when the transformer is defined, as AWS refuses it.

JSONPaths are the simple kind EventBridge evaluates: ``$``, then ``.name``, ``['name']`` and
``[index]`` steps; no wildcards, slices or filters.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.errors import ValidationError

__all__ = [
    "MAX_INPUT_PATHS",
    "PREDEFINED_VARIABLES",
    "InputTransformer",
    "json_path",
    "parse_input_transformer",
    "transform",
]

MAX_INPUT_PATHS = 100
MAX_NAME_LENGTH = 256
MAX_PATH_LENGTH = 256
MAX_TEMPLATE_LENGTH = 8192
RULE_NAME = "aws.events.rule-name"
RULE_ARN = "aws.events.rule-arn"
EVENT = "aws.events.event"
EVENT_JSON = "aws.events.event.json"
INGESTION_TIME = "aws.events.event.ingestion-time"
PREDEFINED_VARIABLES = frozenset({RULE_NAME, RULE_ARN, EVENT, EVENT_JSON, INGESTION_TIME})

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")
_STEP = re.compile(r"\.([^.\[\]\s'\"*]+)|\['([^']*)'\]|\[\"([^\"]*)\"\]|\[(\d+)\]")
_KEYS = {
    "input_paths": ("input_paths", "input_template"),
    "InputPathsMap": ("InputPathsMap", "InputTemplate"),
}
#: Stand-ins for placeholders while checking that none is an object key (private-use characters).
_QUOTED_MARK = "\ue000"
_BARE_MARK = f'"{_QUOTED_MARK}"'


@dataclass(frozen=True, slots=True)
class InputTransformer:
    #: Variable name -> JSONPath into the event.
    input_paths: Mapping[str, str]
    #: JSON or plain text with ``<name>`` placeholders.
    template: str


@dataclass(frozen=True, slots=True)
class _Slot:
    """A placeholder in a template, and whether it sits inside a JSON string."""

    name: str
    quoted: bool


# -- definition ------------------------------------------------------------------------------


def parse_input_transformer(
    document: Mapping[str, Any], field: str = "input_transformer"
) -> InputTransformer:
    """Validate ``{input_paths, input_template}`` (or AWS's ``{InputPathsMap, InputTemplate}``)."""
    if not isinstance(document, Mapping):
        raise ValidationError(field, "must be an object with input_paths and input_template")
    paths_key, template_key = _key_style(document, field)
    paths = _parse_paths(document.get(paths_key), f"{field}.{paths_key}")
    template = _parse_template(document.get(template_key), f"{field}.{template_key}", paths)
    return InputTransformer(input_paths=paths, template=template)


def _key_style(document: Mapping[str, Any], field: str) -> tuple[str, str]:
    """The two keys ``document`` uses: ours, or AWS's (never a mix)."""
    style = _KEYS["InputPathsMap"] if {"InputPathsMap", "InputTemplate"} & set(document) else None
    style = style or _KEYS["input_paths"]
    for key in document:
        if key not in style:
            raise ValidationError(
                f"{field}.{key}",
                "is not a field of an input transformer "
                "(input_paths and input_template, or InputPathsMap and InputTemplate)",
            )
    return style


def _parse_paths(value: object, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be an object of NAME: JSONPATH")
    if len(value) > MAX_INPUT_PATHS:
        raise ValidationError(field, f"may define at most {MAX_INPUT_PATHS} variables")
    paths = {}
    for name, path in value.items():
        where = f"{field}.{name}"
        _check_variable_name(name, where)
        if not isinstance(path, str) or len(path) > MAX_PATH_LENGTH or _steps(path) is None:
            raise ValidationError(
                where,
                f"must be a JSONPath of at most {MAX_PATH_LENGTH} characters: $ then .name, "
                "['name'] or [index] steps",
            )
        paths[name] = path
    return paths


def _check_variable_name(name: object, field: str) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValidationError(field, f"a variable name has 1 to {MAX_NAME_LENGTH} characters")
    if not _NAME.fullmatch(name):
        raise ValidationError(field, "a variable name has letters, digits, '_', '-' and '.' only")
    if name.lower().startswith("aws."):
        raise ValidationError(field, "variable names starting with 'aws.' are reserved")


def _parse_template(value: object, field: str, paths: Mapping[str, str]) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEMPLATE_LENGTH:
        raise ValidationError(
            field, f"is required: a template of 1 to {MAX_TEMPLATE_LENGTH} characters"
        )
    for piece in _pieces(value):
        if isinstance(piece, _Slot) and piece.name not in paths:
            if piece.name not in PREDEFINED_VARIABLES:
                raise ValidationError(
                    field, f"<{piece.name}> is neither an input path nor a predefined variable"
                )
    _check_no_placeholder_keys(value, field)
    return value


def _check_no_placeholder_keys(template: str, field: str) -> None:
    """Refuse ``{<name>: ...}`` and ``{"<name>": ...}``: AWS does not allow placeholder keys."""
    if not template.lstrip().startswith(("{", "[")):
        return
    marked = "".join(
        piece if isinstance(piece, str) else _QUOTED_MARK if piece.quoted else _BARE_MARK
        for piece in _pieces(template)
    )

    def check(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if any(_QUOTED_MARK in key for key, _ in pairs):
            raise ValidationError(field, "a placeholder cannot be used as an object key")
        return dict(pairs)

    try:
        json.loads(marked, object_pairs_hook=check)
    except ValueError:
        return  # not JSON: a text template, where any placement goes


# -- evaluation ------------------------------------------------------------------------------


def json_path(event: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` (``$.detail.tag``, ``$.resources[0]``, ``$``), or None when absent."""
    steps = _steps(path)
    if steps is None:
        raise ValidationError("path", "must be a JSONPath: $ then .name, ['name'] or [index] steps")
    value: Any = event
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping) or step not in value:
                return None
            value = value[step]
    return value


def transform(
    transformer: InputTransformer,
    event: Mapping[str, Any],
    *,
    rule_name: str,
    ingestion_time: str,
    rule_arn: str | None = None,
) -> Any:
    """The transformer's template filled in from ``event``: parsed JSON, or else text."""
    values: dict[str, Any] = {
        RULE_NAME: rule_name,
        RULE_ARN: rule_arn if rule_arn is not None else f"dockyard:rule/{rule_name}",
        INGESTION_TIME: ingestion_time,
        EVENT_JSON: event,
        EVENT: {key: value for key, value in event.items() if key != "detail"},
    }
    for name, path in transformer.input_paths.items():
        values[name] = json_path(event, path)
    parts = []
    for piece in _pieces(transformer.template):
        if isinstance(piece, str):
            parts.append(piece)
        elif piece.name not in values:
            raise ValidationError("input_template", f"<{piece.name}> is not defined")
        else:
            parts.append(_render(values[piece.name], quoted=piece.quoted))
    return _parsed("".join(parts))


def _render(value: Any, *, quoted: bool) -> str:
    if not quoted:
        return _json(value)
    text = "" if value is None else value if isinstance(value, str) else _json(value)
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _parsed(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# -- syntax ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _steps(path: str) -> tuple[str | int, ...] | None:
    """The steps of a JSONPath (names and indexes), or None when it is not one we evaluate."""
    if not path.startswith("$"):
        return None
    steps: list[str | int] = []
    position = 1
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            return None
        dotted, single, double, index = match.groups()
        steps.append(int(index) if index is not None else dotted or single or double or "")
        position = match.end()
    return tuple(steps)


@functools.lru_cache(maxsize=256)
def _pieces(template: str) -> tuple[str | _Slot, ...]:
    """The template cut into literal text and placeholders, each knowing if it is quoted."""
    pieces: list[str | _Slot] = []
    start = position = 0
    in_string = escaped = False
    while position < len(template):
        char = template[position]
        match = None if escaped or char != "<" else _PLACEHOLDER.match(template, position)
        if match is not None:
            pieces += [template[start:position], _Slot(match[1], quoted=in_string)]
            start = position = match.end()
            continue
        if escaped:
            escaped = False
        elif char == "\\" and in_string:
            escaped = True
        elif char == '"':
            in_string = not in_string
        position += 1
    pieces.append(template[start:])
    return tuple(piece for piece in pieces if piece != "")
