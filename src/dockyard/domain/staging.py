"""A definition's ``inputs`` and ``outputs``: files fetched into an attempt's work directory
before it runs, and files uploaded from it after.

::

    inputs:
      - from: s3://subs/${payload.submission}.zip   # s3://, https://, http://, file://
        to: src                                      # relative to the work directory
        unpack: auto                                 # auto | zip | tar | none
        limits: {max_entries: 10000, max_bytes: 1073741824, max_ratio: 100}
    outputs:
      - path: report/*.json                          # a glob relative to the work directory
        to: s3://results/${job.id}/                  # s3:// only: a prefix (ends with /) or one object
        when: always                                 # success | failure | always

Placeholders are the http executor's (``${payload.a.b}``, ``${job.id}``, ``${job.name}``,
``${job.attempt}``), filled in by :func:`dockyard.executors.templates.fill_url` when the attempt
starts: this module only finds them, to check them. They may appear in a URL's path (``from``,
and ``to`` of an output) — not in its scheme, bucket, host or, for ``file://``, its top folder:
a payload must not choose which bucket, host or folder a job reads or writes — and never in a
work-directory path (``to`` of an input, ``path`` of an output): a payload value must not choose
where a file lands on the worker.

What can be known at register time is refused then (:func:`parse_inputs`, :func:`parse_outputs`,
naming ``inputs[0].from``…): unknown schemes, work-directory paths that are absolute or climb out
with ``..``, bad ``unpack``/``when`` values, limits out of range. At submit time
:func:`check_placeholders` refuses a payload that lacks a field a placeholder names.

Pure: standard library only (DESIGN.md §4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

from dockyard.domain.fields import mapping
from dockyard.errors import DockyardError, ValidationError

__all__ = [
    "CANNOT_FETCH_INPUT",
    "CANNOT_STORE_OUTPUT",
    "DEFAULT_LIMITS",
    "INPUT_REJECTED",
    "OUTPUT_MISSING",
    "PLACEHOLDER",
    "ArchiveLimits",
    "InputSpec",
    "OutputRecord",
    "OutputSpec",
    "StagingError",
    "check_placeholders",
    "input_document",
    "output_document",
    "output_record_document",
    "output_record_from",
    "parse_inputs",
    "parse_outputs",
]

#: Reasons an attempt fails with when staging goes wrong (all retryable like any reason).
CANNOT_FETCH_INPUT = "CannotFetchInput"
INPUT_REJECTED = "InputRejected"
OUTPUT_MISSING = "OutputMissing"
CANNOT_STORE_OUTPUT = "CannotStoreOutput"

#: The http executor's placeholders (dockyard.executors.templates uses the same pattern).
PLACEHOLDER = re.compile(r"\$\{(payload(?:\.[A-Za-z0-9_-]+)*|job\.(?:id|name|attempt))\}")
_ANY_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")

Unpack = Literal["auto", "zip", "tar", "none"]
When = Literal["success", "failure", "always"]
_UNPACK = ("auto", "zip", "tar", "none")
_WHEN = ("success", "failure", "always")
_INPUT_SCHEMES = ("s3", "https", "http", "file")
_OUTPUT_SCHEMES = ("s3",)
MAX_INPUTS = 32
MAX_OUTPUTS = 32
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveLimits:
    """Bounds on one input: ``max_entries`` entries in an archive, ``max_bytes`` bytes fetched
    and bytes unpacked in all, and an unpacked size at most ``max_ratio`` times the archive's
    (checked once more than ``RATIO_FLOOR`` bytes are unpacked, so small text files that
    compress well pass)."""

    max_entries: int = 10_000
    max_bytes: int = 1 << 30
    max_ratio: float = 100.0


DEFAULT_LIMITS = ArchiveLimits()
#: Ranges a definition may set limits within.
_LIMIT_RANGES: dict[str, tuple[float, float]] = {
    "max_entries": (1, 1_000_000),
    "max_bytes": (1, 64 << 30),
    "max_ratio": (1, 100_000),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class InputSpec:
    """One file fetched before the attempt runs (see the module docstring)."""

    source: str
    #: Relative path inside the work directory; None: the archive's contents go to the work
    #: directory itself, a plain file under its source's name.
    to: str | None = None
    unpack: Unpack = "auto"
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputSpec:
    """Files uploaded after the attempt: ``path`` (a glob) to ``to`` (a prefix when it ends with
    ``/``, else one object), when the attempt ended as ``when`` says."""

    path: str
    to: str
    when: When = "success"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputRecord:
    """One uploaded output file, as kept on its attempt: where it is, its size and SHA-256, and
    its path in the work directory."""

    uri: str
    size: int
    sha256: str
    path: str


def output_record_document(record: OutputRecord) -> dict[str, Any]:
    return {"uri": record.uri, "size": record.size, "sha256": record.sha256, "path": record.path}


def output_record_from(document: Mapping[str, Any]) -> OutputRecord:
    """A record as stored (JSON), read back."""
    return OutputRecord(
        uri=str(document["uri"]),
        size=int(document["size"]),
        sha256=str(document["sha256"]),
        path=str(document["path"]),
    )


class StagingError(DockyardError):
    """Staging failed; ``reason`` is the attempt's reason (:data:`CANNOT_FETCH_INPUT`,
    :data:`INPUT_REJECTED`, :data:`OUTPUT_MISSING`, :data:`CANNOT_STORE_OUTPUT`) and the
    message names the input or output, the entry and the rule."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def parse_inputs(value: object, field: str = "inputs") -> tuple[InputSpec, ...]:
    items = _list(value, field, MAX_INPUTS)
    return tuple(_parse_input(item, f"{field}[{i}]") for i, item in enumerate(items))


def parse_outputs(value: object, field: str = "outputs") -> tuple[OutputSpec, ...]:
    items = _list(value, field, MAX_OUTPUTS)
    return tuple(_parse_output(item, f"{field}[{i}]") for i, item in enumerate(items))


def _list(value: object, field: str, most: int) -> Sequence[object]:
    if not isinstance(value, list | tuple) or len(value) > most:
        raise ValidationError(field, f"must be a list of at most {most} items")
    return value


def _parse_input(value: object, field: str) -> InputSpec:
    doc = mapping(value, field, frozenset({"from", "to", "unpack", "limits"}))
    source = check_url(doc.get("from"), f"{field}.from", _INPUT_SCHEMES)
    if source.startswith(("s3://", "file://")) and urlsplit(source).path.strip("/") == "":
        raise ValidationError(f"{field}.from", f"{source!r} must name an object or a file")
    if source.endswith("/") and not source.startswith("http"):
        raise ValidationError(f"{field}.from", f"{source!r} must name an object, not a prefix")
    to = doc.get("to")
    unpack = doc.get("unpack", "auto")
    if unpack not in _UNPACK:
        raise ValidationError(f"{field}.unpack", f"must be one of {', '.join(_UNPACK)}")
    return InputSpec(
        source=source,
        to=None if to is None else check_work_path(to, f"{field}.to", glob=False),
        unpack=unpack,
        limits=_parse_limits(doc.get("limits", {}), f"{field}.limits"),
    )


def _parse_limits(value: object, field: str) -> ArchiveLimits:
    doc = mapping(value, field, frozenset(_LIMIT_RANGES))
    found: dict[str, Any] = {}
    for key, (low, high) in _LIMIT_RANGES.items():
        if key not in doc:
            continue
        item = doc[key]
        number_ok = isinstance(item, int | float) and not isinstance(item, bool)
        if key != "max_ratio" and not isinstance(item, int):
            number_ok = False
        if not number_ok or not low <= item <= high:
            kind = "a number" if key == "max_ratio" else "an integer"
            raise ValidationError(f"{field}.{key}", f"must be {kind} from {low:g} to {high:g}")
        found[key] = float(item) if key == "max_ratio" else item
    return ArchiveLimits(**found)


def _parse_output(value: object, field: str) -> OutputSpec:
    doc = mapping(value, field, frozenset({"path", "to", "when"}))
    path = check_work_path(doc.get("path"), f"{field}.path", glob=True)
    to = check_url(doc.get("to"), f"{field}.to", _OUTPUT_SCHEMES)
    when = doc.get("when", "success")
    if when not in _WHEN:
        raise ValidationError(f"{field}.when", f"must be one of {', '.join(_WHEN)}")
    if not to.endswith("/") and _GLOB_CHARS & set(path):
        raise ValidationError(
            f"{field}.to", "must end with '/' (a prefix) when the path is a pattern"
        )
    return OutputSpec(path=path, to=to, when=when)


def check_url(value: object, field: str, schemes: Sequence[str]) -> str:
    """A source or destination URL: a literal scheme among ``schemes``, placeholders only
    after it, and (placeholders filled with a stand-in) a URL of that scheme's shape."""
    allowed = ", ".join(f"{scheme}://" for scheme in schemes)
    if not isinstance(value, str) or not value:
        raise ValidationError(field, f"must be a URL: {allowed}")
    if len(value) > 2048:
        raise ValidationError(field, "must be at most 2048 characters")
    for match in _ANY_PLACEHOLDER.finditer(value):
        if not PLACEHOLDER.fullmatch(match.group()):
            raise ValidationError(
                field,
                f"unknown placeholder {match.group()}: use ${{payload.NAME}}, ${{job.id}},"
                " ${job.name} or ${job.attempt}",
            )
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in schemes:
        raise ValidationError(field, f"unknown scheme in {value!r}: use {allowed}")
    # The bucket or host (and a file's top folder) are the author's: a payload may not choose
    # which bucket, host or folder of the worker's a job reads from or writes to.
    fixed = rest.split("/", 2 if scheme == "file" else 1)
    short = len(fixed) < (3 if scheme == "file" else 2)
    if "${" in value and ("${" in "/".join(fixed[:-1]) or short):
        where = "folder" if scheme == "file" else "bucket" if scheme == "s3" else "host"
        raise ValidationError(
            field, f"the {where} must be written out, without placeholders, followed by '/'"
        )
    check_rendered_url(PLACEHOLDER.sub("x", value), field)
    return value


def check_rendered_url(url: str, field: str) -> None:
    """The shape of a URL once its placeholders are filled (also run when an attempt starts)."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc or "@" in parts.netloc:
            raise ValidationError(field, f"{url!r}: must be s3://bucket/key (no credentials)")
        if parts.query or parts.fragment:
            raise ValidationError(field, f"{url!r}: must not have a query or a fragment")
    elif parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValidationError(field, f"{url!r}: must be file:///absolute/path")
    elif not parts.hostname:
        raise ValidationError(field, f"{url!r}: must name a host")
    segments = parts.path.split("/")
    if ".." in segments or "." in segments:
        raise ValidationError(field, f"{url!r}: must not have '.' or '..' path segments")


def check_work_path(value: object, field: str, *, glob: bool) -> str:
    """A path inside the work directory: relative, no ``..``, no placeholder."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "must be a path relative to the work directory")
    if "${" in value:
        raise ValidationError(field, "must not hold placeholders: a payload cannot choose paths")
    if "\\" in value or "\x00" in value or any(ord(char) < 32 for char in value):
        raise ValidationError(field, "must not hold backslashes or control characters")
    if value.startswith("/") or value.startswith("~"):
        raise ValidationError(field, f"{value!r} must be relative to the work directory")
    if ".." in PurePosixPath(value).parts:
        raise ValidationError(field, f"{value!r} must not climb out of the work directory")
    if not glob and _GLOB_CHARS & set(value):
        raise ValidationError(field, "must not hold *, ? or [")
    return value


def check_placeholders(
    inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec], payload: object
) -> None:
    """Refuse (at submit time) a payload lacking a field that a placeholder names."""
    named = [(f"inputs[{i}].from", item.source) for i, item in enumerate(inputs)]
    named += [(f"outputs[{i}].to", item.to) for i, item in enumerate(outputs)]
    for where, text in named:
        for match in PLACEHOLDER.finditer(text):
            name = match.group(1)
            if name.startswith("job."):
                continue
            value: object = payload
            for part in name.split(".")[1:]:
                value = value.get(part) if isinstance(value, Mapping) else None
            if value is None or isinstance(value, dict | list):
                raise ValidationError(
                    where,
                    f"names ${{{name}}}, which the payload does not have as a string or number",
                )


def input_document(spec: InputSpec) -> dict[str, Any]:
    doc: dict[str, Any] = {"from": spec.source, "unpack": spec.unpack}
    if spec.to is not None:
        doc["to"] = spec.to
    if spec.limits != DEFAULT_LIMITS:
        doc["limits"] = {
            "max_entries": spec.limits.max_entries,
            "max_bytes": spec.limits.max_bytes,
            "max_ratio": spec.limits.max_ratio,
        }
    return doc


def output_document(spec: OutputSpec) -> dict[str, Any]:
    return {"path": spec.path, "to": spec.to, "when": spec.when}
