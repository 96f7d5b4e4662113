"""Functions that ``python``-executor jobs in the tests call, as ``tests.jobfunctions:NAME``.

The worker imports them the way it imports any user's function: by name, from where it was started
(the repository root, for the tests).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any


def echo(payload: Any) -> dict[str, Any]:
    """Print something and return what it was given."""
    print(f"echo got {payload!r}")
    return {"received": payload, "ok": True}


async def async_echo(payload: Any) -> dict[str, Any]:
    """The same as :func:`echo`, as a coroutine function that really awaits."""
    await asyncio.sleep(0.01)
    print(f"async echo got {payload!r}")
    return {"received": payload, "async": True}


def boom(payload: Any) -> None:
    """Fail the way user code fails."""
    print("about to fail")
    raise ValueError("boom")


def sleep_long(payload: Any) -> None:
    """Outlive any timeout a test sets (only run with ``isolation: subprocess``)."""
    print("sleeping", flush=True)
    time.sleep(60)


def payload_size(payload: Any) -> dict[str, Any]:
    """How big the payload this function was given is, and whether the variable had it too."""
    import json
    import os

    return {
        "chars": len(json.dumps(payload)),
        "in_variable": "DOCKYARD_PAYLOAD" in os.environ,
        "in_file": len(open(os.environ["DOCKYARD_PAYLOAD_FILE"]).read()),
    }
