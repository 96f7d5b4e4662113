"""SQL that both backends write the same way, given their placeholder style."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dockyard.storage.ports import JobQuery

__all__ = ["UPDATABLE_COLUMNS", "list_jobs_sql"]

#: The job columns a transition may set besides its state (``Transition.updates``).
UPDATABLE_COLUMNS = frozenset(
    {
        "status_reason",
        "not_before",
        "started_at",
        "stopped_at",
        "worker_id",
        "lease_expires_at",
        "exit_code",
        "result",
        "attempts_used",
    }
)

#: ``(column, values) → (condition, args)``: how a backend says "column is one of values".
OneOf = Callable[[str, Sequence[Any]], tuple[str, list[Any]]]


def list_jobs_sql(query: JobQuery, *, mark: str, one_of: OneOf) -> tuple[str, list[Any]]:
    """The jobs ``query`` asks for, newest first (``mark`` is the backend's placeholder)."""
    where: list[str] = []
    args: list[Any] = []
    if query.states:
        condition, values = one_of("state", sorted(query.states))
        where.append(condition)
        args += values
    for column, value in (
        ("queue", query.queue),
        ("definition_name", query.definition_name),
        ("group_key", query.group_key),
    ):
        if value is not None:
            where.append(f"{column} = {mark}")
            args.append(value)
    if query.before is not None:
        where.append(f"seq < (SELECT seq FROM jobs WHERE id = {mark})")
        args.append(query.before)
    sql = "SELECT * FROM jobs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return f"{sql} ORDER BY seq DESC LIMIT {mark}", [*args, query.limit]
