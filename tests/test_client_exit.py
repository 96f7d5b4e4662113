"""A script that never closes its client still exits, quietly (issue 17's first defect).

Most users write ``c = dockyard.connect(); c.submit(...)`` with no ``with`` and no ``close``.
Each case runs such a script in a fresh interpreter, on the store itself (both backends) and
over HTTP, and expects it to end by itself, print what it printed and nothing else.
"""

from __future__ import annotations

import os
import subprocess
import sys

from dockyard import Client
from dockyard.settings import Settings
from tests.conftest import REPO, ServerProcess

SCRIPT = """
import dockyard
c = dockyard.connect()
c.submit("hello")
print("done")
"""


def _run_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,  # it used to hang forever after printing "done"
    )


def test_an_unclosed_client_on_the_store_lets_the_script_exit(
    client: Client, settings: Settings
) -> None:
    client.register({"executor": "process", "command": ["true"]}, name="hello")
    finished = _run_script({"DOCKYARD_HOME": str(settings.home), "DOCKYARD_URL": settings.url})
    assert (finished.returncode, finished.stdout, finished.stderr) == (0, "done\n", "")
    assert [job.definition_name for job in client.list()] == ["hello"]


def test_an_unclosed_client_over_http_lets_the_script_exit(
    client: Client, server: ServerProcess
) -> None:
    client.register({"executor": "process", "command": ["true"]}, name="hello")
    finished = _run_script({"DOCKYARD_URL": server.url, "DOCKYARD_TOKEN": server.admin_token})
    assert (finished.returncode, finished.stdout, finished.stderr) == (0, "done\n", "")
    assert [job.definition_name for job in client.list()] == ["hello"]
