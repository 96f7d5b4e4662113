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
from dockyard.executors.environment import (
    credential_environment,
    engine_environment,
    job_environment,
)
from dockyard.executors.http import HttpExecutor
from dockyard.logs import LocalLogStore
from dockyard.policy import SIGNING_CREDENTIAL_ENV, WorkerPolicy
from dockyard.settings import Settings
from dockyard.storage import Storage, open_storage, store_identity

__all__ = ["build_core", "open_store", "webhook_caller"]


async def open_store(settings: Settings) -> Storage:
    """Open the store named by the settings and bring its schema up to date."""
    storage = open_storage(settings.url)
    try:
        await storage.migrate()
    except BaseException:
        await storage.close()
        raise
    return storage


def webhook_caller(settings: Settings) -> HttpExecutor:
    """What rule webhooks are sent with: the http executor's egress rules and credentials."""
    policy = settings.policy
    return HttpExecutor(
        settings.http_allowed_hosts, policy=policy, credentials=_credentials(policy)
    )


def _credentials(policy: WorkerPolicy) -> dict[str, str]:
    """The worker variables definitions may name as credentials (and SigV4's own names)."""
    return credential_environment(os.environ, policy.credential_env + SIGNING_CREDENTIAL_ENV)


def build_core(settings: Settings, storage: Storage, clock: Clock | None = None) -> Core:
    """One Dockyard's shared parts over an open store."""

    policy = settings.policy

    def executors() -> dict[str, Executor]:
        return build_executors(
            ExecutorOptions(
                job_environment=job_environment(os.environ, policy.job_pass_env),
                credentials=_credentials(policy),
                engine_environment=engine_environment(os.environ),
                search_path=(os.getcwd(),),
                store_id=store_identity(settings.url),
                http_allowed_hosts=settings.http_allowed_hosts,
                policy=policy,
                work_root=settings.home / "work",
                # The embedded setup's worker is its user's: file:// inputs read their files.
                input_allow_files=settings.url.startswith("sqlite"),
            )
        )

    return Core(
        settings=settings,
        storage=storage,
        clock=clock or SystemClock(),
        logs=LocalLogStore(settings.log_dir),
        executors=executors,
    )
