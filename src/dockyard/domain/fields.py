"""Checks of one value in a document, shared by every document parser in the domain.

Each check takes the value and the field's name as the user wrote it (``retry.attempts``,
``signing.region``), and returns the value in its parsed form or raises
:class:`~dockyard.errors.ValidationError` naming that field and the rule it breaks. The messages
are part of Dockyard's interface: the CLI prints them, the API returns them, tests pin them.

This module is a leaf: the definition parser (:mod:`dockyard.domain.definitions`) and each
executor kind's parser (:mod:`dockyard.domain.specs`) import it, and it imports neither.

It also holds the one nesting rule for free-form JSON (payloads, event details): at most
:data:`MAX_DEPTH` levels of lists and objects, checked without recursion on parsed values
(:func:`check_depth`) and on JSON text before it is parsed (:func:`check_text_depth`), so that a
deep document is refused before anything recurses into it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from itertools import accumulate
from typing import Any, TypeVar

from dockyard.errors import ValidationError

__all__ = [
    "DEPTH_RULE",
    "FORBIDDEN_HEADERS_RULE",
    "MAX_DEPTH",
    "NEVER_CREDENTIAL_PREFIXES",
    "check_credential_name",
    "check_depth",
    "check_env_name",
    "check_header_names",
    "check_text_depth",
    "flag",
    "mapping",
    "non_negative_int",
    "non_negative_number",
    "number",
    "optional",
    "parse_command",
    "positive_int",
    "positive_number",
    "string",
    "string_map",
    "text_nesting",
    "too_deep",
    "word",
]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WORD = re.compile(r"[a-z0-9-]{1,64}")

T = TypeVar("T")

#: Levels of lists and objects a payload, an event's detail or a pattern may nest: enough for
#: any document a person writes, and far below where a renderer or a parser recurses too deep
#: (pydantic stops serialising at about 250, Python's json at about 1,000).
MAX_DEPTH = 64
DEPTH_RULE = f"must nest at most {MAX_DEPTH} levels of lists and objects"

# JSON text without its strings is brackets and scalars: each opening bracket is one level in.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_BRACKET_STEPS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")  # +1 and -1 as signed bytes


def optional(
    doc: Mapping[str, Any], key: str, check: Callable[[object, str], T], prefix: str = ""
) -> T | None:
    """``check`` applied to ``doc[key]``; None when the key is absent or null."""
    value = doc.get(key)
    return None if value is None else check(value, prefix + key)


def string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    return value


def flag(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, "must be true or false")
    return value


def word(value: object, field: str) -> str:
    """An AWS service or region name: lower-case letters, digits and hyphens."""
    if not isinstance(value, str) or not _WORD.fullmatch(value):
        raise ValidationError(field, "must be lower-case letters, digits and hyphens")
    return value


def number(value: object, field: str) -> float:
    # bool is an int to Python, never a number to a user.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, "must be a number")
    return float(value)


def positive_number(value: object, field: str) -> float:
    parsed = number(value, field)
    if parsed <= 0:
        raise ValidationError(field, "must be greater than 0")
    return parsed


def non_negative_number(value: object, field: str) -> float:
    parsed = number(value, field)
    if parsed < 0:
        raise ValidationError(field, "must not be negative")
    return parsed


def _integer(value: object, field: str, *, minimum: int, rule: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(field, rule)
    return value


def positive_int(value: object, field: str) -> int:
    return _integer(value, field, minimum=1, rule="must be a positive integer")


def non_negative_int(value: object, field: str) -> int:
    return _integer(value, field, minimum=0, rule="must be a non-negative integer")


def mapping(value: object, field: str, keys: frozenset[str] | set[str]) -> Mapping[str, Any]:
    """A mapping whose keys are all among ``keys``; an unknown key is named ``field.key``."""
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a mapping")
    for key in value:
        if key not in keys:
            raise ValidationError(f"{field}.{key}", f"is not a field of {field}")
    return value


def string_map(value: object, field: str) -> dict[str, str]:
    """A mapping of names to strings (numbers are taken as their text), naming the bad entry."""
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a mapping of names to strings")
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValidationError(f"{field}.{key}", "must be a string")
        out[str(key)] = str(item)
    return out


def check_env_name(name: object, field: str) -> str:
    """An environment variable name a user may set: ``DOCKYARD_*`` is Dockyard's own."""
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise ValidationError(
            field, "must be a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
        )
    if name.startswith("DOCKYARD_"):
        raise ValidationError(field, "names starting with DOCKYARD_ are reserved")
    return name


#: Worker variables no definition may name as a credential: Dockyard's own settings and
#: PostgreSQL's (``PGPASSWORD``). The worker refuses them too
#: (:data:`dockyard.executors.environment.NEVER_CREDENTIALS`; a test keeps the two equal).
NEVER_CREDENTIAL_PREFIXES = ("DOCKYARD_", "PG")


def check_credential_name(name: object, field: str) -> str:
    """A worker variable a definition names as a credential (a signing secret, an AWS key)."""
    if isinstance(name, str) and name.startswith(NEVER_CREDENTIAL_PREFIXES):
        raise ValidationError(
            field,
            "must not name a DOCKYARD_* or PG* variable: a worker's own settings and its"
            " database password are never credentials",
        )
    return check_env_name(name, field)


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: Headers a definition may not set: the connection's own (hop-by-hop, RFC 9110 7.6.1), the
#: body's framing, and ``Host``, which must stay the URL's (the address the call was checked for).
_FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "te", "trailer", "transfer-encoding"}
    | {"upgrade"}
)
FORBIDDEN_HEADERS_RULE = (
    "a definition may not set Host, Content-Length or hop-by-hop headers (Connection,"
    " Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade)"
)


def check_header_names(names: Iterable[str], field: str) -> None:
    """Refuse a header name that is not a token, or that only the HTTP client may set."""
    for name in names:
        if not _HEADER_NAME.match(name):
            raise ValidationError(field, f"{name!r} is not a header name")
        lowered = name.lower()
        if lowered in _FORBIDDEN_HEADERS or lowered.startswith("proxy-"):
            raise ValidationError(field, f"{name!r}: {FORBIDDEN_HEADERS_RULE}")


def parse_command(value: object, field: str, *, shell: bool = False) -> tuple[str, ...]:
    """A non-empty argv of strings; a plain string is taken as one shell line."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError(field, "must be a non-empty list of strings")
    if not all(isinstance(arg, str) for arg in value):
        raise ValidationError(field, "must be a list of strings")
    if value[0] == "":
        raise ValidationError(field, "the program must not be an empty string")
    if shell and len(value) != 1:
        raise ValidationError(field, "must be a single shell line when shell is true")
    return tuple(value)


def too_deep(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and mappings nest more than ``limit`` levels in ``value`` (a scalar is 0,
    ``[]`` is 1). Iterative, so no value is too deep to be looked at."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend(
            (child, depth + 1) for child in children if isinstance(child, Mapping | list | tuple)
        )
    return False


def check_depth(value: T, field: str) -> T:
    """``value`` unchanged, or a ValidationError naming ``field`` when it nests too deep."""
    if too_deep(value):
        raise ValidationError(field, DEPTH_RULE)
    return value


def text_nesting(text: str | bytes) -> int:
    """How many levels of lists and objects JSON text nests, read without parsing it: brackets
    inside strings do not count. Linear and in C but for one pass, so a body can be measured
    before it is parsed; text that is not JSON gets a number too, and the parser refuses it."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    steps = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS).translate(_BRACKET_STEPS)
    return max(accumulate(memoryview(steps).cast("b")), default=0)


def check_text_depth(text: str, field: str) -> str:
    """JSON text ``text`` unchanged, or a ValidationError naming ``field`` when it would parse
    to a value that nests too deep."""
    if text_nesting(text) > MAX_DEPTH:
        raise ValidationError(field, DEPTH_RULE)
    return text
