"""Logs in a local directory: ``<root>/<job-id>/<attempt>.log``.

The cap keeps the head and the tail of a log, as people read logs: how it started and how it ended.
The first half of the cap is written as it is printed (so ``--follow`` sees it live); after that the
last half-cap of output is kept in memory, in chunks, and written when the attempt ends, after a line
that says how many bytes were dropped. Memory therefore stays under the cap whatever a job prints.

Logs hold what programs print, secrets included: the folders are created 0700 and the files 0600,
whatever the umask.
"""

from __future__ import annotations

import os
import shutil
from collections import deque
from pathlib import Path
from typing import BinaryIO

from dockyard.errors import ValidationError
from dockyard.settings import private_directory

__all__ = ["CappedLogWriter", "LocalLogStore"]


class CappedLogWriter:
    """Writes a log file of at most ``max_bytes`` plus one marker line.

    The file (and its folder) is created on the first write: a job that prints nothing costs no
    file-system work, and reading its log gives nothing.
    """

    def __init__(self, path: Path, max_bytes: int) -> None:
        self._path = path
        self._file: BinaryIO | None = None
        self._closed = False
        self._head_left = max_bytes // 2
        self._tail_limit = max_bytes - self._head_left
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._dropped = 0

    def _opened(self) -> BinaryIO:
        if self._file is None:
            private_directory(self._path.parent)
            descriptor = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = os.fdopen(descriptor, "ab", buffering=0)
        return self._file

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._head_left > 0:
            head = data[: self._head_left]
            self._opened().write(head)
            self._head_left -= len(head)
            data = data[len(head) :]
        if not data:
            return
        self._tail.append(data)
        self._tail_size += len(data)
        # Drop whole chunks from the left while the rest still fills the tail.
        while self._tail_size - len(self._tail[0]) >= self._tail_limit:
            self._dropped += len(self._tail[0])
            self._tail_size -= len(self._tail.popleft())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._file is None:
            return  # nothing was printed
        tail = b"".join(self._tail)
        excess = len(tail) - self._tail_limit
        if excess > 0:
            self._dropped += excess
            tail = tail[excess:]
        if self._dropped:
            self._file.write(f"\n[dockyard: {self._dropped} bytes dropped]\n".encode())
        self._file.write(tail)
        self._tail.clear()
        self._file.close()


class LocalLogStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, job_id: str, attempt: int) -> Path:
        if "/" in job_id or job_id.startswith("."):
            raise ValidationError("job_id", "must not contain '/' or start with '.'")
        return self.root / job_id / f"{attempt}.log"

    def open(self, job_id: str, attempt: int, max_bytes: int) -> CappedLogWriter:
        return CappedLogWriter(self.path(job_id, attempt), max_bytes)

    def read(
        self, job_id: str, attempt: int, offset: int = 0, limit: int | None = 1 << 20
    ) -> bytes:
        try:
            with self.path(job_id, attempt).open("rb") as file:
                file.seek(offset)
                return file.read(-1 if limit is None else limit)
        except FileNotFoundError:
            return b""

    def size(self, job_id: str, attempt: int) -> int:
        try:
            return self.path(job_id, attempt).stat().st_size
        except FileNotFoundError:
            return 0

    def remove(self, job_id: str) -> None:
        folder = self.root / job_id
        if "/" in job_id or job_id.startswith("."):
            raise ValidationError("job_id", "must not contain '/' or start with '.'")
        shutil.rmtree(folder, ignore_errors=True)
