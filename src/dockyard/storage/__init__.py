"""The storage port and its backends. :func:`open_storage` picks a backend by URL."""

from __future__ import annotations

from dockyard.storage.port import (
    Capabilities,
    ClaimRequest,
    Heartbeat,
    InsertedJob,
    JobQuery,
    QueueInfo,
    Storage,
    StoredEvent,
    WorkerInfo,
)
from dockyard.storage.urls import open_storage, store_identity

__all__ = [
    "Capabilities",
    "ClaimRequest",
    "Heartbeat",
    "InsertedJob",
    "JobQuery",
    "QueueInfo",
    "Storage",
    "StoredEvent",
    "WorkerInfo",
    "open_storage",
    "store_identity",
]
