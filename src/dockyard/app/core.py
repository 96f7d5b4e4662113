"""What every resource of the facade shares, and the one place authorization is decided.

A :class:`Core` holds one Dockyard's store, clock, log store and caches; it outlives the views
made of it. Each resource (``definitions``, ``jobs``…) is built over a core *for a caller*: the
token whose request it serves. Every operation that a user can ask for declares the permission
it needs with :func:`requires`, so the CLI, the SDK, the API and the dashboard all inherit the
same rule: an edge authenticates its caller and asks the facade, and the facade refuses what the
caller's role does not allow. Direct access to the store (the CLI or the SDK on the machine that
holds it) acts as :data:`LOCAL_ADMIN`, since whoever can open the store can change it anyway.

The same decorator keeps the audit trail: once an operation that changes something has
succeeded, it records the caller (token id, name and role), the operation (``jobs.cancel``) and
what it changed (named from what the operation returned — a job's id, ``definition:revision``,
a schedule's name — else from its first argument), never a payload, a document or a secret.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from dockyard.domain.clock import Clock
from dockyard.domain.records import Definition
from dockyard.domain.tokens import AuditEntry, Permission, Role, Token
from dockyard.errors import PermissionDeniedError
from dockyard.executors import Executor, HttpExecutor
from dockyard.logs.port import LogStore
from dockyard.settings import Settings
from dockyard.storage import Storage

__all__ = ["LOCAL_ADMIN", "Core", "Resource", "permission_of", "requires", "requires_stream"]

#: The caller of direct access: the owner of the store, who may do everything.
LOCAL_ADMIN = Token(
    id="local",
    name="local (direct access to the store)",
    role=Role.ADMIN,
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)

#: A target longer than this is cut (names are at most 128 characters; ids are shorter).
MAX_TARGET = 200

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R", bound="Resource")


@dataclass(slots=True, kw_only=True)
class Core:
    """One Dockyard's shared parts. Views for different callers share one core."""

    settings: Settings
    storage: Storage
    clock: Clock
    logs: LogStore
    #: Builds the executors a worker of this process offers (see :mod:`dockyard.app.wiring`).
    executors: Callable[[], dict[str, Executor]]
    #: Live tokens by secret hash, each trusted until a monotonic deadline (``authenticate``).
    token_cache: dict[str, tuple[Token, float]] = field(default_factory=dict)
    #: The HTTP client of the rules engines' webhooks, made with the first engine.
    webhooks: HttpExecutor | None = None


class Resource:
    """A resource of the facade over ``core``, acting for ``caller``."""

    __slots__ = ("_caller", "_core")

    def __init__(self, core: Core, caller: Token) -> None:
        self._core = core
        self._caller = caller

    @property
    def caller(self) -> Token:
        return self._caller

    def _authorize(self, permission: Permission) -> None:
        role = self._caller.role
        if not role.allows(permission):
            raise PermissionDeniedError(f"role {role} may not {permission}")

    async def _audit(self, method: str, result: object, args: tuple[object, ...]) -> None:
        """Record that the caller's ``method`` of this resource changed what it names."""
        caller = self._caller
        target = _named(result)
        if target is None and args and isinstance(args[0], str):
            target = args[0]
        entry = AuditEntry(
            at=self._core.clock.now(),
            token_id=caller.id,
            token_name=caller.name,
            role=caller.role,
            operation=f"{type(self).__name__.lower()}.{method}",
            target=None if target is None else target[:MAX_TARGET],
        )
        await self._core.storage.audit.record(entry)


def requires(
    permission: Permission, *, changes: bool | None = None
) -> Callable[
    [Callable[Concatenate[R, P], Awaitable[T]]], Callable[Concatenate[R, P], Awaitable[T]]
]:
    """Mark a coroutine method as an operation that needs ``permission``; check it first.

    An operation ``changes`` the store unless it needs only READ (``changes=False`` says so of a
    read that needs more, such as listing tokens); one that changes it is recorded in the audit
    trail once it has succeeded.
    """
    audited = permission is not Permission.READ if changes is None else changes

    def decorate(
        method: Callable[Concatenate[R, P], Awaitable[T]],
    ) -> Callable[Concatenate[R, P], Awaitable[T]]:
        @functools.wraps(method)
        async def checked(self: R, /, *args: P.args, **kwargs: P.kwargs) -> T:
            self._authorize(permission)
            result = await method(self, *args, **kwargs)
            if audited:
                await self._audit(method.__name__, result, args)
            return result

        checked.__dict__["permission"] = permission
        return checked

    return decorate


def requires_stream(
    permission: Permission,
) -> Callable[
    [Callable[Concatenate[R, P], AsyncGenerator[T, None]]],
    Callable[Concatenate[R, P], AsyncGenerator[T, None]],
]:
    """:func:`requires` for async generator methods (checked when iteration starts)."""

    def decorate(
        method: Callable[Concatenate[R, P], AsyncGenerator[T, None]],
    ) -> Callable[Concatenate[R, P], AsyncGenerator[T, None]]:
        @functools.wraps(method)
        async def checked(self: R, /, *args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[T, None]:
            self._authorize(permission)
            async for item in method(self, *args, **kwargs):
                yield item

        checked.__dict__["permission"] = permission
        return checked

    return decorate


def _named(value: object) -> str | None:
    """What names the record(s) an operation returned: a definition's ``name:revision``, else an
    id (a job, a token, an event), else a name (a schedule, a rule, a queue); for a list, the
    first and how many more. Only records are read, never a plain string (a token's secret is
    returned beside it)."""
    if isinstance(value, list):
        names = [name for name in map(_named, value) if name is not None]
        if len(names) > 1:
            return f"{names[0]} and {len(names) - 1} more"
        return names[0] if names else None
    if isinstance(value, tuple):
        return _named(value[0]) if value else None
    if isinstance(value, Definition):
        return value.ref
    value = getattr(value, "job", value)  # a submission names its job
    for attribute in ("id", "name"):
        found = getattr(value, attribute, None)
        if isinstance(found, str):
            return found
    return None


def permission_of(method: Any) -> Permission | None:
    """The permission an operation declared with :func:`requires`, or None."""
    found = getattr(method, "permission", None)
    return found if isinstance(found, Permission) else None
