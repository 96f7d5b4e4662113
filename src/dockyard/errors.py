"""The one exception tree of Dockyard.

Every error a user can cause or meet derives from :class:`DockyardError`, so that the CLI, the API
and SDK callers can catch one class::

    DockyardError
    ├── ValidationError        bad input: names the field and the rule; nothing was written
    ├── NotFoundError          an unknown definition, revision or job
    ├── ConflictError          the request is valid but the current state forbids it
    ├── AuthenticationError    no token, or a token that is unknown or revoked (HTTP 401)
    ├── PermissionDeniedError  the token's role does not allow the operation (HTTP 403)
    └── StorageError           the store cannot be opened, migrated or reached

This module imports nothing from Dockyard, so every layer may raise these errors.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "DockyardError",
    "NotFoundError",
    "PermissionDeniedError",
    "StorageError",
    "ValidationError",
]


class DockyardError(Exception):
    """Base class of every error Dockyard raises on purpose."""


class ValidationError(DockyardError):
    """Input broke a rule; ``field`` names where, ``rule`` says what was expected."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class NotFoundError(DockyardError):
    """The named definition, revision or job does not exist."""

    def __init__(self, kind: str, ref: str) -> None:
        super().__init__(f"{kind} not found: {ref}")
        self.kind = kind
        self.ref = ref


class ConflictError(DockyardError):
    """The request is well formed, but the object's current state does not allow it."""


class AuthenticationError(DockyardError):
    """The request carried no token, or one that is unknown or revoked."""


class PermissionDeniedError(DockyardError):
    """The token is valid, but its role does not allow this operation."""


class StorageError(DockyardError):
    """The store could not be opened, migrated or reached."""
