"""The ``/v1/audit`` route: the audit trail, newest first, for admins.

Every change made through the facade is an entry — the token (id, name, role) that made it, the
operation and what it changed — never a payload or a secret. Pages go back in time: pass an
answer's ``next_cursor`` as ``?before=``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dockyard.api.auth import allowed
from dockyard.api.routes.dependencies import App
from dockyard.app import Audit
from dockyard.app.audit import MAX_AUDIT_PAGE
from dockyard.domain.documents import audit_entry_document

__all__ = ["router"]

router = APIRouter()


class AuditEntryOut(BaseModel):
    id: int
    at: str
    token_id: str = Field(description="`local` for direct access to the store")
    token_name: str
    role: str
    operation: str = Field(description="The facade operation, as resource.method")
    target: str | None = Field(description="What it changed: a job id, NAME:REVISION, a name…")


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_cursor: int | None = Field(description="Pass as ?before= for the next (older) page")


@router.get("/audit", response_model=AuditPage, dependencies=[allowed(Audit.list)])
async def list_audit(
    app: App,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 100,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    """The audit trail, newest first (admins only)."""
    entries = await app.audit.list(limit=limit, before=before)
    return {
        "entries": [audit_entry_document(entry) for entry in entries],
        "next_cursor": entries[-1].id if len(entries) == limit else None,
    }
