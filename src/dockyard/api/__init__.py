"""The HTTP API under ``/v1``: thin over the facade (parse with pydantic, call, render)."""

from __future__ import annotations

from dockyard.api.application import create_app

__all__ = ["create_app"]
