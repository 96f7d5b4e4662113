"""Entry point of an isolated ``python`` job:
``python -P -m dockyard.executors.python_child MOD:FN RULES``.

Reads the payload as JSON from ``DOCKYARD_PAYLOAD`` or, when it is too big for the environment,
from the file named by ``DOCKYARD_PAYLOAD_FILE`` (see :mod:`dockyard.executors.payload`), loads
the function and checks that the module it was defined in is allowed by ``RULES`` (the worker's
:class:`~dockyard.executors.functions.FunctionRules`; the worker checked the module the
definition names before starting this child), calls it (awaiting it when it is a coroutine
function) and writes ``{"result": …}`` or ``{"error": type, "message": …}`` to the file named by
``DOCKYARD_RESULT_FILE``. Exit code 0 means the report was written.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys
import traceback

from dockyard.executors.functions import FunctionNotAllowed, FunctionRules, load_function


def main(ref: str, rules: FunctionRules) -> int:
    encoded = os.environ.get("DOCKYARD_PAYLOAD")
    if encoded is None:
        with open(os.environ["DOCKYARD_PAYLOAD_FILE"], "rb") as file:
            encoded = file.read().decode()
    payload = json.loads(encoded or "null")
    report: dict[str, object]
    try:
        function = load_function(ref)
        rules.check_defined(ref, function)
        result = function(payload)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        json.dumps(result)
        report = {"result": result}
    except FunctionNotAllowed as refused:
        print(f"dockyard: {refused}", file=sys.stderr)
        report = {"error": "FunctionNotAllowed", "message": str(refused)}
    except Exception as error:
        traceback.print_exc()
        report = {"error": type(error).__name__, "message": f"{type(error).__name__}: {error}"}
    with open(os.environ["DOCKYARD_RESULT_FILE"], "w") as file:
        json.dump(report, file)
    return 0


async def _await(awaitable: object) -> object:
    return await awaitable  # type: ignore[misc]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], FunctionRules.from_argument(sys.argv[2])))
