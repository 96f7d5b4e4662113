"""Choose a storage backend from a URL: ``sqlite:///path/to.db`` or ``postgresql://…``.

A store URL may carry a password: an error that quotes one quotes
:func:`~dockyard.settings.redacted_url`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from dockyard.errors import ValidationError
from dockyard.settings import redacted_url
from dockyard.storage.ports import Storage

__all__ = ["open_storage", "store_identity"]

_HELP = "use sqlite:///path/to.db or postgresql://user@host:5432/database"


def open_storage(url: str) -> Storage:
    """Open (without migrating) the store at ``url``.

    A PostgreSQL URL is a libpq connection URI; its ``options`` parameter can pick the schema,
    as in ``postgresql://dockyard@db/jobs?options=-csearch_path%3Ddockyard``.
    """
    scheme, sep, rest = url.partition("://")
    if scheme == "sqlite" and sep:
        from dockyard.storage.sqlite import SQLiteStorage

        path = rest[1:] if rest.startswith("/") else rest
        if not path:
            raise ValidationError("url", "sqlite URLs look like sqlite:///path/to/dockyard.db")
        return SQLiteStorage(Path(path))
    if scheme in ("postgresql", "postgres") and sep:
        from dockyard.storage.postgres import PostgresStorage

        return PostgresStorage(url)
    raise ValidationError("url", f"unsupported store URL {redacted_url(url)!r}; {_HELP}")


def store_identity(url: str) -> str:
    """A short name for the store at ``url`` that two processes using it agree on.

    Things a store's workers leave outside it (containers) are labelled with it, so that a
    worker never takes another store's worker for dead. A SQLite path is made absolute first.
    """
    scheme, sep, rest = url.partition("://")
    if scheme == "sqlite" and sep:
        path = rest[1:] if rest.startswith("/") else rest
        url = f"sqlite:///{Path(path).resolve()}"
    return hashlib.sha256(url.encode()).hexdigest()[:16]
