"""The ``python`` kind in definition documents: ``package.module:function``, inline or isolated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dockyard.domain.records import PythonSpec
from dockyard.domain.specs.kind import ExecutorKind, FieldShape
from dockyard.errors import ValidationError

__all__ = ["PYTHON"]

_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_ISOLATIONS = ("inline", "subprocess")


def parse(doc: Mapping[str, Any]) -> PythonSpec:
    function = doc.get("function")
    if not isinstance(function, str) or not _FUNCTION.match(function):
        raise ValidationError("function", "must be 'package.module:function'")
    isolation = doc.get("isolation", "inline")
    if isolation not in _ISOLATIONS:
        raise ValidationError("isolation", "must be 'inline' or 'subprocess'")
    return PythonSpec(function=function, isolation=isolation)


def document(spec: PythonSpec) -> dict[str, Any]:
    return {"function": spec.function, "isolation": spec.isolation}


PYTHON = ExecutorKind(
    name="python",
    record=PythonSpec,
    fields={"function": FieldShape(accepts=str), "isolation": FieldShape(accepts=str)},
    parse=parse,
    document=document,
)
