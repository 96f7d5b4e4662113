"""Parsing helpers shared by commands: ``K=V`` pairs and definition files."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from dockyard.errors import ValidationError

__all__ = ["parse_pairs", "read_document", "read_file"]


def parse_pairs(pairs: Iterable[str], field: str) -> dict[str, str]:
    """``["A=1", "B=2"]`` → ``{"A": "1", "B": "2"}``; an item without ``=`` is an error."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(field, f"{pair!r} must look like NAME=VALUE")
        out[key] = value
    return out


def read_document(path: str) -> dict[str, Any]:
    """A YAML or JSON file holding one mapping."""
    document = _load(path, yaml.SafeLoader)
    if not isinstance(document, dict):
        raise ValidationError("file", f"{path} must hold one mapping of definition fields")
    return document


class _JsonLikeLoader(yaml.SafeLoader):
    """YAML as JSON would read it: ``Time: 2026-06-01T12:00:00Z`` stays the text it is (safe_load
    makes it a datetime, which no event can carry)."""


_JsonLikeLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_file(path: str) -> Any:
    """Whatever a YAML or JSON file holds (a list of events, say), timestamps kept as text."""
    return _load(path, _JsonLikeLoader)


def _load(path: str, loader: type[yaml.SafeLoader]) -> Any:
    """The file's value (``-``: stdin); a mistake in it is one line naming where it is."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as error:
        raise ValidationError("file", f"cannot read {path}: {error.strerror}") from None
    try:
        if path.endswith(".json"):
            return json.loads(text)
        return yaml.load(text, Loader=loader)  # a SafeLoader: no arbitrary objects
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        reason = " ".join(str(error).split())
        raise ValidationError("file", f"{path} is not valid YAML or JSON: {reason}") from None
