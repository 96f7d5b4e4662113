"""Long-running services: the worker now; the scheduler, rules and maintenance later."""

from __future__ import annotations

from dockyard.runtime.worker import Worker, WorkerConfig

__all__ = ["Worker", "WorkerConfig"]
