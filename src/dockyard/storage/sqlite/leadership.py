"""The leadership port on SQLite: an exclusive ``flock`` per role, beside the store's file.

The operating system releases a lock when its process dies, so the next caller takes over at
once; a living process holds it until :meth:`SQLiteLeadership.release` (the store's ``close``).
Every process sharing the file is on this host (SQLite is not multi-host), so a file lock sees
them all.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["SQLiteLeadership"]


class SQLiteLeadership:
    """One leader per role among the processes sharing the SQLite file at ``path``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        #: The open lock file of each role this process leads.
        self._leads: dict[str, int] = {}

    async def try_lead(self, role: str) -> bool:
        """An exclusive ``flock`` on ``<store>.<role>.lock``, held while this process lives."""
        if role in self._leads:
            return True
        lock = self._path.with_name(f"{self._path.name}.{role}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._leads[role] = fd
        return True

    def release(self) -> None:
        """Give up every leadership held (another process takes over); safe to call again."""
        for fd in self._leads.values():
            os.close(fd)  # releases the flock
        self._leads.clear()
