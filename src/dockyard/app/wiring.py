"""The composition root: a store, a log store and executors built from :class:`Settings`.

This is the one module that decides which implementation backs each port: the store named by
``settings.url``, the log directory, and the executors a worker of this process offers. Nothing
below the facade reads the process's environment or working directory; the executors get them
from here, once.
"""

from __future__ import annotations

import os

from dockyard.app.core import Core
from dockyard.domain.clock import Clock, SystemClock
from dockyard.executors import Executor, ExecutorOptions, build_executors
from dockyard.logs import LocalLogStore
from dockyard.settings import Settings
from dockyard.storage import Storage, open_storage, store_identity

__all__ = ["build_core", "open_store"]


async def open_store(settings: Settings) -> Storage:
    """Open the store named by the settings and bring its schema up to date."""
    storage = open_storage(settings.url)
    try:
        await storage.migrate()
    except BaseException:
        await storage.close()
        raise
    return storage


def build_core(settings: Settings, storage: Storage, clock: Clock | None = None) -> Core:
    """One Dockyard's shared parts over an open store."""

    def executors() -> dict[str, Executor]:
        return build_executors(
            ExecutorOptions(
                base_environment=dict(os.environ),
                search_path=(os.getcwd(),),
                store_id=store_identity(settings.url),
                http_allowed_hosts=settings.http_allowed_hosts,
            )
        )

    return Core(
        settings=settings,
        storage=storage,
        clock=clock or SystemClock(),
        logs=LocalLogStore(settings.log_dir),
        executors=executors,
    )
