"""The SQLite file's one connection, shared by every port of a store.

One connection per process, used from one thread (SQLite allows one writer at a time anyway), so
each verb is one short transaction run off the event loop (:meth:`Database.run`). Writes take the
lock up front with ``BEGIN IMMEDIATE`` (:meth:`Database.write`) and wait behind other processes
with a busy timeout instead of failing; every commit wakes this process's waiters. Other
processes' commits are noticed through ``PRAGMA data_version``, which costs no disk read.

The port modules (``jobs.py``, ``schedules.py``…) receive this object; they never open a
connection of their own. This module also says how SQLite stores a time (seconds since the epoch,
a REAL) and JSON (text), for every port alike. A file it creates is its owner's alone (0600).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from dockyard.errors import StorageError
from dockyard.settings import private_directory
from dockyard.storage.queries import Queries
from dockyard.storage.rows import RowReader
from dockyard.storage.signal import ChangeSignal

__all__ = [
    "BUSY_TIMEOUT_MS",
    "ROWS",
    "Database",
    "epoch",
    "fragment",
    "load_queries",
    "marks",
    "moment",
]

T = TypeVar("T")

#: How long a write waits for another process's transaction before it fails.
BUSY_TIMEOUT_MS = 30_000

#: Rows to records, with SQLite's times (epoch seconds) and JSON (text).
ROWS = RowReader(time=lambda seconds: datetime.fromtimestamp(seconds, UTC), json=json.loads)


def load_queries(filename: str) -> Queries:
    """The named statements of ``sql/<filename>`` beside this module.

    A statement may hold ``{slot}`` fields, filled with :meth:`str.format` before it runs: with
    a named fragment of the same file, or with :func:`marks` for an IN list whose length is known
    only at run time. Values are never formatted in: they are always bound as parameters.
    """
    return Queries.load("dockyard.storage.sqlite", filename)


def fragment(queries: Queries, name: str) -> str:
    """The named fragment without its comment lines: its documentation stays in the file rather
    than in the middle of every statement it is put in."""
    lines = queries[name].splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("--"))


def epoch(value: datetime | None) -> float | None:
    """A time as SQLite stores it: seconds since the epoch."""
    return None if value is None else value.timestamp()


def moment(seconds: float | None) -> datetime | None:
    """A stored time back as an aware UTC datetime."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def marks(count: int) -> str:
    """``?, ?, …``: the placeholders of an IN list of ``count`` values."""
    return ", ".join("?" * count)


class Database:
    """The store's one connection, opened on first use and used only from its own thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = _DatabaseThread()
        self._connection: sqlite3.Connection | None = None
        self._signal = ChangeSignal()
        #: The last ``PRAGMA data_version`` seen; read and written on the database thread only.
        self._data_version = 0

    @property
    def signal(self) -> ChangeSignal:
        """Bumped by every commit of this process (:meth:`write`)."""
        return self._signal

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                _create_private(self.path)
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            except (OSError, sqlite3.Error) as error:
                raise StorageError(f"cannot open {self.path}: {error}") from error
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a crashed process loses nothing; a power cut may lose the last
            # commits but never corrupts the file.
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            # The baseline: a first wait must not take the commits before it for news.
            self._data_version = int(db.execute("PRAGMA data_version").fetchone()[0])
            self._connection = db
        return self._connection

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Call ``fn`` with the connection on the database thread, off the event loop.

        The one way to reach the connection, for the ports and for tests that inspect it (a
        trace callback, ``EXPLAIN QUERY PLAN``): calls run one at a time, in order.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: fn(self._connect()))

    @contextmanager
    def write(self, db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """One write transaction, to use inside :meth:`run`: the lock is taken up front (so a
        read inside never has to upgrade, and a busy store is waited for, not failed), and the
        commit wakes this process's waiters."""
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self._signal.notify()

    def committed_elsewhere(self, db: sqlite3.Connection) -> bool:
        """True when another connection committed since the last call (to use inside
        :meth:`run`): ``PRAGMA data_version`` reads a counter in shared memory, not the file."""
        version = int(db.execute("PRAGMA data_version").fetchone()[0])
        changed = version != self._data_version
        self._data_version = version
        return changed

    async def close(self) -> None:
        """Close the connection and stop the thread; safe to call more than once."""

        def close(db: sqlite3.Connection) -> None:
            db.close()
            self._connection = None

        if self._connection is not None:
            await self.run(close)
        self._thread.shutdown(wait=True)


def _create_private(path: Path) -> None:
    """Create the database file (and its folder) for its owner alone, whatever the umask: SQLite
    gives the ``-wal`` and ``-shm`` files it makes beside it the same mode (0600)."""
    if path.exists():
        return
    private_directory(path.parent)
    with contextlib.suppress(FileExistsError):  # another process made it meanwhile
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(descriptor, 0o600)
        os.close(descriptor)


class _DatabaseThread(Executor):
    """The one thread that uses the connection: a daemon, unlike a ThreadPoolExecutor's.

    ``concurrent.futures`` stops its pools' threads before ``atexit`` handlers run, so a store
    left open by a script could not be closed at exit on one of them (a client closes itself
    then, see :class:`~dockyard.client.direct.DirectClient`). A daemon thread with a queue keeps
    working until the store closes it.
    """

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._serve, name="dockyard-sqlite", daemon=True)
        self._thread.start()
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if self._closed:
            raise RuntimeError("the store is closed")
        future: Future[T] = Future()
        self._work.put((future, lambda: fn(*args, **kwargs)))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if not self._closed:
            self._closed = True
            self._work.put(None)
        if wait and self._thread is not threading.current_thread():
            self._thread.join()

    def _serve(self) -> None:
        while (item := self._work.get()) is not None:
            future, call = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as error:
                future.set_exception(error)
