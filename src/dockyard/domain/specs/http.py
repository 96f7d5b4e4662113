"""The ``http`` kind in definition documents: one HTTP call per attempt, templated from the job.

Also home of the response cap that ``lambda`` shares, since a Lambda invocation is an HTTP call.
``headers`` may not set ``Host``, ``Content-Length`` or a hop-by-hop header: the client sets
those, and ``Host`` must name the host the call was checked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dockyard.domain.fields import check_header_names, string, string_map
from dockyard.domain.records import HttpSpec
from dockyard.domain.specs.kind import ExecutorKind, FieldShape, without_none
from dockyard.domain.specs.signing import SIGNING_SHAPE, parse_signing, signing_document
from dockyard.errors import ValidationError

__all__ = ["HTTP", "MAX_RESPONSE_BYTES", "response_cap"]

MAX_RESPONSE_BYTES = 10 * 1024 * 1024
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_STATUS = re.compile(r"^(?:[1-5]xx|[1-5][0-9]{2}(?:-[1-5][0-9]{2})?)$")


def response_cap(doc: Mapping[str, Any]) -> int:
    """``max_response_bytes``: how much of a response an attempt keeps [64 KiB]."""
    cap = doc.get("max_response_bytes", 65536)
    if isinstance(cap, bool) or not isinstance(cap, int) or not 0 <= cap <= MAX_RESPONSE_BYTES:
        raise ValidationError(
            "max_response_bytes", f"must be an integer from 0 to {MAX_RESPONSE_BYTES}"
        )
    return cap


def _statuses(doc: Mapping[str, Any]) -> tuple[str, ...]:
    statuses = doc.get("expect_status", ["2xx"])
    if isinstance(statuses, str | int):
        statuses = [statuses]
    if not isinstance(statuses, list) or not statuses:
        raise ValidationError("expect_status", "must be a list of codes like 200, 2xx, 200-204")
    for status in statuses:
        if not _STATUS.match(str(status)):
            raise ValidationError("expect_status", f"{status!r} is not like 200, 2xx or 200-204")
    return tuple(str(status) for status in statuses)


def parse(doc: Mapping[str, Any]) -> HttpSpec:
    url = doc.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValidationError("url", "must be an http:// or https:// URL")
    method = doc.get("method", "POST")
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise ValidationError("method", f"must be one of {', '.join(_METHODS)}")
    if doc.get("json") is not None and doc.get("text") is not None:
        raise ValidationError("text", "give json or text, not both")
    statuses = _statuses(doc)
    cap = response_cap(doc)
    signing = doc.get("signing")
    parsed_signing = None if signing is None else parse_signing(signing)
    text = doc.get("text")
    headers = string_map(doc.get("headers", {}), "headers")
    check_header_names(headers, "headers")
    return HttpSpec(
        method=method.upper(),
        url=url,
        headers=headers,
        json=doc.get("json"),
        text=None if text is None else string(text, "text"),
        expect_status=statuses,
        max_response_bytes=cap,
        signing=parsed_signing,
    )


def document(spec: HttpSpec) -> dict[str, Any]:
    return without_none(
        method=spec.method,
        url=spec.url,
        headers=dict(spec.headers),
        expect_status=list(spec.expect_status),
        max_response_bytes=spec.max_response_bytes,
        json=spec.json,
        text=spec.text,
        signing=None if spec.signing is None else signing_document(spec.signing),
    )


HTTP = ExecutorKind(
    name="http",
    record=HttpSpec,
    fields={
        "url": FieldShape(accepts=str),
        "method": FieldShape(accepts=str),
        "headers": FieldShape(accepts=dict[str, str]),
        "json": FieldShape(accepts=Any),
        "text": FieldShape(accepts=str),
        "expect_status": FieldShape(accepts=list[str | int] | str | int, writes=list[str]),
        "max_response_bytes": FieldShape(accepts=int),
        "signing": SIGNING_SHAPE,
    },
    parse=parse,
    document=document,
)
