"""Functions that ``python`` jobs of tests/test_job_isolation.py call, as
``tests.isolation_functions:NAME`` (from the worker's project folder: the repository root)."""

from __future__ import annotations

import os
from subprocess import getoutput  # a standard-library function under a project module's name
from typing import Any

__all__ = ["environment", "getoutput", "identity"]


def environment(payload: Any) -> dict[str, str]:
    """The environment the function runs with."""
    return dict(os.environ)


def identity(payload: Any) -> dict[str, Any]:
    """Who the function runs as."""
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "home": os.environ.get("HOME"),
    }
