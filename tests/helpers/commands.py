"""The ``dockyard`` command as a user runs it: ``python -m dockyard`` in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def run_dockyard(
    env: Mapping[str, str], *args: str, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m dockyard ARGS`` in ``env``, from the repository, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=REPO,
        input=input,
        timeout=timeout,
    )


def cli_as(
    home: Path, url: str, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The command on the home ``home`` against ``url`` with ``token`` alone: a
    ``DOCKYARD_TOKEN`` of the run's own environment is dropped, so that none is sent unless
    given (the CLI then reads the home's token file)."""
    env = {**os.environ, "DOCKYARD_HOME": str(home), "DOCKYARD_URL": url}
    env.pop("DOCKYARD_TOKEN", None)
    if token is not None:
        env["DOCKYARD_TOKEN"] = token
    return run_dockyard(env, *args)
