"""The facade and composition root: :class:`Dockyard` and what its callers need to use it.

One module per resource (definitions, jobs, logs, schedules, events, rules, tokens, the audit
trail, queues and workers), ``core`` for what they share and for authorization, ``wiring`` for
building the store, the log store and the executors from the settings, and ``facade`` composing
them.
"""

from __future__ import annotations

from dockyard.app.audit import Audit
from dockyard.app.core import LOCAL_ADMIN, permission_of
from dockyard.app.definitions import Definitions
from dockyard.app.events import Events
from dockyard.app.facade import Dockyard, upgrade_store
from dockyard.app.jobs import MAX_BATCH, Jobs, Submitted
from dockyard.app.logs import Logs
from dockyard.app.queues import Queues
from dockyard.app.rules import Rules
from dockyard.app.schedules import Schedules
from dockyard.app.tokens import Tokens
from dockyard.domain.tokens import AuditEntry, Token
from dockyard.runtime import Service, Supervisor, WorkerConfig
from dockyard.storage import QueueInfo, WorkerInfo

__all__ = [
    "LOCAL_ADMIN",
    "MAX_BATCH",
    "Audit",
    "AuditEntry",
    "Definitions",
    "Dockyard",
    "Events",
    "Jobs",
    "Logs",
    "QueueInfo",
    "Queues",
    "Rules",
    "Schedules",
    "Service",
    "Submitted",
    "Supervisor",
    "Token",
    "Tokens",
    "WorkerConfig",
    "WorkerInfo",
    "permission_of",
    "upgrade_store",
]
