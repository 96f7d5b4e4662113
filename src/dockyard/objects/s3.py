"""The S3 store: AWS S3 and S3-compatible servers (MinIO, Ceph, R2…) through boto3.

boto3 rather than aiobotocore or obstore: its transfer manager (s3transfer) does multipart uploads
and ranged parallel downloads with per-part checksums, which aiobotocore lacks (we would write
that by hand), and it reads configuration the AWS way by itself — ``AWS_*`` variables,
``~/.aws/config`` and ``credentials``, profiles, SSO, instance and container roles, and
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` for servers other than AWS (botocore ≥ 1.31),
so Dockyard's settings carry only the bucket and prefix. Its calls block, so they run in a pool of
threads owned by the store; ``bench/objects.py`` measures that the port costs little over boto3
called directly (a hop to a thread is microseconds; the transfers dominate).

Integrity: every object put here carries its whole-content SHA-256 as the metadata ``sha256``,
set when the upload starts — so a stream is first spooled to a temporary file while it is
hashed (memory stays bounded; a file's path is hashed in place, then uploaded). The server checks
it too: an object below the multipart size goes up in one request carrying that SHA-256
(``ChecksumSHA256``), a larger one in parts sent with ``ChecksumAlgorithm=SHA256``, each part
checked as it arrives. Below that size a get is one streamed GET, hashed as it arrives; above it,
boto3's ranged parallel download, then one pass over the file. Reads compare the
SHA-256 of what arrived with the metadata; an object without it (written by another tool) is
checked by S3's own response checksums only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dockyard.objects.keys import validate_key, validate_prefix
from dockyard.objects.port import (
    CHUNK_SIZE,
    ChecksumMismatchError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectReader,
    ObjectStoreError,
    Source,
)
from dockyard.objects.streams import hash_file, in_thread, write_source

__all__ = ["S3ObjectStore"]

#: Objects above this size go up in parts of this size, several at a time.
MULTIPART_BYTES = 8 << 20
#: Parts in flight at once per transfer.
TRANSFER_CONCURRENCY = 8
#: S3's DeleteObjects takes at most this many keys a request.
DELETE_BATCH = 1000
_METADATA_SHA256 = "sha256"
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3ObjectStore:
    """Objects under ``prefix`` in ``bucket``; see the module's docstring."""

    def __init__(self, bucket: str, prefix: str = "", *, spool_dir: Path | None = None) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._spool_dir = spool_dir
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="dockyard-s3")
        self._client: Any = None
        self._transfer: Any = None
        self._opening = asyncio.Lock()
        self._bucket_seen = False

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    async def check(self) -> None:
        client = await self._connect()
        await self._call(client.head_bucket, Bucket=self.bucket)
        self._bucket_seen = True

    async def put(self, key: str, source: Source, *, content_type: str | None = None) -> ObjectInfo:
        full = self._key(key)
        client = await self._connect()
        if isinstance(source, os.PathLike):
            size, sha256 = await in_thread(self._executor, hash_file, Path(source))
            await self._upload(client, Path(source), size, full, sha256, content_type)
            return ObjectInfo(key=key, size=size, sha256=sha256, content_type=content_type)
        spool = Path(self._spool_dir or tempfile.gettempdir()) / f"dockyard-{uuid.uuid4().hex}"
        try:
            size, sha256 = await write_source(source, spool, self._executor, durable=False)
            await self._upload(client, spool, size, full, sha256, content_type)
        finally:
            spool.unlink(missing_ok=True)
        return ObjectInfo(key=key, size=size, sha256=sha256, content_type=content_type)

    async def get(self, key: str, dest: Path) -> ObjectInfo:
        info = await self.head(key)
        if info is None:
            raise ObjectNotFoundError(self.uri(key))
        dest = Path(dest)
        await in_thread(self._executor, lambda: dest.parent.mkdir(parents=True, exist_ok=True))
        temporary = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        full = self._key(key)
        try:
            if info.size < MULTIPART_BYTES:  # one request, hashed as it streams
                size, sha256 = await self._download_small(full, info.etag, temporary)
            else:  # parallel ranged requests, then hashed from the page cache
                await self._call(
                    self._transfer.download_file,
                    self.bucket,
                    full,
                    str(temporary),
                    object_key=full,
                )
                size, sha256 = await in_thread(self._executor, hash_file, temporary)
            if info.sha256 is not None and sha256 != info.sha256:
                raise ChecksumMismatchError(self.uri(key), info.sha256, sha256)
            await in_thread(self._executor, os.replace, temporary, dest)
        finally:
            temporary.unlink(missing_ok=True)
        return ObjectInfo(
            key=key, size=size, sha256=sha256, etag=info.etag, content_type=info.content_type
        )

    async def head(self, key: str) -> ObjectInfo | None:
        full = self._key(key)
        client = await self._connect()
        try:
            answer = await self._call(client.head_object, Bucket=self.bucket, Key=full)
        except ObjectNotFoundError:
            if not self._bucket_seen:
                await self.check()  # a missing bucket answers HEAD with a bare 404 too
            return None
        self._bucket_seen = True
        return _info(key, answer)

    async def iter_chunks(self, key: str, offset: int = 0) -> AsyncIterator[bytes]:
        full = self._key(key)
        client = await self._connect()
        ranged = {"Range": f"bytes={offset}-"} if offset > 0 else {}
        try:
            answer = await self._call(client.get_object, Bucket=self.bucket, Key=full, **ranged)
        except ObjectStoreError as error:
            if "InvalidRange" in str(error):
                return  # offset at or past the end: nothing more to read
            raise
        expected = answer.get("Metadata", {}).get(_METADATA_SHA256) if offset <= 0 else None
        digest = hashlib.sha256()
        body = answer["Body"]
        try:
            while chunk := await in_thread(self._executor, body.read, CHUNK_SIZE):
                digest.update(chunk)
                yield chunk
        finally:
            body.close()
        if expected is not None and digest.hexdigest() != expected:
            raise ChecksumMismatchError(self.uri(key), expected, digest.hexdigest())

    def open_read(self, key: str) -> ObjectReader:
        return ObjectReader(self.iter_chunks(key))

    async def delete(self, keys: Iterable[str]) -> None:
        full = [self._key(key) for key in keys]
        client = await self._connect()
        for start in range(0, len(full), DELETE_BATCH):
            batch = [{"Key": key} for key in full[start : start + DELETE_BATCH]]
            answer = await self._call(
                client.delete_objects, Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if errors := answer.get("Errors"):
                first = errors[0]
                raise ObjectStoreError(
                    f"s3://{self.bucket}/{first.get('Key')}: not deleted: {first.get('Code')}"
                    f" ({first.get('Message')}), and {len(errors) - 1} more"
                )

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        client = await self._connect()
        pages = iter(
            client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
        )
        while page := await self._call(next, pages, None):
            for item in page.get("Contents", ()):
                yield ObjectInfo(
                    key=item["Key"][len(self.prefix) :],
                    size=item["Size"],
                    etag=item.get("ETag", "").strip('"') or None,
                    last_modified=item.get("LastModified"),
                )

    async def presigned_url(self, key: str, expires_in: int = 3600) -> str:
        client = await self._connect()
        url: str = await self._call(
            client.generate_presigned_url,
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=expires_in,
        )
        return url

    async def close(self) -> None:
        if self._client is not None:
            self._transfer.__exit__(None, None, None)  # shuts its thread pools down
            self._client.close()
            self._client = self._transfer = None
        self._executor.shutdown(wait=False)

    # -- helpers -----------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    async def _connect(self) -> Any:
        """The boto3 client, made on first use (making one reads files: it runs in a thread)."""
        async with self._opening:
            if self._client is None:
                self._client, self._transfer = await in_thread(self._executor, _make_client)
        return self._client

    async def _download_small(self, key: str, etag: str | None, target: Path) -> tuple[int, str]:
        """GET ``key`` (the version ``head`` saw, when it gave an ETag) into ``target``."""
        client = await self._connect()
        match = {"IfMatch": f'"{etag}"'} if etag else {}
        answer = await self._call(client.get_object, Bucket=self.bucket, Key=key, **match)
        return await in_thread(self._executor, _save, answer["Body"], target)

    async def _upload(
        self, client: Any, path: Path, size: int, key: str, sha256: str, content_type: str | None
    ) -> None:
        """Upload the file at ``path``: in one request below the multipart size, with the
        SHA-256 we computed for the server to check; else in parts, each checked by its own."""
        extra: dict[str, Any] = {"Metadata": {_METADATA_SHA256: sha256}}
        if content_type:
            extra["ContentType"] = content_type
        if size < MULTIPART_BYTES:
            checksum = base64.b64encode(bytes.fromhex(sha256)).decode()

            def put_object() -> Any:
                with path.open("rb") as body:
                    return client.put_object(
                        Bucket=self.bucket, Key=key, Body=body, ChecksumSHA256=checksum, **extra
                    )

            await self._call(put_object, object_key=key)
            return
        extra["ChecksumAlgorithm"] = "SHA256"
        await self._call(
            self._transfer.upload_file,
            str(path),
            self.bucket,
            key,
            extra_args=extra,
            object_key=key,
        )

    async def _call(
        self, call: Any, *args: Any, object_key: str | None = None, **kwargs: Any
    ) -> Any:
        """``call`` in a thread, its AWS errors turned into Dockyard's (``object_key``, or the
        ``Key`` argument, names the object a "not found" is about; none: the bucket's)."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await in_thread(self._executor, lambda: call(*args, **kwargs))
        except ClientError as error:
            raise self._translate(error, object_key or kwargs.get("Key")) from None
        except S3UploadFailedError as error:  # the transfer manager wraps the server's answer
            cause = error.__cause__ or error.__context__
            if isinstance(cause, ClientError):
                raise self._translate(cause, object_key) from None
            raise ObjectStoreError(f"s3://{self.bucket}/{object_key}: {error}") from None
        except BotoCoreError as error:
            raise ObjectStoreError(
                f"the bucket {self.bucket!r} cannot be reached: {error}"
            ) from None

    def _translate(self, error: Any, key: str | None) -> Exception:
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return ObjectStoreError(f"the bucket {self.bucket!r} does not exist")
        if code in ("AccessDenied", "403", "Forbidden") or status == 403:
            return ObjectStoreError(
                f"the bucket {self.bucket!r} cannot be read: access denied (check the AWS_*"
                " credentials and the bucket's policy)"
            )
        if code in _MISSING:
            if key is None:
                return ObjectStoreError(f"the bucket {self.bucket!r} does not exist")
            return ObjectNotFoundError(f"s3://{self.bucket}/{key}")
        if code == "PreconditionFailed":
            return ObjectStoreError(f"s3://{self.bucket}/{key}: changed while it was read")
        message = details.get("Message") or error
        return ObjectStoreError(f"the bucket {self.bucket!r} answered {code}: {message}")


def _make_client() -> tuple[Any, Any]:
    import boto3
    from boto3.s3.transfer import S3Transfer, TransferConfig
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",  # presigned URLs too (S3 refuses SigV2 in newer regions)
        max_pool_connections=32,
        retries={"mode": "standard"},
    )
    client = boto3.session.Session().client("s3", config=config)
    transfer = S3Transfer(
        client,
        TransferConfig(
            multipart_threshold=MULTIPART_BYTES,
            multipart_chunksize=MULTIPART_BYTES,
            max_concurrency=TRANSFER_CONCURRENCY,
        ),
    )
    return client, transfer


def _save(body: Any, target: Path) -> tuple[int, str]:
    """Write a response body to the new file ``target``; its size and SHA-256 (blocking)."""
    digest, size = hashlib.sha256(), 0
    try:
        with target.open("xb") as out:
            while chunk := body.read(CHUNK_SIZE):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    finally:
        body.close()
    return size, digest.hexdigest()


def _info(key: str, answer: dict[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=answer["ContentLength"],
        sha256=answer.get("Metadata", {}).get(_METADATA_SHA256),
        etag=answer.get("ETag", "").strip('"') or None,
        content_type=answer.get("ContentType"),
        last_modified=answer.get("LastModified"),
    )
