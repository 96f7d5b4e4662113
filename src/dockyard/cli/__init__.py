"""The ``dockyard`` command: thin over the client and the facade (parse, call, render)."""

from __future__ import annotations

from dockyard.cli.main import main

__all__ = ["main"]
