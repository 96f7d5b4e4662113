"""Long-running services: the worker, the maintenance service it runs beside it, the scheduler."""

from __future__ import annotations

from dockyard.runtime.maintenance import Maintenance, MaintenanceConfig, MaintenanceReport
from dockyard.runtime.rules import RulesConfig, RulesEngine, RulesReport
from dockyard.runtime.scheduler import Scheduler, SchedulerConfig, SchedulerReport
from dockyard.runtime.worker import Worker, WorkerConfig

__all__ = [
    "Maintenance",
    "MaintenanceConfig",
    "MaintenanceReport",
    "RulesConfig",
    "RulesEngine",
    "RulesReport",
    "Scheduler",
    "SchedulerConfig",
    "SchedulerReport",
    "Worker",
    "WorkerConfig",
]
