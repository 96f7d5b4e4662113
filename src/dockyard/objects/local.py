"""The local directory store: objects are plain files under one folder (``<home>/objects``).

An object ``logs/j1/1.log`` is the file ``<root>/logs/j1/1.log``, so an operator can read it with
``cat``; its SHA-256, size and content type are in ``<root>/.dockyard/meta/<key>.json``. A write
goes to ``<root>/.dockyard/tmp`` first and is renamed into place (atomic on one file system), so
readers see the old object or the new one, never a part. Every path is resolved and checked to
stay inside the root, so neither a key nor a symbolic link planted in the folder makes the store
touch a file outside it. The same folder cannot hold both an object ``a`` and an object ``a/b``
(S3 can): such a put raises :class:`ObjectStoreError`.

Written by hand, small: the standard library's files and ``os.replace`` are all it needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from dockyard.errors import ValidationError
from dockyard.objects.keys import RESERVED_SEGMENT, validate_key, validate_prefix
from dockyard.objects.port import (
    CHUNK_SIZE,
    ChecksumMismatchError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectReader,
    ObjectStoreError,
    Source,
)
from dockyard.objects.streams import in_thread, write_source
from dockyard.settings import private_directory

__all__ = ["LocalObjectStore"]


class LocalObjectStore:
    """Objects as files under ``root``; see the module's docstring."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.url = self.root.as_uri()
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dockyard-objects")
        self._ready = False

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    async def check(self) -> None:
        await in_thread(self._executor, self._ensure_root)
        self._ready = True

    async def _prepare(self) -> None:
        """Make the folder on first use, so that an unusable one fails every operation (as a
        missing bucket does on S3) rather than looking empty."""
        if not self._ready:
            await self.check()

    async def put(self, key: str, source: Source, *, content_type: str | None = None) -> ObjectInfo:
        target = self._path(key)
        await self._prepare()
        temporary = self._temporary()
        try:
            size, sha256 = await write_source(source, temporary, self._executor)
            meta = {"size": size, "sha256": sha256, "content_type": content_type}
            await in_thread(self._executor, self._commit, key, target, temporary, meta)
        finally:
            temporary.unlink(missing_ok=True)
        return ObjectInfo(key=key, size=size, sha256=sha256, content_type=content_type)

    async def get(self, key: str, dest: Path) -> ObjectInfo:
        source = self._path(key)
        await self._prepare()
        return await in_thread(self._executor, self._get, key, source, Path(dest))

    async def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        await self._prepare()
        return await in_thread(self._executor, self._head, key, path)

    async def iter_chunks(self, key: str, offset: int = 0) -> AsyncIterator[bytes]:
        path = self._path(key)
        info = await self.head(key)
        if info is None:
            raise ObjectNotFoundError(self.uri(key))
        file = await in_thread(self._executor, _open_binary, path)
        try:
            verify = hashlib.sha256() if offset == 0 and info.sha256 else None
            await in_thread(self._executor, file.seek, max(offset, 0))
            while chunk := await in_thread(self._executor, file.read, CHUNK_SIZE):
                if verify is not None:
                    verify.update(chunk)
                yield chunk
            if verify is not None and info.sha256 and verify.hexdigest() != info.sha256:
                raise ChecksumMismatchError(self.uri(key), info.sha256, verify.hexdigest())
        finally:
            file.close()

    def open_read(self, key: str) -> ObjectReader:
        return ObjectReader(self.iter_chunks(key))

    async def delete(self, keys: Iterable[str]) -> None:
        paths = [(self._path(key), self._meta_path(key)) for key in keys]
        await self._prepare()
        await in_thread(self._executor, self._delete, paths)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        await self._prepare()
        walk = _walk(self.root, "", prefix)
        while page := await in_thread(self._executor, _take, walk, 1000):
            for info in page:
                yield info

    async def presigned_url(self, key: str, expires_in: int = 3600) -> str:
        return self.uri(key)

    async def close(self) -> None:
        self._executor.shutdown(wait=False)

    # -- blocking halves, run in the store's threads ---------------------------------------------

    def _path(self, key: str) -> Path:
        validate_key(key)
        path = self.root / key
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise ValidationError("key", f"{key!r} resolves outside the store's folder")
        return path

    def _meta_path(self, key: str) -> Path:
        return self.root / RESERVED_SEGMENT / "meta" / f"{key}.json"

    def _temporary(self) -> Path:
        return self.root / RESERVED_SEGMENT / "tmp" / uuid.uuid4().hex

    def _ensure_root(self) -> None:
        try:
            private_directory(self.root / RESERVED_SEGMENT / "tmp")
            private_directory(self.root / RESERVED_SEGMENT / "meta")
        except OSError as error:
            raise ObjectStoreError(f"the folder {self.root} cannot be used: {error}") from None

    def _commit(self, key: str, target: Path, temporary: Path, meta: dict[str, object]) -> None:
        meta_path = self._meta_path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            meta_path.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                raise ObjectStoreError(f"{self.uri(key)}: a folder of objects is in the way")
            meta_temporary = self._temporary()
            meta_temporary.write_text(json.dumps(meta))
            os.replace(temporary, target)
            os.replace(meta_temporary, meta_path)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise ObjectStoreError(
                f"{self.uri(key)}: an object is in the way of this key's folder"
            ) from None

    def _head(self, key: str, path: Path) -> ObjectInfo | None:
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        meta = _read_meta(self._meta_path(key))
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            sha256=meta.get("sha256"),
            content_type=meta.get("content_type"),
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
        )

    def _get(self, key: str, source: Path, dest: Path) -> ObjectInfo:
        info = self._head(key, source)
        if info is None:
            raise ObjectNotFoundError(self.uri(key))
        dest.parent.mkdir(parents=True, exist_ok=True)
        temporary = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            size, sha256 = _copy_hashing(source, temporary)
            if info.sha256 is not None and sha256 != info.sha256:
                raise ChecksumMismatchError(self.uri(key), info.sha256, sha256)
            os.replace(temporary, dest)
        finally:
            temporary.unlink(missing_ok=True)
        return ObjectInfo(key=key, size=size, sha256=sha256, content_type=info.content_type)

    def _delete(self, paths: Sequence[tuple[Path, Path]]) -> None:
        for path, meta in paths:
            for file in (path, meta):
                try:
                    file.unlink()
                except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    continue
                _prune_empty(file.parent, self.root)


def _open_binary(path: Path) -> BinaryIO:
    return path.open("rb")


def _copy_hashing(source: Path, target: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as src, target.open("xb") as out:
        while chunk := src.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return size, digest.hexdigest()


def _read_meta(path: Path) -> dict[str, str]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _prune_empty(folder: Path, root: Path) -> None:
    """Remove ``folder`` and its parents while they are empty, up to (not including) ``root``
    and its bookkeeping folders."""
    keep = {root, root / RESERVED_SEGMENT, root / RESERVED_SEGMENT / "meta"}
    while folder not in keep and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _walk(folder: Path, base: str, prefix: str) -> Iterator[ObjectInfo]:
    """Files under ``folder`` whose key starts with ``prefix``, in key order: a folder sorts as
    its name plus ``/``, which is where its keys fall among its siblings' (S3's order)."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    named = sorted(
        (
            (entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name, entry)
            for entry in entries
            if entry.name != RESERVED_SEGMENT
        ),
        key=lambda pair: pair[0],
    )
    for name, entry in named:
        key = base + name
        if name.endswith("/"):
            if key.startswith(prefix) or prefix.startswith(key):
                yield from _walk(Path(entry.path), key, prefix)
        elif key.startswith(prefix) and entry.is_file(follow_symlinks=False):
            stat = entry.stat(follow_symlinks=False)
            yield ObjectInfo(
                key=key,
                size=stat.st_size,
                last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            )


def _take(items: Iterator[ObjectInfo], count: int) -> list[ObjectInfo]:
    page = []
    for item in items:
        page.append(item)
        if len(page) == count:
            break
    return page
