"""Inputs and outputs end to end: a real worker fetches a job's inputs from S3 into a fresh
work directory, runs the process there, uploads its outputs, records them on the attempt and
removes the folder afterwards. On SQLite; the recording of outputs on PostgreSQL too.

S3 is moto's server, an emulator of the S3 API over real HTTP (started by scripts/services; the
``s3_bucket`` fixture points boto3 and the worker at it through ``AWS_*`` variables).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

import dockyard
from dockyard import JobState
from dockyard.settings import Settings
from tests.conftest import ServerProcess, register_process
from tests.test_cli import ok


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for name, data in entries.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def s3(s3_bucket: str) -> Any:
    import boto3

    client = boto3.client("s3")
    yield client
    client.close()


def leftovers(settings: Settings) -> list[str]:
    """What is left under the worker's work-directory root (nothing, once attempts end)."""
    root = settings.home / "work"
    return sorted(str(path.relative_to(root)) for path in root.rglob("*")) if root.exists() else []


@pytest.mark.sqlite_only
def test_a_process_runs_in_its_work_directory_with_its_zip_input_fetched(
    client: dockyard.Client, settings: Settings, start_worker: Any, s3: Any, s3_bucket: str
) -> None:
    s3.put_object(
        Bucket=s3_bucket,
        Key="subs/alice.zip",
        Body=zip_bytes({"hello.txt": b"hello from the zip\n", "tests/run.sh": b"echo ran\n"}),
    )
    register_process(
        client,
        "grade",
        "/bin/sh",
        "-c",
        "cat hello.txt && sh tests/run.sh && pwd && echo made > made.txt",
        working_dir="src",
        inputs=[{"from": f"s3://{s3_bucket}/subs/${{payload.id}}.zip", "to": "src"}],
    )
    start_worker()
    job = client.wait(client.submit("grade", payload={"id": "alice"}).id, timeout=30)
    log = client.logs(job.id)
    assert job.state is JobState.SUCCEEDED, (job.status_reason, log)
    assert "hello from the zip\nran\n" in log
    assert f"fetched s3://{s3_bucket}/subs/alice.zip" in log
    # Its cwd was the working_dir inside a work directory of its own, under <home>/work.
    cwd = Path(log.split("ran\n", 1)[1].splitlines()[0])
    assert cwd.name == "src" and cwd.parent.parent == settings.home / "work"
    assert cwd.parent.name.startswith(f"{job.id}-1-")
    assert leftovers(settings) == []  # removed after the attempt, with what the job wrote


@pytest.mark.sqlite_only
def test_a_zip_climbing_out_ends_input_rejected_naming_the_entry(
    client: dockyard.Client, settings: Settings, start_worker: Any, s3: Any, s3_bucket: str
) -> None:
    s3.put_object(
        Bucket=s3_bucket,
        Key="evil.zip",
        Body=zip_bytes({"ok.txt": b"ok", "../escaped.txt": b"pwned"}),
    )
    marker = settings.home / "ran"
    register_process(
        client,
        "grade",
        "/bin/sh",
        "-c",
        f"touch {marker}",
        inputs=[{"from": f"s3://{s3_bucket}/evil.zip"}],
    )
    start_worker()
    job = client.wait(client.submit("grade").id, timeout=30)
    assert job.state is JobState.FAILED
    attempt = client.get(job.id).attempts[-1]
    assert attempt.reason == "InputRejected"
    assert "../escaped.txt" in (job.status_reason or "")
    assert not marker.exists()  # the body never started
    assert attempt.started_at is None and job.started_at is None  # failed while STARTING
    assert leftovers(settings) == []
    assert not (settings.home / "escaped.txt").exists()
    assert not (settings.home / "work" / "escaped.txt").exists()


@pytest.mark.sqlite_only
def test_a_missing_object_is_cannot_fetch_input_and_retried(
    client: dockyard.Client, settings: Settings, start_worker: Any, s3_bucket: str
) -> None:
    register_process(
        client,
        "grade",
        "true",
        inputs=[{"from": f"s3://{s3_bucket}/subs/${{payload.id}}.zip"}],
        retry={"attempts": 2, "backoff_base": 0, "backoff_max": 0},
    )
    start_worker()
    job = client.wait(client.submit("grade", payload={"id": "nobody"}).id, timeout=30)
    assert job.state is JobState.FAILED
    attempts = client.get(job.id).attempts
    assert [attempt.reason for attempt in attempts] == ["CannotFetchInput"] * 2
    assert "subs/nobody.zip" in (job.status_reason or "")
    assert leftovers(settings) == []


@pytest.mark.sqlite_only
def test_a_definition_without_inputs_runs_where_it_always_did(
    client: dockyard.Client, settings: Settings, start_worker: Any, tmp_path: Path
) -> None:
    register_process(client, "plain", "pwd", working_dir=str(tmp_path))
    start_worker()
    job = client.wait(client.submit("plain").id, timeout=30)
    assert job.state is JobState.SUCCEEDED
    assert client.logs(job.id).strip() == str(tmp_path)
    assert not (settings.home / "work").exists()


def test_outputs_are_uploaded_after_the_attempt_per_when_and_logged(
    client: dockyard.Client, settings: Settings, start_worker: Any, s3: Any, s3_bucket: str
) -> None:
    register_process(
        client,
        "report",
        "/bin/sh",
        "-c",
        'mkdir report && echo \'{"ok": true}\' > report/a.json && echo log > run.log && exit "$1"',
        "sh",
        "0",
        outputs=[
            {"path": "report/*.json", "to": f"s3://{s3_bucket}/results/${{job.id}}/"},
            {"path": "run.log", "to": f"s3://{s3_bucket}/logs/${{job.id}}/", "when": "always"},
        ],
    )
    start_worker()
    job = client.wait(client.submit("report").id, timeout=30)
    assert job.state is JobState.SUCCEEDED, job.status_reason
    body = s3.get_object(Bucket=s3_bucket, Key=f"results/{job.id}/a.json")["Body"].read()
    assert body == b'{"ok": true}\n'
    assert s3.get_object(Bucket=s3_bucket, Key=f"logs/{job.id}/run.log")["Body"].read() == b"log\n"
    log = client.logs(job.id)
    digest = hashlib.sha256(body).hexdigest()
    assert (
        f"stored report/a.json at s3://{s3_bucket}/results/{job.id}/a.json (13 bytes, sha256 {digest})"
        in log
    )

    # Recorded on the attempt: the SDK, `dockyard jobs describe`, GET /v1/jobs/{id}/outputs.
    stored = client.get(job.id).attempts[-1].outputs
    assert sorted((o.path, o.size) for o in stored) == [("report/a.json", 13), ("run.log", 4)]
    described = ok(settings, "jobs", "describe", job.id)
    assert f"s3://{s3_bucket}/results/{job.id}/a.json" in described and digest in described
    shown = json.loads(ok(settings, "jobs", "describe", job.id, "--output", "json"))
    assert {o["path"] for o in shown["attempts"][-1]["outputs"]} == {"report/a.json", "run.log"}

    # A failed attempt uploads only the `always` outputs, and keeps its own reason.
    failed = client.wait(
        client.submit("report", command=["/bin/sh", "-c", "echo x > run.log; exit 3"]).id,
        timeout=30,
    )
    assert failed.state is JobState.FAILED and failed.attempts[-1].reason == "NonZeroExit"
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert f"logs/{failed.id}/run.log" in keys
    assert not [key for key in keys if key.startswith(f"results/{failed.id}/")]
    assert leftovers(settings) == []


@pytest.mark.sqlite_only
def test_a_missing_output_fails_a_succeeded_attempt_with_output_missing(
    client: dockyard.Client, settings: Settings, start_worker: Any, s3_bucket: str
) -> None:
    register_process(
        client,
        "report",
        "true",
        outputs=[{"path": "report.json", "to": f"s3://{s3_bucket}/results/"}],
    )
    start_worker()
    job = client.wait(client.submit("report").id, timeout=30)
    assert job.state is JobState.FAILED
    assert job.attempts[-1].reason == "OutputMissing"
    assert "outputs[0].path: 'report.json' matched no file" in (job.status_reason or "")


@pytest.mark.sqlite_only
def test_outputs_are_served_by_the_api(
    client: dockyard.Client, server: ServerProcess, start_worker: Any, s3_bucket: str
) -> None:
    register_process(
        client,
        "report",
        "/bin/sh",
        "-c",
        "echo done > out.txt",
        outputs=[{"path": "out.txt", "to": f"s3://{s3_bucket}/out/${{job.id}}.txt"}],
    )
    start_worker()
    job = client.wait(client.submit("report").id, timeout=30)
    assert job.state is JobState.SUCCEEDED, job.status_reason
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        listed = http.get(f"/v1/jobs/{job.id}/outputs")
        assert listed.status_code == 200, listed.text
        assert listed.json() == [
            {
                "uri": f"s3://{s3_bucket}/out/{job.id}.txt",
                "size": 5,
                "sha256": hashlib.sha256(b"done\n").hexdigest(),
                "path": "out.txt",
                "attempt": 1,
            }
        ]
        assert http.get(f"/v1/jobs/{job.id}").json()["attempts"][0]["outputs"] == [
            {key: value for key, value in listed.json()[0].items() if key != "attempt"}
        ]


@pytest.mark.sqlite_only
def test_only_process_and_docker_definitions_take_inputs_and_outputs(
    client: dockyard.Client,
) -> None:
    inputs = [{"from": "s3://subs/a.zip"}]
    outputs = [{"path": "out.txt", "to": "s3://results/"}]
    process = {"executor": "process", "command": ["true"]}
    refused = [
        ({"executor": "python", "function": "json:dumps", "inputs": inputs}, "inputs"),
        ({"executor": "http", "url": "https://example.com/", "outputs": outputs}, "outputs"),
        # In a work directory, a process's working_dir is a folder inside it.
        ({**process, "working_dir": "/srv", "inputs": inputs}, "working_dir"),
        ({**process, "working_dir": "../up", "outputs": outputs}, "working_dir"),
    ]
    for document, field in refused:
        with pytest.raises(dockyard.ValidationError) as caught:
            client.register(document, name="staged")
        assert caught.value.field == field, document
    assert client.definitions() == []
    client.register({**process, "working_dir": "/srv"}, name="a")  # no work directory: any
