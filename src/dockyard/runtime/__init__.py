"""Long-running services: the worker, the maintenance service it runs beside it, the scheduler,
the rules engine, and the supervisor that runs several of them together.

Each keeps one contract (:class:`Service`: ``start()``, idempotent ``stop()``, ``started`` and
``stopped``); the three that one process at a time does share one leader loop
(:class:`LeaderService`).
"""

from __future__ import annotations

from dockyard.runtime.leader import LeaderService
from dockyard.runtime.maintenance import Maintenance, MaintenanceConfig, MaintenanceReport
from dockyard.runtime.rules import RulesConfig, RulesEngine, RulesReport
from dockyard.runtime.scheduler import Scheduler, SchedulerConfig, SchedulerReport
from dockyard.runtime.service import Service
from dockyard.runtime.supervisor import STOP_SIGNALS, Supervisor
from dockyard.runtime.worker import Worker, WorkerConfig

__all__ = [
    "STOP_SIGNALS",
    "LeaderService",
    "Maintenance",
    "MaintenanceConfig",
    "MaintenanceReport",
    "RulesConfig",
    "RulesEngine",
    "RulesReport",
    "Scheduler",
    "SchedulerConfig",
    "SchedulerReport",
    "Service",
    "Supervisor",
    "Worker",
    "WorkerConfig",
]
