"""The audit trail as a resource: what was changed, by which token, for admins to read.

The facade writes the trail itself (:func:`dockyard.app.core.requires` records every operation
that changes something once it has succeeded); this resource only reads it, a page at a time.
"""

from __future__ import annotations

import builtins

from dockyard.app.core import Resource, requires
from dockyard.domain.tokens import AuditEntry, Permission
from dockyard.errors import ValidationError
from dockyard.storage.ports import AuditQuery

__all__ = ["MAX_AUDIT_PAGE", "Audit"]

MAX_AUDIT_PAGE = 1000


class Audit(Resource):
    __slots__ = ()

    @requires(Permission.ADMINISTER, changes=False)
    async def list(self, limit: int = 100, before: int | None = None) -> builtins.list[AuditEntry]:
        """The newest entries first; ``before`` is the id of the last entry of the previous
        page."""
        if not 1 <= limit <= MAX_AUDIT_PAGE:
            raise ValidationError("limit", f"must be from 1 to {MAX_AUDIT_PAGE}")
        if before is not None and before < 1:
            raise ValidationError("before", "must be the id of an entry")
        return await self._core.storage.audit.entries(AuditQuery(limit=limit, before=before))
