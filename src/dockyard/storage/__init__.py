"""The storage ports and their backends. :func:`open_storage` picks a backend by URL."""

from __future__ import annotations

from dockyard.storage.ports import (
    Capabilities,
    ClaimRequest,
    Fire,
    FireResult,
    Heartbeat,
    InsertedJob,
    InvocationUpdate,
    JobQuery,
    NewInvocation,
    QueueInfo,
    Storage,
    StoredEvent,
    WorkerInfo,
)
from dockyard.storage.urls import open_storage, store_identity

__all__ = [
    "Capabilities",
    "ClaimRequest",
    "Fire",
    "FireResult",
    "Heartbeat",
    "InsertedJob",
    "InvocationUpdate",
    "JobQuery",
    "NewInvocation",
    "QueueInfo",
    "Storage",
    "StoredEvent",
    "WorkerInfo",
    "open_storage",
    "store_identity",
]
