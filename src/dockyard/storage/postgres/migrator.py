"""Numbered SQL migrations for PostgreSQL, applied in order and recorded in ``dockyard_migrations``.

Several processes may start at once against a new database: each migration runs in its own
transaction under a transaction-scoped advisory lock, so exactly one of them applies it and the
others see it done. PostgreSQL's DDL is transactional, so a failed migration leaves nothing behind.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from psycopg import AsyncConnection

__all__ = ["apply_migrations", "available_migrations", "schema_sql"]

#: Advisory lock key (``classid``) under which migrations of a schema are serialised.
MIGRATION_LOCK = 0x0D0C_4A4D
_IDENTITY = {"a": "ALWAYS", "d": "BY DEFAULT"}


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every ``NNNN_name.sql`` shipped with Dockyard, in order."""
    folder = resources.files("dockyard.storage.postgres.migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text()))
    return sorted(found)


async def apply_migrations(conn: AsyncConnection[Any]) -> list[str]:
    """Apply what is missing, each migration in its own transaction; return the names applied.

    ``conn`` must be in autocommit mode (transactions are opened here).
    """
    applied = []
    for version, name, sql in available_migrations():
        async with conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (MIGRATION_LOCK,)
            )
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS dockyard_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cursor = await conn.execute(
                "SELECT 1 FROM dockyard_migrations WHERE version = %s", (version,)
            )
            if await cursor.fetchone() is None:
                await conn.execute(sql.encode())
                await conn.execute(
                    "INSERT INTO dockyard_migrations (version, name) VALUES (%s, %s)",
                    (version, name),
                )
                applied.append(name)
    return applied


async def schema_sql(conn: AsyncConnection[Any]) -> str:
    """The schema as the catalog describes it, in a stable order: what ``schema.sql`` checks in.

    Tables with their columns and constraints, then indexes, as ``CREATE`` statements without the
    schema name (so the same text holds whatever ``search_path`` Dockyard runs in).
    """
    tables = await (
        await conn.execute(
            "SELECT c.oid, c.relname FROM pg_class c"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
            " ORDER BY c.relname"
        )
    ).fetchall()
    parts = []
    for oid, table in tables:
        columns = await (
            await conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
                " pg_get_expr(d.adbin, d.adrelid), a.attidentity"
                " FROM pg_attribute a LEFT JOIN pg_attrdef d"
                " ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
                " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                (oid,),
            )
        ).fetchall()
        lines = []
        for column, kind, not_null, default, identity in columns:
            line = f"    {column} {kind}"
            if identity:
                line += f" GENERATED {_IDENTITY[identity]} AS IDENTITY"
            if not_null:
                line += " NOT NULL"
            if default is not None:
                line += f" DEFAULT {default}"
            lines.append(line)
        constraints = await (
            await conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = %s ORDER BY contype, conname",
                (oid,),
            )
        ).fetchall()
        lines += [f"    CONSTRAINT {name} {definition}" for name, definition in constraints]
        parts.append(f"CREATE TABLE {table} (\n" + ",\n".join(lines) + "\n);\n")
    indexes = await (
        await conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint"
            " WHERE connamespace = current_schema()::regnamespace) ORDER BY tablename, indexname"
        )
    ).fetchall()
    schema = await (await conn.execute("SELECT current_schema()")).fetchone()
    prefix = f"{schema[0]}." if schema else ""
    parts += [f"{row[0].replace(' ON ' + prefix, ' ON ')};\n" for row in indexes]
    return "\n".join(parts)
