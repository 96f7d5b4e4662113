"""Queues, workers and tokens, from the CLI against a real server and through the SDK."""

from __future__ import annotations

import json
import stat
import subprocess

import pytest

import dockyard
from dockyard import AuthenticationError, JobState, PermissionDeniedError
from dockyard.settings import Settings
from tests.conftest import ServerProcess, register_process
from tests.helpers.commands import cli_as


def cli(
    settings: Settings, *args: str, url: str | None = None, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    return cli_as(settings.home, url or settings.url, *args, token=token)


def test_a_paused_queue_keeps_its_jobs_until_resumed(client: dockyard.Client, start_worker) -> None:
    register_process(client, "q", "true", queue="reports")
    client.pause_queue("reports")
    held = client.submit("q")
    other = client.submit("q", queue="default")
    start_worker(concurrency=2)
    assert client.wait(other.id, timeout=30).state is JobState.SUCCEEDED
    assert (
        client.get(held.id).state is JobState.RUNNABLE
    )  # the worker had its chance: it ran `other`
    (reports,) = [queue for queue in client.queues() if queue.name == "reports"]
    assert reports.paused and reports.counts == {"RUNNABLE": 1}
    client.resume_queue("reports")
    assert client.wait(held.id, timeout=30).state is JobState.SUCCEEDED


def test_workers_are_listed_with_their_running_jobs(
    client: dockyard.Client, start_worker, tmp_path
) -> None:
    gate = tmp_path / "gate"
    register_process(client, "hold", "sh", "-c", f"until test -e {gate}; do sleep 0.05; done")
    thread = start_worker(concurrency=3)
    job = client.submit("hold")
    from tests.conftest import wait_until

    wait_until(lambda: client.get(job.id).state is JobState.RUNNING, what="the job to run")
    (worker,) = client.workers()
    assert (worker.id, worker.concurrency, worker.running) == (thread.worker.id, 3, (job.id,))
    gate.touch()
    client.wait(job.id, timeout=30)


def test_first_server_start_writes_an_admin_token_and_the_cli_finds_it(
    settings: Settings, server: ServerProcess
) -> None:
    token_file = settings.home / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    # No token given: the CLI reads <home>/token.
    created = cli(
        settings,
        "tokens",
        "create",
        "--role",
        "viewer",
        "--name",
        "dashboards",
        "-o",
        "json",
        url=server.url,
    )
    assert created.returncode == 0, created.stderr
    viewer = json.loads(created.stdout)
    assert viewer["role"] == "viewer" and viewer["secret"].startswith("dy_")

    listed = json.loads(cli(settings, "tokens", "list", "-o", "json", url=server.url).stdout)
    assert [t["role"] for t in listed] == ["admin", "viewer"]

    # The viewer reads, and may not write.
    assert cli(settings, "jobs", "list", url=server.url, token=viewer["secret"]).returncode == 0
    denied = cli(
        settings,
        "definitions",
        "register",
        "x",
        "--",
        "true",
        url=server.url,
        token=viewer["secret"],
    )
    assert (
        denied.returncode == 2
        and "may not operate" in denied.stderr
        and "Traceback" not in denied.stderr
    )

    assert (
        cli(settings, "tokens", "revoke", viewer["id"], url=server.url).stdout
        == f"revoked {viewer['id']}\n"
    )
    revoked = cli(settings, "jobs", "list", url=server.url, token=viewer["secret"])
    assert revoked.returncode == 2 and "unknown or revoked" in revoked.stderr


def test_the_sdk_raises_the_same_errors_over_http(server: ServerProcess) -> None:
    with (
        dockyard.connect(server.url, token="dy_wrong") as stranger,
        pytest.raises(AuthenticationError),
    ):
        stranger.list()
    with dockyard.connect(server.url, token=server.admin_token) as admin:
        _, secret = admin.create_token("reader", "viewer")
    with dockyard.connect(server.url, token=secret) as viewer:
        assert viewer.list() == []
        with pytest.raises(PermissionDeniedError):
            viewer.pause_queue("default")
        with pytest.raises(PermissionDeniedError):
            viewer.tokens()


def test_queues_and_workers_from_the_cli(settings: Settings, server: ServerProcess) -> None:
    assert cli(settings, "queues", "pause", "nightly", url=server.url).stdout == "paused nightly\n"
    queues = json.loads(cli(settings, "queues", "list", "-o", "json", url=server.url).stdout)
    assert queues == [{"name": "nightly", "paused": True, "counts": {}}]
    assert (
        cli(settings, "queues", "resume", "nightly", url=server.url).stdout == "resumed nightly\n"
    )
    assert json.loads(cli(settings, "workers", "list", "-o", "json", url=server.url).stdout) == []
    bad = cli(settings, "queues", "pause", "no spaces", url=server.url)
    assert bad.returncode == 2 and "queue: must be 1-128 letters" in bad.stderr


def test_a_taken_port_and_an_unreachable_server_are_one_line_errors(
    settings: Settings, server: ServerProcess
) -> None:
    taken = cli(settings, "server", "--port", str(server.port))
    assert taken.returncode == 2
    assert (
        taken.stderr == f"error: cannot listen on 127.0.0.1:{server.port}: Address already in use\n"
    )
    for args in (("jobs", "list"), ("jobs", "logs", "x"), ("jobs", "logs", "x", "--follow")):
        gone = cli(settings, *args, url="http://127.0.0.1:9", token="dy_x")
        assert gone.returncode == 2
        assert (
            gone.stderr.startswith("error: cannot reach http://127.0.0.1:9")
            and "Traceback" not in gone.stderr
        )


def test_the_server_stops_gracefully_on_sigterm(settings: Settings, tmp_path) -> None:
    import signal as signals

    server = ServerProcess(settings, tmp_path / "server.log")
    try:
        with dockyard.connect(server.url, token=server.admin_token) as client:
            assert client.queues() == []
        server.proc.send_signal(signals.SIGTERM)
        assert server.proc.wait(30) == 0
    finally:
        server.close()


def test_the_api_socket_sends_without_waiting_for_acks() -> None:
    """The socket handed to uvicorn has TCP_NODELAY (its connections inherit it): without it,
    every answer to a Python client (the SDK's HttpClient) waited ~40 ms for a delayed ACK."""
    import socket

    from dockyard.cli.services import _listen

    sock = _listen("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()
