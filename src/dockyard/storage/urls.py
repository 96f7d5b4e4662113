"""Choose a storage backend from a URL: ``sqlite:///path/to.db`` (PostgreSQL joins in a later release)."""

from __future__ import annotations

from pathlib import Path

from dockyard.errors import ValidationError
from dockyard.storage.port import Storage

__all__ = ["open_storage"]


def open_storage(url: str) -> Storage:
    """Open (without migrating) the store at ``url``."""
    scheme, sep, rest = url.partition("://")
    if scheme == "sqlite" and sep:
        from dockyard.storage.sqlite import SQLiteStorage

        path = rest[1:] if rest.startswith("/") else rest
        if not path:
            raise ValidationError("url", "sqlite URLs look like sqlite:///path/to/dockyard.db")
        return SQLiteStorage(Path(path))
    raise ValidationError("url", f"unsupported store URL {url!r}; use sqlite:///path/to.db")
