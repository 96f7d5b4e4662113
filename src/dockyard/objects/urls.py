"""Opening an object store by URL: ``file:///absolute/folder`` or ``s3://bucket/prefix``.

An S3 URL names only the bucket and prefix: the region, the credentials and the endpoint of a
server other than AWS come the AWS way (``AWS_*`` variables, ``~/.aws`` files, roles), read by
boto3 itself, so no secret ever sits in Dockyard's settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dockyard.errors import ValidationError
from dockyard.objects.keys import validate_key
from dockyard.objects.port import ObjectStore

__all__ = ["ObjectLocation", "open_object_store", "parse_object_url"]

#: Bucket names of S3 and of the compatible servers (lenient: the server has the last word).
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectLocation:
    """A parsed store URL: ``scheme`` ``file`` (``path``) or ``s3`` (``bucket`` and ``prefix``)."""

    scheme: str
    path: Path | None = None
    bucket: str | None = None
    prefix: str = ""


def parse_object_url(url: object, field: str = "objects_url") -> ObjectLocation:
    """Parse ``url``; a bad one raises :class:`ValidationError` naming ``field`` and the rule."""
    if not isinstance(url, str) or not url:
        raise ValidationError(field, "must be a URL: file:///absolute/folder or s3://bucket/prefix")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValidationError(field, "must not have a query or a fragment")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValidationError(
                field, f"{url!r}: a file URL names an absolute folder: file:///absolute/folder"
            )
        path = unquote(parts.path)
        if not path.startswith("/") or ".." in path.split("/"):
            raise ValidationError(field, f"{url!r}: must name an absolute folder without '..'")
        return ObjectLocation(scheme="file", path=Path(path))
    if parts.scheme == "s3":
        if "@" in parts.netloc:
            raise ValidationError(
                field, "must not carry credentials: they come from the AWS_* variables or files"
            )
        if not _BUCKET.match(parts.netloc):
            raise ValidationError(field, f"{url!r}: {parts.netloc!r} is not a bucket name")
        prefix = unquote(parts.path).strip("/")
        if prefix:
            validate_key(prefix, field)
        return ObjectLocation(scheme="s3", bucket=parts.netloc, prefix=prefix)
    raise ValidationError(
        field,
        f"unknown scheme {parts.scheme!r} in {url!r}: use file:///absolute/folder or"
        " s3://bucket/prefix",
    )


def open_object_store(
    url: str, *, field: str = "objects_url", spool_dir: Path | None = None
) -> ObjectStore:
    """The store ``url`` names. Nothing is contacted yet: :meth:`ObjectStore.check` does that.
    ``spool_dir`` is where the S3 store spools streams it uploads (the system's temporary
    folder when None)."""
    location = parse_object_url(url, field)
    if location.scheme == "file":
        from dockyard.objects.local import LocalObjectStore

        assert location.path is not None
        return LocalObjectStore(location.path)
    from dockyard.objects.s3 import S3ObjectStore

    assert location.bucket is not None
    return S3ObjectStore(location.bucket, location.prefix, spool_dir=spool_dir)
