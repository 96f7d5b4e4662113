"""Placeholders in an http definition: ``${payload.a.b}``, ``${job.id}``, ``${job.name}`` and
``${job.attempt}``, filled in from the job as an attempt starts.

Whoever submits a job chooses its payload, so a value must never change the shape of what the
definition's author wrote. In the URL each value is percent-encoded as RFC 3986 asks of a path
segment or a query value (:func:`urllib.parse.quote` with nothing kept but the unreserved
characters): a value cannot add a user part, a host, a port, a path segment, a query parameter
or a fragment (``x@127.0.0.1:8080#`` stays one value), and a value that is ``.`` or ``..`` is
written ``%2E`` so that it cannot climb out of its path segment. In headers and text bodies a
value goes in as text (httpx refuses line breaks in a header); in JSON bodies it keeps its type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from dockyard.domain.records import HttpSpec
from dockyard.executors.port import ExecutionContext

__all__ = ["fill_text", "fill_url", "request_body", "template_values"]

_PLACEHOLDER = re.compile(r"\$\{(payload(?:\.[A-Za-z0-9_-]+)*|job\.(?:id|name|attempt))\}")
_DOT_SEGMENTS = {".": "%2E", "..": "%2E%2E"}


def template_values(context: ExecutionContext) -> dict[str, Any]:
    return {
        "payload": context.job.payload,
        "job.id": context.job.id,
        "job.name": context.job.name,
        "job.attempt": context.attempt,
    }


def _lookup(key: str, values: Mapping[str, Any]) -> Any:
    if key.startswith("job."):
        return values[key]
    value = values["payload"]
    for part in key.split(".")[1:]:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def fill_text(text: str, values: Mapping[str, Any]) -> str:
    """``text`` with each placeholder replaced by its value as text."""
    return _PLACEHOLDER.sub(lambda match: _text(_lookup(match.group(1), values)), text)


def _in_path(rendered: str) -> bool:
    """Whether text appended to ``rendered`` (a URL's beginning) lands in its path."""
    if "?" in rendered or "#" in rendered:
        return False
    _scheme, _, rest = rendered.partition("://")
    return "/" in rest


def fill_url(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with each placeholder replaced by its value, percent-encoded."""
    parts: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(template[position : match.start()])
        value = _text(_lookup(match.group(1), values))
        dot_segment = _DOT_SEGMENTS.get(value) if _in_path("".join(parts)) else None
        parts.append(dot_segment or quote(value, safe=""))
        position = match.end()
    parts.append(template[position:])
    return "".join(parts)


def _fill_json(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        return _lookup(whole.group(1), values) if whole else fill_text(value, values)
    if isinstance(value, list):
        return [_fill_json(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _fill_json(item, values) for key, item in value.items()}
    return value


def request_body(
    spec: HttpSpec, context: ExecutionContext, values: Mapping[str, Any], headers: dict[str, str]
) -> bytes | None:
    """The body an attempt sends (and its ``Content-Type`` when the definition sets none)."""
    lowered = {name.lower() for name in headers}
    if spec.text is not None:
        if "content-type" not in lowered:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return fill_text(spec.text, values).encode()
    if spec.json is not None:
        document = _fill_json(spec.json, values)
    elif spec.method in ("POST", "PUT", "PATCH"):
        document = context.job.payload
    else:
        return None
    if "content-type" not in lowered:
        headers["Content-Type"] = "application/json"
    return json.dumps(document).encode()
