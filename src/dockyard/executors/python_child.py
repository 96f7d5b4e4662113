"""Entry point of an isolated ``python`` job: ``python -m dockyard.executors.python_child MOD:FN``.

Reads the payload as JSON from ``DOCKYARD_PAYLOAD`` or, when it is too big for the environment,
from the file named by ``DOCKYARD_PAYLOAD_FILE`` (see :mod:`dockyard.executors.payload`), calls
the function (awaiting it when it is a coroutine function) and writes ``{"result": …}`` or
``{"error": type, "message": …}`` to the file named by ``DOCKYARD_RESULT_FILE``. Exit code 0
means the report was written.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys
import traceback

from dockyard.executors.python import load_function


def main(ref: str) -> int:
    encoded = os.environ.get("DOCKYARD_PAYLOAD")
    if encoded is None:
        with open(os.environ["DOCKYARD_PAYLOAD_FILE"], "rb") as file:
            encoded = file.read().decode()
    payload = json.loads(encoded or "null")
    report: dict[str, object]
    try:
        function = load_function(ref)
        result = function(payload)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        json.dumps(result)
        report = {"result": result}
    except Exception as error:
        traceback.print_exc()
        report = {"error": type(error).__name__, "message": f"{type(error).__name__}: {error}"}
    with open(os.environ["DOCKYARD_RESULT_FILE"], "w") as file:
        json.dump(report, file)
    return 0


async def _await(awaitable: object) -> object:
    return await awaitable  # type: ignore[misc]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
