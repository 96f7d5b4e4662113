"""Long-running services: the worker and the maintenance service it runs beside it."""

from __future__ import annotations

from dockyard.runtime.maintenance import Maintenance, MaintenanceConfig, MaintenanceReport
from dockyard.runtime.worker import Worker, WorkerConfig

__all__ = ["Maintenance", "MaintenanceConfig", "MaintenanceReport", "Worker", "WorkerConfig"]
