"""Executors run one attempt and return an :class:`~dockyard.domain.outcomes.Outcome`.

They never touch storage (DESIGN.md §4): the worker gives them the job, its effective spec, a log
sink and a cancel signal, and maps the outcome they return to a transition. Which executor runs
which kind is :mod:`dockyard.executors.registry`; :func:`build_executors` builds them all.
"""

from __future__ import annotations

from dockyard.executors.docker import DockerExecutor
from dockyard.executors.http import HttpExecutor, LambdaExecutor
from dockyard.executors.port import ExecutionContext, Executor
from dockyard.executors.process import ProcessExecutor
from dockyard.executors.python import PythonExecutor
from dockyard.executors.registry import ExecutorOptions, build_executors

__all__ = [
    "DockerExecutor",
    "ExecutionContext",
    "Executor",
    "ExecutorOptions",
    "HttpExecutor",
    "LambdaExecutor",
    "ProcessExecutor",
    "PythonExecutor",
    "build_executors",
]
