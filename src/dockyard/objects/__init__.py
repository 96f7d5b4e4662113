"""The object store: job inputs, outputs and finished logs (:mod:`dockyard.objects.port`).

``open_object_store(settings.objects_url)`` gives a local folder (``file://``) or S3-compatible
storage (``s3://``); both pass the same behavioural suite (``tests/objects/``).
"""

from __future__ import annotations

from dockyard.objects.keys import validate_key, validate_prefix
from dockyard.objects.port import (
    CHUNK_SIZE,
    ChecksumMismatchError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectReader,
    ObjectStore,
    ObjectStoreError,
    Source,
)
from dockyard.objects.urls import ObjectLocation, open_object_store, parse_object_url

__all__ = [
    "CHUNK_SIZE",
    "ChecksumMismatchError",
    "ObjectInfo",
    "ObjectLocation",
    "ObjectNotFoundError",
    "ObjectReader",
    "ObjectStore",
    "ObjectStoreError",
    "Source",
    "open_object_store",
    "parse_object_url",
    "validate_key",
    "validate_prefix",
]
