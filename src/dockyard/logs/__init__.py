"""Attempt logs: the log store port and the local-directory store."""

from __future__ import annotations

from dockyard.logs.local import LocalLogStore
from dockyard.logs.port import LogSink, LogStore

__all__ = ["LocalLogStore", "LogSink", "LogStore"]
