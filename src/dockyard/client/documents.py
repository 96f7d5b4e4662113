"""API documents back to records, for the HTTP transport: the reading half of what the API's
routes write (queues, workers, tokens, audit entries).

A field a server of an older version does not send reads as its default (a token without
``expires_at`` never expires).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dockyard.app import AuditEntry, QueueInfo, Token, WorkerInfo
from dockyard.domain.records import JobId
from dockyard.domain.tokens import Role

__all__ = ["audit_entry", "moment", "queue_info", "token", "worker_info"]


def moment(text: str | None) -> Any:
    return None if text is None else datetime.fromisoformat(text)


def queue_info(doc: Mapping[str, Any]) -> QueueInfo:
    return QueueInfo(name=doc["name"], paused=doc["paused"], counts=doc["counts"])


def worker_info(doc: Mapping[str, Any]) -> WorkerInfo:
    return WorkerInfo(
        id=doc["id"],
        hostname=doc["hostname"],
        pid=doc["pid"],
        queues=None if doc["queues"] is None else tuple(doc["queues"]),
        concurrency=doc["concurrency"],
        started_at=moment(doc["started_at"]),
        heartbeat_at=moment(doc["heartbeat_at"]),
        stopped_at=moment(doc["stopped_at"]),
        running=tuple(JobId(job_id) for job_id in doc["running"]),
    )


def token(doc: Mapping[str, Any]) -> Token:
    return Token(
        id=doc["id"],
        name=doc["name"],
        role=Role(doc["role"]),
        created_at=moment(doc["created_at"]),
        revoked_at=moment(doc["revoked_at"]),
        expires_at=moment(doc.get("expires_at")),
        last_used_at=moment(doc.get("last_used_at")),
    )


def audit_entry(doc: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        id=doc["id"],
        at=moment(doc["at"]),
        token_id=doc["token_id"],
        token_name=doc["token_name"],
        role=Role(doc["role"]),
        operation=doc["operation"],
        target=doc["target"],
    )
