"""Payloads of every allowed size reach the programs an attempt starts (issue 17's defect).

Validation allows 256 KiB of JSON, but Linux caps one environment string at 128 KiB (E2BIG):
a payload that travelled only in ``DOCKYARD_PAYLOAD`` could never start. Programs find it in the
file named by ``DOCKYARD_PAYLOAD_FILE``, and in the variable too when it is small.
"""

from __future__ import annotations

import json
from typing import Any

from dockyard import JobState
from dockyard.client import Client
from dockyard.domain.jobs import MAX_PAYLOAD_BYTES
from dockyard.domain.records import JSON
from dockyard.executors.payload import PAYLOAD_ENV_MAX

WAIT = 60
#: JSON just under the cap: far over the 128 KiB an environment string may hold.
BIG: JSON = {"text": "x" * (MAX_PAYLOAD_BYTES - 100)}
SMALL: JSON = {"n": 1}
REPORT = (
    'if [ -n "${DOCKYARD_PAYLOAD+set}" ]; then echo variable=yes; else echo variable=no; fi;'
    ' echo file=$(wc -c < "$DOCKYARD_PAYLOAD_FILE")'
)


def test_a_process_gets_a_payload_of_any_allowed_size(client: Client, start_worker: Any) -> None:
    start_worker()
    client.register({"executor": "process", "command": ["sh", "-c", REPORT]}, name="report")
    cases: list[tuple[JSON, str]] = [(BIG, "no"), (SMALL, "yes")]
    for payload, variable in cases:
        job = client.wait(client.submit("report", payload=payload).id, timeout=WAIT)
        assert job.state is JobState.SUCCEEDED, client.logs(job.id)
        size = len(json.dumps(payload))
        assert client.logs(job.id) == f"variable={variable}\nfile={size}\n"
    assert len(json.dumps(BIG)) > 128 * 1024 > PAYLOAD_ENV_MAX >= len(json.dumps(SMALL))


def test_an_isolated_function_gets_a_payload_of_any_allowed_size(
    client: Client, start_worker: Any
) -> None:
    start_worker()
    client.register(
        {
            "executor": "python",
            "function": "tests.jobfunctions:payload_size",
            "isolation": "subprocess",
        },
        name="size",
    )
    job = client.wait(client.submit("size", payload=BIG).id, timeout=WAIT)
    assert job.state is JobState.SUCCEEDED, client.logs(job.id)
    size = len(json.dumps(BIG))
    assert job.result == {"chars": size, "in_variable": False, "in_file": size}


def test_a_container_gets_a_payload_of_any_allowed_size(
    client: Client, start_worker: Any, busybox_image: str
) -> None:
    start_worker()
    client.register(
        {"executor": "docker", "image": busybox_image, "command": ["sh", "-c", REPORT]},
        name="report",
    )
    cases: list[tuple[JSON, str]] = [(BIG, "no"), (SMALL, "yes")]
    for payload, variable in cases:
        job = client.wait(client.submit("report", payload=payload).id, timeout=WAIT)
        assert job.state is JobState.SUCCEEDED, client.logs(job.id)
        size = len(json.dumps(payload))
        assert client.logs(job.id).splitlines()[1:] == [f"variable={variable}", f"file={size}"]
