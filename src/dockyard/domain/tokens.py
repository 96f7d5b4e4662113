"""API tokens and roles. A token is shown once; only its SHA-256 is kept.

Tokens are 256 random bits, so a fast hash is enough to make the stored value useless to a reader
of the database (there is nothing to brute-force); a slow password hash would only slow every
request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dockyard.errors import ValidationError

__all__ = ["Permission", "Role", "Token", "generate_secret", "hash_secret", "parse_role"]

SECRET_PREFIX = "dy_"


class Permission(StrEnum):
    READ = "read"
    #: Register definitions, submit, cancel and retry jobs, pause queues.
    OPERATE = "operate"
    #: Manage tokens.
    ADMINISTER = "administer"


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"

    def allows(self, permission: Permission) -> bool:
        return permission in _GRANTS[self]


_GRANTS = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE}),
    Role.VIEWER: frozenset({Permission.READ}),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None


def parse_role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        raise ValidationError("role", "must be admin, operator or viewer") from None


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
