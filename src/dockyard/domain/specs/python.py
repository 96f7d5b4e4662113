"""The ``python`` kind in definition documents: ``package.module:function``, inline or isolated.

Whoever may register a definition names the function, and a worker runs it with the worker's
own rights (inline, inside the worker process). So a definition may name only functions of its
owner's own code: a function of the standard library (``builtins:eval``, ``os:system``,
``subprocess:run``…, judged by the top-level package against ``sys.stdlib_module_names``) or of
Dockyard itself is refused when the definition is registered (``admit``: one stored before still
reads back, and the worker refuses to run it). Which of the owner's functions a worker runs is
the worker's call (:mod:`dockyard.executors.functions`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

from dockyard.domain.records import PythonSpec
from dockyard.domain.specs.kind import ExecutorKind, FieldShape
from dockyard.errors import ValidationError

__all__ = ["PYTHON", "forbidden_function"]

_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_ISOLATIONS = ("inline", "subprocess")
_HOW = (
    "a python job runs functions of your own code (register them with @dockyard.function"
    " or list their module in python_modules)"
)


def forbidden_function(ref: str, module: str | None = None) -> str | None:
    """Why ``ref`` (``package.module:function``) may never run as a python job, or None.

    ``module`` is where the function is really defined, when that is known and differs from
    the module ``ref`` names (a name the module imported from elsewhere)."""
    named = ref.partition(":")[0]
    module = module or named
    top = module.partition(".")[0]
    where = "" if module == named else f" (defined in {module})"
    if top in sys.stdlib_module_names:
        return f"{ref} is a standard-library function{where}; {_HOW}"
    if top == "dockyard":
        return f"{ref} is a function of Dockyard itself{where}; {_HOW}"
    return None


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


def admit(spec: PythonSpec) -> None:
    """Refuse a function of the standard library or of Dockyard (see the module docstring)."""
    refusal = forbidden_function(spec.function)
    if refusal is not None:
        raise ValidationError("function", refusal)


PYTHON = ExecutorKind(
    name="python",
    record=PythonSpec,
    fields={"function": FieldShape(accepts=str), "isolation": FieldShape(accepts=str)},
    parse=parse,
    document=document,
    admit=admit,
)
