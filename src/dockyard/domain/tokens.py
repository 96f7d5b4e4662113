"""API tokens, roles and the audit trail. A token is shown once; only its SHA-256 is kept.

Tokens are 256 random bits, so a fast hash is enough to make the stored value useless to a reader
of the database (there is nothing to brute-force); a slow password hash would only slow every
request.

Roles are sets of permissions, not a ladder: a *publisher* may only put events (the credential a
registry or another system keeps in its configuration), and reads nothing; an *operator* runs code
on the workers (what a definition runs is up to whoever registers it).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dockyard.errors import ValidationError

__all__ = [
    "AuditEntry",
    "Permission",
    "Role",
    "Token",
    "expiry",
    "generate_secret",
    "hash_secret",
    "parse_role",
]

SECRET_PREFIX = "dy_"
#: How stale a token's ``last_used_at`` may be: it is written at most once per this interval.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class Permission(StrEnum):
    READ = "read"
    #: Put events on the bus and hand over registry notifications (nothing else).
    PUBLISH = "publish"
    #: Register definitions, submit, cancel and retry jobs, pause queues: run code on workers.
    OPERATE = "operate"
    #: Manage tokens and read the audit trail.
    ADMINISTER = "administer"


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    PUBLISHER = "publisher"
    VIEWER = "viewer"

    def allows(self, permission: Permission) -> bool:
        return permission in _GRANTS[self]


_GRANTS = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset({Permission.READ, Permission.PUBLISH, Permission.OPERATE}),
    Role.PUBLISHER: frozenset({Permission.PUBLISH}),
    Role.VIEWER: frozenset({Permission.READ}),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None
    #: Refused from this moment on; None: never expires.
    expires_at: datetime | None = None
    #: When a request last used it, to within :data:`LAST_USED_RESOLUTION`; None: never used.
    last_used_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def used_long_ago(self, now: datetime) -> bool:
        """True when ``last_used_at`` should be brought up to ``now``."""
        return self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One change made through the facade: who (the token, by id and name) did what to what.

    Payloads, documents and secrets are never recorded, only what names the thing changed.
    """

    #: Its place in the trail (None until stored); later entries have larger ids.
    id: int | None = None
    at: datetime
    token_id: str
    token_name: str
    role: Role
    #: The facade operation, as ``resource.method`` (``jobs.cancel``).
    operation: str
    #: What it changed: a job id, ``definition:revision``, a schedule's name…; None if nothing
    #: names it.
    target: str | None = None


def parse_role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        names = ", ".join(role.value for role in Role)
        raise ValidationError("role", f"must be one of {names}") from None


#: The longest a token may be made to last (a token that must never expire gives no expiry).
MAX_LIFETIME = timedelta(days=3650)


def expiry(
    now: datetime, *, expires_at: datetime | None = None, expires_in: timedelta | None = None
) -> datetime | None:
    """When a token created ``now`` expires: at ``expires_at`` or after ``expires_in`` (not both);
    None when neither is given."""
    if expires_at is not None and expires_in is not None:
        raise ValidationError("expires_at", "give an expiry time or a duration, not both")
    if expires_in is not None:
        if not timedelta(0) < expires_in <= MAX_LIFETIME:
            raise ValidationError(
                "expires_in", f"must be from 1 second to {MAX_LIFETIME.days} days"
            )
        return now + expires_in
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ValidationError("expires_at", "must name its time zone (2026-01-31T00:00:00Z)")
        if expires_at <= now:
            raise ValidationError("expires_at", "must be in the future")
    return expires_at


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
