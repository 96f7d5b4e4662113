"""Numbered SQL migrations for SQLite, applied in order and recorded in ``dockyard_migrations``."""

from __future__ import annotations

import sqlite3
import time
from importlib import resources

__all__ = ["apply_migrations", "available_migrations", "schema_sql"]


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every ``NNNN_name.sql`` shipped with Dockyard, in order."""
    folder = resources.files("dockyard.storage.sqlite.migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text()))
    return sorted(found)


def apply_migrations(db: sqlite3.Connection) -> list[str]:
    """Apply what is missing, each migration in its own transaction; return the names applied."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS dockyard_migrations"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    applied = []
    for version, name, sql in available_migrations():
        db.execute("BEGIN IMMEDIATE")
        try:
            done = db.execute(
                "SELECT 1 FROM dockyard_migrations WHERE version = ?", (version,)
            ).fetchone()
            if done is None:
                for statement in _statements(sql):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO dockyard_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
                applied.append(name)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration file into statements, a trigger's body kept whole.

    Lines are gathered until SQLite says they make a complete statement
    (:func:`sqlite3.complete_statement`, which knows ``BEGIN … END`` and string literals).
    """
    statements, pending = [], ""
    for line in sql.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements


def schema_sql(db: sqlite3.Connection) -> str:
    """The schema as SQLite stores it, in a stable order: what ``schema.sql`` checks in."""
    rows = db.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        " ORDER BY type DESC, name"
    ).fetchall()
    return "".join(f"{row[0]};\n\n" for row in rows)
