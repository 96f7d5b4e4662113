"""Staging an attempt: a fresh work directory, its inputs fetched in, its outputs uploaded.

The worker calls, per attempt (while the job is STARTING, then after it ends)::

    with work_directory(root, job.id, attempt) as workdir:         # removed afterwards
        await fetch_inputs(spec.inputs, workdir, values=..., objects=stores, http=client)
        ... run the attempt with cwd=workdir (containers: bind-mounted) ...
        records = await upload_outputs(spec.outputs, workdir, succeeded, values=..., objects=stores)

Failures raise :class:`~dockyard.domain.staging.StagingError`, whose ``reason`` the attempt
fails with: ``CannotFetchInput`` (a missing object, an unreachable or refused host, an HTTP
error status, a ``file://`` source without ``allow_files``), ``InputRejected`` (an archive that
breaks a rule, :mod:`dockyard.executors.archives`; an input past ``max_bytes``), and from
outputs :class:`OutputsError`: ``OutputMissing`` (a declared path matched no file, or matched a
link) or ``CannotStoreOutput`` (the store refused) — carrying the records of what *was*
uploaded, so the attempt records them either way.

Sources: ``s3://bucket/key`` through the object store port (a store opened per bucket, the AWS
way: :class:`ObjectStores`); ``http(s)://`` through the egress gate
(:class:`~dockyard.executors.egress.GatedTransport`, as the http executor), streamed to a file
and stopped at ``max_bytes``; ``file:///path`` reads the worker host's files, so it is refused
unless the caller passes ``allow_files=True`` (a worker policy setting should decide that).

Outputs are read with ``O_NOFOLLOW`` and only when no component of their path is a link: a job
(or a container, through its bind mount) could otherwise plant ``report.json -> /etc/shadow``
and have the worker upload the host's file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import unquote, urlsplit

import httpx

from dockyard.domain.staging import (
    CANNOT_FETCH_INPUT,
    CANNOT_STORE_OUTPUT,
    INPUT_REJECTED,
    OUTPUT_MISSING,
    PLACEHOLDER,
    InputSpec,
    OutputRecord,
    OutputSpec,
    StagingError,
    check_rendered_url,
)
from dockyard.errors import NotFoundError, ValidationError
from dockyard.executors.archives import detect_archive, unpack_archive
from dockyard.executors.egress import AddressGate, EgressRefused, GatedTransport
from dockyard.executors.templates import fill_url
from dockyard.objects import ObjectStore, ObjectStoreError, open_object_store
from dockyard.policy import WorkerPolicy

__all__ = [
    "InputRecord",
    "ObjectStores",
    "OutputRecord",
    "OutputsError",
    "fetch_inputs",
    "gated_client",
    "render_url",
    "upload_outputs",
    "work_directory",
]

#: How long fetching one input over HTTP may take, whole (connect, headers, body).
DEFAULT_FETCH_TIMEOUT = 300.0
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class InputRecord:
    """One input as fetched: the URL it came from, its size and SHA-256 (before unpacking)."""

    uri: str
    size: int
    sha256: str


class OutputsError(StagingError):
    """Some outputs were not uploaded; ``uploaded`` holds those that were."""

    def __init__(self, reason: str, message: str, uploaded: list[OutputRecord]) -> None:
        super().__init__(reason, message)
        self.uploaded = uploaded


class ObjectStores:
    """Stores opened on demand, one per ``s3://`` bucket, closed together (:meth:`aclose`)."""

    def __init__(self, *, spool_dir: Path | None = None) -> None:
        self._spool_dir = spool_dir
        self._stores: dict[str, ObjectStore] = {}

    def locate(self, url: str, field: str) -> tuple[ObjectStore, str]:
        """The store holding ``s3://bucket/key`` and the key (unquoted) inside it."""
        parts = urlsplit(url)
        root = f"s3://{parts.netloc}"
        store = self._stores.get(root)
        if store is None:
            store = open_object_store(root, field=field, spool_dir=self._spool_dir)
            self._stores[root] = store
        return store, unquote(parts.path).lstrip("/")

    async def aclose(self) -> None:
        stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            await store.close()


def gated_client(policy: WorkerPolicy | None = None) -> httpx.AsyncClient:
    """An HTTP client whose connections pass the egress gate, like the http executor's: no
    proxy or ``.netrc`` from the environment, uncompressed bodies (``max_bytes`` bounds what is
    written), redirects followed (each connection is gated)."""
    gate = AddressGate.from_policy(policy or WorkerPolicy())
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
    return httpx.AsyncClient(
        transport=GatedTransport(gate, limits=limits),
        follow_redirects=True,
        max_redirects=5,
        trust_env=False,
        headers={"Accept-Encoding": "identity"},
    )


@contextmanager
def work_directory(root: Path, job_id: str, attempt: int) -> Iterator[Path]:
    """A fresh, private (0700) folder under ``root`` for one attempt, removed afterwards, even
    when the job left read-only folders in it."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = Path(tempfile.mkdtemp(prefix=f"{job_id}-{attempt}-", dir=root))
    try:
        yield path
    finally:
        _remove_tree(path)


def _remove_tree(path: Path) -> None:
    def writable(function: Any, name: str, _error: Any) -> None:
        try:
            os.chmod(os.path.dirname(name), 0o700)
            os.chmod(name, 0o700, follow_symlinks=False)
            function(name)
        except OSError:
            pass  # a file a container wrote as another user: left for the operator

    shutil.rmtree(path, onerror=writable)


def render_url(template: str, values: Mapping[str, Any], field: str) -> str:
    """``template`` with its placeholders filled (:func:`fill_url`: each value percent-encoded).
    S3 keys and file paths are then read percent-decoded, so a value may hold spaces or any
    character — but not a ``/`` that would add a path segment (refused, as is ``..``)."""
    url = fill_url(template, values)
    check_rendered_url(url, field)
    if not url.startswith("http"):
        shape = urlsplit(PLACEHOLDER.sub("x", template)).path.split("/")
        segments = unquote(urlsplit(url).path).split("/")
        if len(segments) != len(shape) or ".." in segments:
            raise ValidationError(
                field, f"{url}: a payload value may not hold '/' or be '..' in a key or path"
            )
    return url


# -- inputs -----------------------------------------------------------------------------------


async def fetch_inputs(
    inputs: Sequence[InputSpec],
    workdir: Path,
    *,
    values: Mapping[str, Any],
    objects: ObjectStores,
    http: httpx.AsyncClient | None = None,
    policy: WorkerPolicy | None = None,
    allow_files: bool = False,
    timeout: float = DEFAULT_FETCH_TIMEOUT,
) -> list[InputRecord]:
    """Fetch each input into ``workdir`` (unpacking archives), in order. ``values`` fill the
    placeholders (:func:`dockyard.executors.templates.template_values`); ``http`` is a gated
    client (one is made from ``policy`` when None, and closed). Raises :class:`StagingError`."""
    own_client = http is None and any(item.source.startswith("http") for item in inputs)
    client = gated_client(policy) if own_client else http
    try:
        records = []
        for index, spec in enumerate(inputs):
            records.append(
                await _fetch_one(
                    spec, f"inputs[{index}]", workdir, values, objects, client, allow_files, timeout
                )
            )
        return records
    finally:
        if own_client and client is not None:
            await client.aclose()


async def _fetch_one(
    spec: InputSpec,
    label: str,
    workdir: Path,
    values: Mapping[str, Any],
    objects: ObjectStores,
    client: httpx.AsyncClient | None,
    allow_files: bool,
    timeout: float,
) -> InputRecord:
    try:
        url = render_url(spec.source, values, f"{label}.from")
    except ValidationError as error:
        raise StagingError(CANNOT_FETCH_INPUT, str(error)) from None
    scratch = Path(tempfile.mkdtemp(prefix=".dockyard-fetch-", dir=workdir))
    try:
        download = scratch / "download"
        with download.open("wb") as out:
            counter = _Counter(label, url, spec.limits.max_bytes, out)
            if url.startswith("s3://"):
                await _from_s3(url, label, objects, counter)
            elif url.startswith("file://"):
                await _from_file(url, label, allow_files, counter)
            else:
                await _from_http(url, label, client, timeout, counter)
        record = InputRecord(uri=url, size=counter.size, sha256=counter.digest.hexdigest())
        await asyncio.to_thread(_place_input, spec, label, url, download, workdir)
        return record
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Counter:
    """Writes fetched chunks to a file, hashing them, refusing past ``max_bytes``."""

    def __init__(self, label: str, url: str, max_bytes: int, out: IO[bytes]) -> None:
        self.label, self.url, self.max_bytes, self.out = label, url, max_bytes, out
        self.size = 0
        self.digest = hashlib.sha256()

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise StagingError(
                INPUT_REJECTED,
                f"{self.label}: {self.url} is larger than max_bytes={self.max_bytes} bytes",
            )
        self.digest.update(chunk)
        await asyncio.to_thread(self.out.write, chunk)


async def _from_s3(url: str, label: str, objects: ObjectStores, counter: _Counter) -> None:
    try:
        store, key = objects.locate(url, f"{label}.from")
        async for chunk in store.iter_chunks(key):
            await counter.write(chunk)
    except NotFoundError:
        raise StagingError(CANNOT_FETCH_INPUT, f"{label}: {url}: no such object") from None
    except (ObjectStoreError, ValidationError) as error:
        raise StagingError(CANNOT_FETCH_INPUT, f"{label}: {url}: {error}") from None


async def _from_file(url: str, label: str, allow_files: bool, counter: _Counter) -> None:
    if not allow_files:
        raise StagingError(
            CANNOT_FETCH_INPUT,
            f"{label}: {url}: file:// inputs read the worker's files; this worker does not"
            " allow them",
        )
    path = unquote(urlsplit(url).path)
    if ".." in PurePosixPath(path).parts:
        raise StagingError(CANNOT_FETCH_INPUT, f"{label}: {url}: a path with '..' is refused")
    try:
        with open(path, "rb") as source:
            while chunk := await asyncio.to_thread(source.read, _CHUNK):
                await counter.write(chunk)
    except OSError as error:
        raise StagingError(CANNOT_FETCH_INPUT, f"{label}: {url}: {error.strerror}") from None


async def _from_http(
    url: str, label: str, client: httpx.AsyncClient | None, timeout: float, counter: _Counter
) -> None:
    assert client is not None
    try:
        async with asyncio.timeout(timeout):
            async with client.stream("GET", url, timeout=timeout) as response:
                if response.status_code != 200:
                    raise StagingError(
                        CANNOT_FETCH_INPUT, f"{label}: GET {url}: HTTP {response.status_code}"
                    )
                async for chunk in response.aiter_bytes(_CHUNK):
                    await counter.write(chunk)
    except EgressRefused as error:
        raise StagingError(CANNOT_FETCH_INPUT, f"{label}: GET {url}: {error}") from None
    except TimeoutError:
        raise StagingError(
            CANNOT_FETCH_INPUT, f"{label}: GET {url}: not fetched within {timeout:g} s"
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        name = type(error).__name__
        raise StagingError(CANNOT_FETCH_INPUT, f"{label}: GET {url}: {name}: {error}") from None


def _place_input(spec: InputSpec, label: str, url: str, download: Path, workdir: Path) -> None:
    kind = None if spec.unpack == "none" else detect_archive(download)
    if spec.unpack in ("zip", "tar") and kind != spec.unpack:
        raise StagingError(INPUT_REJECTED, f"{label}: {url} is not a {spec.unpack} archive")
    if kind is not None:
        target = _inside(workdir, spec.to or ".", label)
        unpack_archive(
            download, target, kind=kind, limits=spec.limits, label=label, scratch_in=workdir
        )
        return
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    if not name or name in (".", ".."):
        name = "input"
    to = spec.to
    if to is None or to.endswith("/") or (workdir / to).is_dir():
        to = f"{to or '.'}/{name}"
    target = _inside(workdir, to, label)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        raise StagingError(INPUT_REJECTED, f"{label}: {to!r}: an earlier input put a file there")
    download.rename(target)


def _inside(workdir: Path, relative: str, label: str) -> Path:
    """``workdir / relative``, refused unless it stays inside (no link leads out)."""
    target = workdir / relative
    root = workdir.resolve()
    if not target.resolve().is_relative_to(root):
        raise StagingError(INPUT_REJECTED, f"{label}.to: {relative!r} leads out of the work dir")
    return target


# -- outputs ----------------------------------------------------------------------------------


async def upload_outputs(
    outputs: Sequence[OutputSpec],
    workdir: Path,
    outcome_succeeded: bool,
    *,
    values: Mapping[str, Any],
    objects: ObjectStores,
) -> list[OutputRecord]:
    """Upload the files each output's ``path`` matches (those whose ``when`` fits the outcome)
    and return their records. Call it after the attempt's processes have ended. Raises
    :class:`OutputsError` (with what was uploaded) when a path matched nothing or a link, or a
    store refused a file; every other file is still uploaded."""
    uploaded: list[OutputRecord] = []
    problems: list[str] = []
    reason = OUTPUT_MISSING
    for index, spec in enumerate(outputs):
        if spec.when != "always" and (spec.when == "success") != outcome_succeeded:
            continue
        label = f"outputs[{index}]"
        files, refused = await asyncio.to_thread(_matches, workdir, spec.path)
        problems += [f"{label}.path: {name!r} is a link: not uploaded" for name in refused]
        if not files and not refused:
            problems.append(f"{label}.path: {spec.path!r} matched no file in the work directory")
        try:
            url = render_url(spec.to, values, f"{label}.to")
        except ValidationError as error:
            reason = CANNOT_STORE_OUTPUT
            problems.append(str(error))
            continue
        if not url.endswith("/") and len(files) > 1:
            problems.append(f"{label}.to: {url} names one object but {len(files)} files matched")
            continue
        for relative, shown, path in files:
            try:
                store, key = objects.locate(url, f"{label}.to")
                key = f"{key}{relative}" if url.endswith("/") else key
                info = await store.put(key, _NoFollow(path))
            except (ObjectStoreError, ValidationError, OSError) as error:
                reason = CANNOT_STORE_OUTPUT
                problems.append(f"{label}: {relative!r} not uploaded to {url}: {error}")
                continue
            assert info.sha256 is not None
            uploaded.append(
                OutputRecord(
                    uri=store.uri(key),
                    size=info.size,
                    sha256=info.sha256,
                    path=shown,
                )
            )
    if problems:
        raise OutputsError(reason, "; ".join(problems), uploaded)
    return uploaded


class _NoFollow(os.PathLike[str]):
    """A path the store opens to read; checked again just before (no link, a regular file)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __fspath__(self) -> str:
        info = os.lstat(self._path)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{self._path.name} is no longer a regular file")
        return os.fspath(self._path)


def _matches(workdir: Path, pattern: str) -> tuple[list[tuple[str, str, Path]], list[str]]:
    """The regular files ``pattern`` matches (a matched folder: the files under it), each with
    its key name — relative to the pattern's literal base (``report/*.json`` → ``a.json``), or
    for a literal path to its parent folder — and its path in the work directory; and the
    matches refused as links (a link anywhere on the way)."""
    root = workdir.resolve()
    parts = PurePosixPath(pattern).parts
    literal = []
    for part in parts:
        if set(part) & set("*?["):
            break
        literal.append(part)
    base = root.joinpath(*literal) if len(literal) < len(parts) or not parts else None
    files: list[tuple[str, str, Path]] = []
    refused: list[str] = []
    for match in sorted(root.glob(pattern)) if parts else [root]:  # glob(".") fails on 3.11
        if match.resolve() != match:
            refused.append(match.relative_to(root).as_posix())
            continue
        anchor = base if base is not None else match.parent
        found = [match] if match.is_file() else []
        if match.is_dir():
            for folder, dirs, names in os.walk(match):
                dirs.sort()
                for name in sorted(dirs + names):
                    path = Path(folder, name)
                    if path.is_symlink():
                        refused.append(path.relative_to(root).as_posix())
                    elif path.is_file():
                        found.append(path)
        for path in found:
            files.append(
                (path.relative_to(anchor).as_posix(), path.relative_to(root).as_posix(), path)
            )
    return files, refused
