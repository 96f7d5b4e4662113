"""The facade: :class:`Dockyard`, the one thing the CLI, the API, the SDK and the dashboard call.

A Dockyard is composed of one resource per concern — ``definitions``, ``jobs``, ``logs``,
``schedules``, ``events``, ``rules``, ``tokens``, ``audit``, ``queues`` — each in its own
module of this package, all acting for one caller (see :mod:`dockyard.app.core`).
:meth:`Dockyard.open` acts as the owner of the store; an API server authenticates each request
and asks :meth:`Dockyard.acting_as` for a view acting for that token, so every edge gets the
same authorization. The runtime services a process runs (a worker, the scheduler, the rules engine)
are built here too, over the same store.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

from dockyard.app.audit import Audit
from dockyard.app.core import LOCAL_ADMIN, Core
from dockyard.app.definitions import Definitions
from dockyard.app.events import Events
from dockyard.app.jobs import Jobs
from dockyard.app.logs import Logs
from dockyard.app.queues import Queues
from dockyard.app.rules import Rules
from dockyard.app.schedules import Schedules
from dockyard.app.tokens import Tokens, authenticate, ensure_admin_token
from dockyard.app.wiring import build_core, open_store, webhook_caller
from dockyard.domain.clock import Clock
from dockyard.domain.definitions import check_name
from dockyard.domain.tokens import Token
from dockyard.errors import ValidationError
from dockyard.logs.port import LogStore
from dockyard.policy import ALL_EXECUTORS
from dockyard.runtime import (
    Maintenance,
    MaintenanceConfig,
    RulesConfig,
    RulesEngine,
    Scheduler,
    SchedulerConfig,
    Worker,
    WorkerConfig,
)
from dockyard.settings import Settings
from dockyard.storage import Storage, store_identity

__all__ = ["Dockyard", "upgrade_store"]


async def upgrade_store(settings: Settings) -> list[str]:
    """Apply the store's missing migrations (``dockyard db upgrade``); return their names."""
    from dockyard.storage import open_storage

    storage = open_storage(settings.url)
    try:
        return await storage.migrate()
    finally:
        await storage.close()


class Dockyard:
    """One Dockyard, acting for one caller."""

    def __init__(self, core: Core, caller: Token = LOCAL_ADMIN) -> None:
        self._core = core
        self.caller = caller
        self.definitions = Definitions(core, caller)
        self.jobs = Jobs(core, caller)
        self.logs = Logs(core, caller)
        self.schedules = Schedules(core, caller)
        self.events = Events(core, caller)
        self.rules = Rules(core, caller)
        self.tokens = Tokens(core, caller)
        self.audit = Audit(core, caller)
        self.queues = Queues(core, caller)

    @classmethod
    async def open(cls, settings: Settings, *, clock: Clock | None = None) -> Dockyard:
        """Open the store named by the settings, bring its schema up to date, and act as its
        owner (the admin role)."""
        return cls(build_core(settings, await open_store(settings), clock))

    def acting_as(self, caller: Token) -> Dockyard:
        """The same Dockyard acting for ``caller``: its role decides what it may do."""
        return Dockyard(self._core, caller)

    async def authenticate(self, secret: str | None) -> Token:
        """The live token whose secret this is; AuthenticationError otherwise."""
        return await authenticate(self._core, secret)

    async def ensure_admin_token(self, server_url: str | None = None) -> str | None:
        """On first start, create an admin token in ``<home>/token`` (mode 0600); return its
        secret, or None when tokens already exist. ``server_url`` (the API server starting)
        is the one server the CLI and the SDK will send the file's token to."""
        return await ensure_admin_token(self._core, server_url)

    async def check_store(self) -> None:
        """Raise unless the store answers (the API's readiness check; no caller needed)."""
        await self._core.storage.queues.queues()

    async def close(self) -> None:
        webhooks = self._core.webhooks
        if webhooks is not None:
            await webhooks.aclose()
        await self._core.storage.close()

    @property
    def settings(self) -> Settings:
        return self._core.settings

    @property
    def storage(self) -> Storage:
        """The store, for the runtime services and for tests that look underneath."""
        return self._core.storage

    @property
    def log_store(self) -> LogStore:
        """Where attempts' logs are kept (the runtime services write and prune them)."""
        return self._core.logs

    @property
    def clock(self) -> Clock:
        return self._core.clock

    @property
    def store_id(self) -> str:
        """The store's short name, on the labels of what its workers start outside it."""
        return store_identity(self._core.settings.url)

    # -- the services a process runs ------------------------------------------------------------

    def worker(self, config: WorkerConfig, *, rng: random.Random | None = None) -> Worker:
        """A worker with the executors this process offers, and maintenance beside it.

        It offers ``config.executors``, else the settings' policy (``DOCKYARD_EXECUTORS``), and
        claims only jobs of those kinds (see ``Worker.executors``).
        """
        if config.concurrency < 1:
            raise ValidationError("concurrency", "must be at least 1")
        if config.queues is not None:
            for queue in config.queues:
                check_name(queue, "queues")
        core = self._core
        offered = core.settings.policy.executors if config.executors is None else config.executors
        return Worker(
            storage=core.storage,
            executors=core.executors(),
            logs=core.logs,
            clock=core.clock,
            config=replace(config, executors=_offered(offered)),
            rng=rng,
            maintenance=self.maintenance(rng=rng),
        )

    def maintenance(self, *, rng: random.Random | None = None) -> Maintenance:
        """The leader-elected maintenance service (every worker runs one beside it)."""
        core = self._core
        config = MaintenanceConfig(retention=timedelta(days=core.settings.retention_days))
        return Maintenance(
            storage=core.storage, logs=core.logs, clock=core.clock, config=config, rng=rng
        )

    def scheduler(
        self, config: SchedulerConfig | None = None, *, rng: random.Random | None = None
    ) -> Scheduler:
        """The leader-elected scheduler (``dockyard up`` and ``dockyard scheduler`` run one)."""
        core = self._core
        return Scheduler(storage=core.storage, clock=core.clock, config=config, rng=rng)

    def rules_engine(
        self, config: RulesConfig | None = None, *, rng: random.Random | None = None
    ) -> RulesEngine:
        """The leader-elected rules engine (``dockyard up`` and ``dockyard scheduler`` run one)."""
        core = self._core
        if core.webhooks is None:
            core.webhooks = webhook_caller(core.settings)
        return RulesEngine(
            storage=core.storage, clock=core.clock, http=core.webhooks, config=config, rng=rng
        )


def _offered(kinds: tuple[str, ...]) -> tuple[str, ...]:
    """The executor kinds a worker offers, each once; an unknown or no kind is refused."""
    for kind in kinds:
        if kind not in ALL_EXECUTORS:
            known = ", ".join(ALL_EXECUTORS)
            raise ValidationError("executors", f"{kind!r} is not an executor kind ({known})")
    if not kinds:
        raise ValidationError("executors", f"name at least one of {', '.join(ALL_EXECUTORS)}")
    return tuple(dict.fromkeys(kinds))
