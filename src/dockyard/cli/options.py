"""Parsing helpers shared by commands: ``K=V`` pairs and definition files."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from dockyard.errors import ValidationError

__all__ = ["parse_pairs", "read_document"]


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
    try:
        text = Path(path).read_text() if path != "-" else __import__("sys").stdin.read()
    except OSError as error:
        raise ValidationError("file", f"cannot read {path}: {error.strerror}") from None
    try:
        document = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValidationError("file", f"{path} is not valid YAML or JSON: {error}") from None
    if not isinstance(document, dict):
        raise ValidationError("file", f"{path} must hold one mapping of definition fields")
    return document
