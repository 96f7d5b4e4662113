"""Streaming a :data:`~dockyard.objects.port.Source` to a file while hashing it.

Both stores write what they are given to a file first (the local store: the temporary file it
renames into place; the S3 store: a spool file that boto3 uploads in parallel parts, and that
lets the SHA-256 travel as metadata set when the upload starts). Blocking reads and writes run
in the store's thread pool; chunks of an async stream are awaited on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterable, Callable, Iterable
from concurrent.futures import Executor
from pathlib import Path
from typing import IO, Any, TypeVar

from dockyard.objects.port import CHUNK_SIZE, Source

__all__ = ["hash_file", "in_thread", "write_source"]

T = TypeVar("T")


async def in_thread(executor: Executor, call: Callable[..., T], *args: Any) -> T:
    """Run a blocking ``call`` in ``executor`` without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(executor, call, *args)


def hash_file(path: Path) -> tuple[int, str]:
    """The file's size and hex SHA-256 (blocking; run it in a thread)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


async def write_source(
    source: Source, target: Path, executor: Executor, *, durable: bool = True
) -> tuple[int, str]:
    """Write ``source`` to the new file ``target``, returning its size and SHA-256; ``durable``:
    flushed to disk before returning (a spool file that is read once and removed needs not be).
    An async stream is read on the event loop, chunk by chunk; everything else in ``executor``."""
    if isinstance(source, str):
        raise TypeError("put() takes a Path for a file, not a str (bytes for content)")
    if isinstance(source, AsyncIterable):
        with _create(target) as out:
            digest, size = hashlib.sha256(), 0
            async for chunk in source:
                digest.update(chunk)
                size += len(chunk)
                await in_thread(executor, out.write, chunk)
            if durable:
                await in_thread(executor, _sync, out)
        return size, digest.hexdigest()
    return await in_thread(executor, _write_sync, source, target, durable)


def _write_sync(source: Source, target: Path, durable: bool) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with _create(target) as out:
        for chunk in _chunks(source):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        if durable:
            _sync(out)
    return size, digest.hexdigest()


def _chunks(source: Source) -> Iterable[bytes]:
    if isinstance(source, os.PathLike):
        with open(source, "rb") as file:
            yield from iter(lambda: file.read(CHUNK_SIZE), b"")
    elif isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source)
    elif hasattr(source, "read"):
        yield from iter(lambda: source.read(CHUNK_SIZE), b"")
    elif isinstance(source, Iterable):
        for chunk in source:
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(f"a stream must yield bytes, not {type(chunk).__name__}")
            yield bytes(chunk)
    else:
        raise TypeError(f"cannot put a {type(source).__name__}")


def _create(target: Path) -> IO[bytes]:
    """A new file for its owner alone (0600): spooled or stored bytes may be private."""
    return os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _sync(file: IO[bytes]) -> None:
    file.flush()
    os.fsync(file.fileno())
