"""Named SQL statements read from ``.sql`` files beside each backend's Python.

Backends keep their SQL out of Python, as procrastinate and River do: each port's statements live
in ``<backend>/sql/<port>.sql``, each introduced by a ``-- name: <name>`` line (the aiosql and
yesql convention), so that a reader finds the SQL of a verb by its name and a DBA can read the
statements as SQL. Comments between a name line and its statement document it and are kept.

Hand-written (30 lines) rather than aiosql: aiosql also generates the call wrappers, and
Dockyard's verbs need their own (batching, retries, guarded writes); only the loading is shared.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from importlib import resources

__all__ = ["Queries"]

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


class Queries(Mapping[str, str]):
    """The statements of one ``.sql`` file by name; a missing name is a KeyError at import."""

    def __init__(self, text: str, origin: str = "<sql>") -> None:
        self._statements: dict[str, str] = {}
        parts = _NAME.split(text)
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            statement = body.strip().rstrip(";").strip()
            if name in self._statements:
                raise ValueError(f"{origin}: {name} is defined twice")
            if not statement:
                raise ValueError(f"{origin}: {name} has no statement")
            self._statements[name] = statement

    @classmethod
    def load(cls, package: str, filename: str) -> Queries:
        """The statements of ``sql/<filename>`` in ``package`` (shipped as package data)."""
        text = resources.files(package).joinpath("sql", filename).read_text("utf-8")
        return cls(text, f"{package}/sql/{filename}")

    def __getitem__(self, name: str) -> str:
        return self._statements[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._statements)

    def __len__(self) -> int:
        return len(self._statements)
