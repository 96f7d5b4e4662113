"""The object store port: where job inputs, outputs and finished logs live.

Two implementations pass one behavioural suite (``tests/objects/``): a local directory
(:mod:`dockyard.objects.local`, the embedded default under ``<home>/objects``) and S3-compatible
storage (:mod:`dockyard.objects.s3`: AWS S3, MinIO, Ceph, R2…). :func:`dockyard.objects.open_object_store`
picks one by URL.

Every operation streams: nothing holds a whole object in memory. Every object put through the port
carries the SHA-256 of its bytes, computed while they stream, and reads that reach the end of an
object verify it; an object written by another tool (a submission uploaded with ``aws s3 cp``)
has no recorded SHA-256 and is read without that check (S3's own transport checksums still
apply), and the SHA-256 computed while reading it is returned.

Errors (all in Dockyard's one tree, :mod:`dockyard.errors`)::

    NotFoundError
    └── ObjectNotFoundError     no object at that key
    StorageError
    └── ObjectStoreError        the store cannot be reached or read: names the bucket or folder
        └── ChecksumMismatchError   the bytes read are not the bytes written
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from dockyard.errors import NotFoundError, StorageError

__all__ = [
    "CHUNK_SIZE",
    "ChecksumMismatchError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectReader",
    "ObjectStore",
    "ObjectStoreError",
    "Source",
]

#: How much a streaming read or write moves at a time.
CHUNK_SIZE = 1 << 20

#: What :meth:`ObjectStore.put` takes: a file's path, bytes (small objects), a binary file
#: object, or a sync or async stream of byte chunks. A plain ``str`` is refused: it is neither
#: clearly a path nor clearly content.
Source = os.PathLike[str] | bytes | BinaryIO | Iterable[bytes] | AsyncIterable[bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectInfo:
    """What a store knows of one object."""

    #: The key inside the store (without the store's prefix).
    key: str
    size: int
    #: Hex SHA-256 of the content; None where the store has none recorded (an object another
    #: tool wrote, or a listing, which never reads metadata).
    sha256: str | None = None
    #: The server's entity tag (S3); None for the local store.
    etag: str | None = None
    content_type: str | None = None
    last_modified: datetime | None = None


class ObjectNotFoundError(NotFoundError):
    """No object exists at the key (``ref`` is the object's full URL)."""

    def __init__(self, url: str) -> None:
        super().__init__("object", url)


class ObjectStoreError(StorageError):
    """The store could not be reached, read or written (a missing or forbidden bucket, a folder
    that cannot be created); the message names the bucket or folder and what the server said."""


class ChecksumMismatchError(ObjectStoreError):
    """An object's bytes do not have the SHA-256 recorded when it was written."""

    def __init__(self, url: str, expected: str, actual: str) -> None:
        super().__init__(
            f"{url}: SHA-256 mismatch: recorded {expected}, read {actual};"
            " the object is corrupt or was changed by another writer"
        )
        self.url = url
        self.expected = expected
        self.actual = actual


class ObjectStore(Protocol):
    """One bucket and prefix (or one folder) of objects, addressed by validated keys.

    Keys are ``/``-separated relative paths: no empty, ``.`` or ``..`` segment, no leading ``/``,
    no ``.dockyard`` segment (the local store keeps its bookkeeping there), at most 1024 bytes.
    A bad key raises :class:`~dockyard.errors.ValidationError` naming ``key``.
    """

    #: The store's own URL (``s3://bucket/prefix`` or ``file:///folder``).
    url: str

    def uri(self, key: str) -> str:
        """The object's full URL, to record or show (``s3://bucket/prefix/key``)."""
        ...

    async def check(self) -> None:
        """Raise :class:`ObjectStoreError` unless the store can be reached and read."""
        ...

    async def put(self, key: str, source: Source, *, content_type: str | None = None) -> ObjectInfo:
        """Store ``source`` at ``key`` (replacing what is there), streaming; returns its size and
        SHA-256. Readers never see a half-written object."""
        ...

    async def get(self, key: str, dest: Path) -> ObjectInfo:
        """Download the object to ``dest`` (replaced atomically), verifying its SHA-256.
        Raises :class:`ObjectNotFoundError` or :class:`ChecksumMismatchError` (``dest`` is then
        left untouched)."""
        ...

    def iter_chunks(self, key: str, offset: int = 0) -> AsyncIterator[bytes]:
        """The object's bytes from ``offset`` in chunks of at most :data:`CHUNK_SIZE`. Read from
        0 to the end, the SHA-256 is verified after the last chunk (raising
        :class:`ChecksumMismatchError` instead of ending)."""
        ...

    def open_read(self, key: str) -> ObjectReader:
        """A file-like reader of the object (``async with store.open_read(key) as r``)."""
        ...

    async def head(self, key: str) -> ObjectInfo | None:
        """The object's size and SHA-256, or None when there is none at ``key``."""
        ...

    async def delete(self, keys: Iterable[str]) -> None:
        """Delete the objects (in batches: S3 takes 1000 a request); missing keys are no error."""
        ...

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order, page by page (no SHA-256)."""
        ...

    async def presigned_url(self, key: str, expires_in: int = 3600) -> str:
        """A URL that downloads the object without credentials for ``expires_in`` seconds (S3);
        the local store gives a ``file://`` URL, which only its own machine can open: the API
        serves local objects itself."""
        ...

    async def close(self) -> None:
        """Release connections and threads; idempotent."""
        ...


class ObjectReader:
    """An async file-like view of :meth:`ObjectStore.iter_chunks`, with ``read(size)``."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()
        self._done = False

    async def __aenter__(self) -> ObjectReader:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all the rest when negative); empty at the end."""
        while not self._done and (size < 0 or len(self._buffer) < size):
            try:
                self._buffer += await anext(self._chunks)
            except StopAsyncIteration:
                self._done = True
        cut = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        data = bytes(self._buffer[:cut])
        del self._buffer[:cut]
        return data

    async def close(self) -> None:
        closing = getattr(self._chunks, "aclose", None)
        if closing is not None:
            await closing()
