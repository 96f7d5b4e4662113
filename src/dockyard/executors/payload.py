"""How a program gets its job's payload: a file always, an environment variable when small.

Linux caps one environment string at 128 KiB (``MAX_ARG_STRLEN``; a longer one makes ``execve``
fail with ``E2BIG``, "Argument list too long"), while a payload may be up to 256 KiB. So every
program an attempt starts (a process, a Python function in a child process, a container) finds
the payload in the file named by ``DOCKYARD_PAYLOAD_FILE``, whatever its size, and also in
``DOCKYARD_PAYLOAD`` when it is at most :data:`PAYLOAD_ENV_MAX` bytes of JSON — far below the
cap, so that the rest of the environment keeps its room.

**A file in memory for programs** (:func:`handover`): a ``memfd`` written once and passed to the
program as an open descriptor, named ``/dev/fd/N`` (~35 µs an attempt, against ~2 ms for a
fresh folder and file on a slow ``/tmp``, created and removed). The program and the children
that inherit its descriptors can open it (each ``open`` reads from the start); a child started
with its inherited descriptors closed (Python's ``subprocess`` does so by default) cannot: such
a program passes the payload on, or its descriptor (``pass_fds``). Where there is no memfd
(not Linux), a file in a folder of the worker user's own is used instead, and removed after.

**A file on disk for containers** (:func:`payload_file`): they bind-mount it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dockyard.executors.port import ExecutionContext

__all__ = [
    "CONTAINER_PAYLOAD_PATH",
    "PAYLOAD_ENV_MAX",
    "Handover",
    "handover",
    "payload_file",
    "payload_variables",
]

PAYLOAD_ENV_MAX = 32 * 1024
#: Where a container finds the file (mounted read-only).
CONTAINER_PAYLOAD_PATH = "/run/dockyard/payload.json"


@dataclass(frozen=True, slots=True)
class Handover:
    """A file handed to a program: the path it opens, and the descriptors it must inherit."""

    path: str
    descriptors: tuple[int, ...] = ()

    def read(self) -> bytes:
        """What the file holds now (what the program wrote, for a result)."""
        if not self.descriptors:
            return Path(self.path).read_bytes()
        (descriptor,) = self.descriptors
        return os.pread(descriptor, os.fstat(descriptor).st_size, 0)


@contextmanager
def handover(name: str, data: bytes = b"") -> Iterator[Handover]:
    """A file holding ``data`` for a program to open (or to write), gone afterwards: a memfd
    passed by descriptor, or where there is none a file in a private folder."""
    try:
        descriptor = os.memfd_create(f"dockyard-{name}")  # close-on-exec: pass_fds passes it
    except (AttributeError, OSError):
        with _private_file(name, data, 0o600) as path:
            yield Handover(str(path))
        return
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
        yield Handover(f"/dev/fd/{descriptor}", (descriptor,))
    finally:
        os.close(descriptor)


@contextmanager
def payload_file(context: ExecutionContext) -> Iterator[Path]:
    """The attempt's payload as JSON in a file on disk, removed afterwards (for a container to
    mount). Its folder is the worker user's alone (0700); the file itself is readable by any
    user, so that a container running as another user can read it where it is mounted."""
    with _private_file("payload.json", json.dumps(context.job.payload).encode(), 0o644) as path:
        yield path


@contextmanager
def _private_file(name: str, data: bytes, mode: int) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="dockyard-"))  # mode 0700
    try:
        path = folder / name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def payload_variables(
    context: ExecutionContext, path: str, encoded: str | None = None
) -> dict[str, str]:
    """``DOCKYARD_PAYLOAD_FILE`` (``path`` as the program sees it) and, for a small payload,
    ``DOCKYARD_PAYLOAD`` (``encoded``: the payload as JSON, when the caller has it already)."""
    variables = {"DOCKYARD_PAYLOAD_FILE": path}
    encoded = json.dumps(context.job.payload) if encoded is None else encoded
    if len(encoded.encode()) <= PAYLOAD_ENV_MAX:
        variables["DOCKYARD_PAYLOAD"] = encoded
    return variables
