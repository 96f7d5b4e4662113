"""How a program gets its job's payload: a file always, an environment variable when small.

Linux caps one environment string at 128 KiB (``MAX_ARG_STRLEN``; a longer one makes ``execve``
fail with ``E2BIG``, "Argument list too long"), while a payload may be up to 256 KiB. So every
program an attempt starts (a process, a Python function in a child process, a container) finds
the payload in the file named by ``DOCKYARD_PAYLOAD_FILE``, whatever its size, and also in
``DOCKYARD_PAYLOAD`` when it is at most :data:`PAYLOAD_ENV_MAX` bytes of JSON — far below the
cap, so that the rest of the environment keeps its room.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dockyard.executors.port import ExecutionContext

__all__ = ["CONTAINER_PAYLOAD_PATH", "PAYLOAD_ENV_MAX", "payload_file", "payload_variables"]

PAYLOAD_ENV_MAX = 32 * 1024
#: Where a container finds the file (mounted read-only).
CONTAINER_PAYLOAD_PATH = "/run/dockyard/payload.json"


@contextmanager
def payload_file(context: ExecutionContext) -> Iterator[Path]:
    """The attempt's payload as JSON in a file, removed afterwards. Its folder is the worker
    user's alone (0700); the file itself is readable by any user, so that a container running
    as another user can read it where it is mounted."""
    folder = Path(tempfile.mkdtemp(prefix="dockyard-payload-"))  # mode 0700
    try:
        path = folder / "payload.json"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(descriptor, "w") as file:
            json.dump(context.job.payload, file)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def payload_variables(context: ExecutionContext, path: str) -> dict[str, str]:
    """``DOCKYARD_PAYLOAD_FILE`` (``path`` as the program sees it) and, for a small payload,
    ``DOCKYARD_PAYLOAD``."""
    variables = {"DOCKYARD_PAYLOAD_FILE": path}
    encoded = json.dumps(context.job.payload)
    if len(encoded.encode()) <= PAYLOAD_ENV_MAX:
        variables["DOCKYARD_PAYLOAD"] = encoded
    return variables
