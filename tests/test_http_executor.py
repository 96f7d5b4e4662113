"""The http executor against a real HTTP server on a free port (the standard library's
ThreadingHTTPServer, answering as each test scripts it)."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from dockyard import JobState, SubmitRequest
from dockyard.client import Client
from dockyard.executors.http import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from dockyard.runtime import WorkerConfig
from dockyard.settings import Settings
from tests.conftest import Answer, Received, WorkerThread
from tests.conftest import HttpServer as Server


def register_http(client: Client, name: str, **fields: Any) -> None:
    client.register({"executor": "http", **fields}, name=name)


def with_policy(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with its worker policy changed as a worker's owner would."""
    return replace(settings, policy=replace(settings.policy, **changes))


def test_a_request_is_made_from_the_payload_and_its_answer_is_the_result(
    client: Client, http_server: Server, start_worker: Any
) -> None:
    register_http(
        client,
        "notify",
        url=http_server.url + "/users/${payload.user.id}/notify",
        headers={"X-Job": "${job.id}"},
        json={"user": "${payload.user}", "text": "hello ${payload.user.name}"},
    )
    start_worker(concurrency=4)
    job = client.wait(
        client.submit("notify", payload={"user": {"id": 7, "name": "Ada"}}).id, timeout=30
    )
    assert job.state is JobState.SUCCEEDED, job.status_reason
    result = job.result
    assert isinstance(result, dict)
    assert (result["status"], result["body"], result["truncated"]) == (200, {"ok": True}, False)
    assert isinstance(result["headers"], dict)
    assert result["headers"]["content-type"] == "application/json"
    (request,) = http_server.received
    assert (request.method, request.path) == ("POST", "/users/7/notify")
    assert request.headers["X-Job"] == job.id
    assert json.loads(request.body) == {"user": {"id": 7, "name": "Ada"}, "text": "hello Ada"}
    log = client.logs(job.id)
    assert f"> POST {http_server.url}/users/7/notify" in log and "< HTTP/1.1 200 OK" in log


def test_5xx_and_429_are_retried_4xx_ends_the_job_unless_a_rule_retries_it(
    client: Client, http_server: Server, start_worker: Any
) -> None:
    retry = {"attempts": 3, "backoff_base": 0.05, "backoff_max": 1}
    register_http(client, "flaky", url=http_server.url + "/flaky", retry=retry)
    http_server.answers = [(503, {}, b"busy"), (429, {"Retry-After": "1"}, b"slow down")]
    start_worker(concurrency=4)
    job = client.wait(client.submit("flaky").id, timeout=30)
    assert job.state is JobState.SUCCEEDED
    assert [a.reason for a in job.attempts] == ["HTTP 503", "HTTP 429", None]
    second, third = job.attempts[1], job.attempts[2]
    assert second.stopped_at is not None and third.started_at is not None
    assert (third.started_at - second.stopped_at).total_seconds() >= 0.9  # Retry-After: 1

    register_http(client, "missing", url=http_server.url + "/missing", retry=retry)
    http_server.answers = [(404, {}, b"no such thing")] * 3
    ended = client.wait(client.submit("missing").id, timeout=30)
    assert ended.state is JobState.FAILED and len(ended.attempts) == 1
    assert ended.status_reason is not None and ended.status_reason.startswith("HTTP 404")

    rules = {**retry, "evaluate_on_exit": [{"action": "RETRY", "on_reason": "HTTP 404"}]}
    register_http(client, "eventually", url=http_server.url + "/eventually", retry=rules)
    http_server.answers = [(404, {}, b"not yet")]
    retried = client.wait(client.submit("eventually").id, timeout=30)
    assert retried.state is JobState.SUCCEEDED and len(retried.attempts) == 2


def test_a_refused_host_fails_before_anything_is_sent(
    settings: Settings, client: Client, http_server: Server
) -> None:
    register_http(client, "out", url="http://127.0.0.2:9/steal")
    register_http(client, "in", url=http_server.url + "/ok")
    port = http_server.url.rsplit(":", 1)[1]
    limited = replace(settings, http_allowed_hosts=(f"127.0.0.1:{port}", "*.example.com"))
    worker = WorkerThread(limited, WorkerConfig(concurrency=2, poll_seconds=0.05)).start()
    try:
        refused = client.wait(client.submit("out").id, timeout=30)
        allowed = client.wait(client.submit("in").id, timeout=30)
    finally:
        worker.stop()
    assert refused.state is JobState.FAILED
    assert refused.attempts[-1].reason == "EgressDenied"
    assert refused.status_reason == "127.0.0.2:9 is not in DOCKYARD_HTTP_ALLOWED_HOSTS"
    assert allowed.state is JobState.SUCCEEDED
    assert [r.path for r in http_server.received] == ["/ok"]


def test_hmac_signatures_verify_at_the_receiver(
    settings: Settings, client: Client, http_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = b"shared-secret"

    def check(request: Received) -> Answer:
        good = verify_signature(
            secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            request.body,
            request.headers.get(SIGNATURE_HEADER, ""),
        )
        return (200, {}, b"verified") if good else (401, {}, b"bad signature")

    http_server.default = check
    signing = {"kind": "hmac-sha256", "secret_env": "HOOK_SECRET"}
    register_http(client, "hook", url=http_server.url + "/hook", signing=signing)
    # The worker's owner lets definitions name HOOK_SECRET; a worker reads it as it starts.
    allowed = with_policy(settings, credential_env=("HOOK_SECRET",))
    config = WorkerConfig(concurrency=2, poll_seconds=0.05)
    monkeypatch.setenv("HOOK_SECRET", secret.decode())
    worker = WorkerThread(allowed, config).start()
    try:
        signed = client.wait(client.submit("hook", payload={"event": "x"}).id, timeout=30)
    finally:
        worker.stop()
    assert signed.state is JobState.SUCCEEDED
    monkeypatch.setenv("HOOK_SECRET", "another-secret")
    worker = WorkerThread(allowed, config).start()
    try:
        forged = client.wait(client.submit("hook", payload={"event": "x"}).id, timeout=30)
    finally:
        worker.stop()
    assert forged.state is JobState.FAILED and forged.attempts[-1].reason == "HTTP 401"
    request = http_server.received[0]
    # A replay after the window is refused by the same check.
    stamp = int(request.headers[TIMESTAMP_HEADER])
    assert not verify_signature(
        secret, str(stamp), request.body, request.headers[SIGNATURE_HEADER], now=stamp + 301
    )


def test_many_requests_are_in_flight_at_once_on_one_worker(
    client: Client, http_server: Server, start_worker: Any
) -> None:
    # The server answers nothing until all 50 requests are in at once: a worker that sent them
    # one or a few at a time would leave them waiting out ``hold_seconds`` and fall short.
    http_server.hold_until = 50
    register_http(client, "slow", url=http_server.url + "/slow", method="GET")
    submitted = client.submit_requests([SubmitRequest(definition="slow") for _ in range(50)])
    start_worker(concurrency=50)  # claims the 50 at once
    for item in submitted:
        assert client.wait(item.job.id, timeout=60).state is JobState.SUCCEEDED
    assert http_server.most_in_flight == 50


def test_a_connection_refused_is_retried_and_recorded(client: Client, start_worker: Any) -> None:
    retry = {"attempts": 2, "backoff_base": 0.05}
    register_http(client, "nobody", url="http://127.0.0.1:9/", retry=retry)
    start_worker(concurrency=2)
    job = client.wait(client.submit("nobody").id, timeout=30)
    assert job.state is JobState.FAILED
    assert [a.reason for a in job.attempts] == ["ConnectError", "ConnectError"]


AWS_KEYS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG"}


def botocore_accepts(request: Received, *, host: str, service: str, region: str) -> bool:
    """Recompute the request's signature with botocore's SigV4Auth (AWS's own Python signer)
    from the headers the request says it signed, with the keys the server knows."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    authorization = request.headers.get("Authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return False
    fields = dict(part.strip().split("=", 1) for part in authorization[17:].split(","))
    lowered = {name.lower(): value for name, value in request.headers.items()}
    signed = fields["SignedHeaders"].split(";")
    headers = {name: lowered[name] for name in signed if name in lowered}
    aws = AWSRequest(
        method=request.method,
        url=f"http://{host}{request.path}",
        data=request.body,
        headers=headers,
    )
    aws.context["timestamp"] = lowered["x-amz-date"]
    auth = SigV4Auth(
        Credentials(AWS_KEYS["AWS_ACCESS_KEY_ID"], AWS_KEYS["AWS_SECRET_ACCESS_KEY"]),
        service,
        region,
    )
    canonical = auth.canonical_request(aws)
    expected = auth.signature(auth.string_to_sign(aws, canonical), aws)
    return bool(fields["Signature"] == expected)


def test_sigv4_signed_requests_pass_botocore_and_lambda_invocations_run(
    client: Client, http_server: Server, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = http_server.url.removeprefix("http://")

    def lambda_api(request: Received) -> Answer:
        if not botocore_accepts(request, host=host, service="lambda", region="eu-west-1"):
            return 403, {"Content-Type": "application/json"}, b'{"message": "bad signature"}'
        if request.path.startswith("/2015-03-31/functions/crash/"):
            body = b'{"errorMessage": "boom", "errorType": "ValueError"}'
            return (
                200,
                {"X-Amz-Function-Error": "Unhandled", "Content-Type": "application/json"},
                body,
            )
        kind = request.headers.get("X-Amz-Invocation-Type")
        if kind == "Event":
            return 202, {}, b""
        event = json.loads(request.body)
        return 200, {"Content-Type": "application/json"}, json.dumps({"echo": event}).encode()

    http_server.default = lambda_api
    for name, value in AWS_KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    base = {"region": "eu-west-1", "endpoint": http_server.url}
    client.register({"executor": "lambda", "function": "echo", **base}, name="echo")
    client.register(
        {"executor": "lambda", "function": "echo", "invocation_type": "Event", **base},
        name="fire",
    )
    client.register({"executor": "lambda", "function": "crash", **base}, name="crash")
    worker = start_worker(concurrency=4)

    echoed = client.wait(client.submit("echo", payload={"n": 1}).id, timeout=30)
    assert echoed.state is JobState.SUCCEEDED, echoed.status_reason
    assert isinstance(echoed.result, dict) and echoed.result["body"] == {"echo": {"n": 1}}
    assert http_server.received[-1].path == "/2015-03-31/functions/echo/invocations"

    fired = client.wait(client.submit("fire", payload={"n": 2}).id, timeout=30)
    assert fired.state is JobState.SUCCEEDED
    assert http_server.received[-1].headers["X-Amz-Invocation-Type"] == "Event"

    crashed = client.wait(client.submit("crash").id, timeout=30)
    assert crashed.state is JobState.FAILED
    assert crashed.attempts[-1].reason == "Function error: Unhandled"
    assert crashed.status_reason is not None and "boom" in crashed.status_reason

    worker.stop()  # a worker reads its credentials as it starts
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-key")
    start_worker(concurrency=4)
    refused = client.wait(client.submit("echo", payload={"n": 3}).id, timeout=30)
    assert refused.state is JobState.FAILED and refused.attempts[-1].reason == "HTTP 403"


def test_an_http_definition_can_sign_with_sigv4(
    client: Client, http_server: Server, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = http_server.url.removeprefix("http://")
    http_server.default = lambda request: (
        (200, {}, b"ok")
        if botocore_accepts(request, host=host, service="execute-api", region="us-east-1")
        else (403, {}, b"denied")
    )
    for name, value in AWS_KEYS.items():
        monkeypatch.setenv(name, value)
    signing = {"kind": "aws-sigv4", "service": "execute-api", "region": "us-east-1"}
    register_http(client, "iam", url=http_server.url + "/prod/items?limit=5&b=2", signing=signing)
    start_worker(concurrency=2)
    job = client.wait(client.submit("iam", payload={"item": "x"}).id, timeout=30)
    assert job.state is JobState.SUCCEEDED, job.status_reason


def test_story_3_an_application_back_end_over_the_http_api(
    settings: Settings, server: Any, http_server: Server, start_worker: Any
) -> None:
    """DESIGN.md story 3: jobs created over the API call a REST server, deduplicated by key, in
    order per group, retried with backoff; one that runs out of attempts is FAILED, listed by
    ``dockyard jobs list --state FAILED`` and run again by ``dockyard jobs retry``."""
    import httpx

    api = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    )
    with api:
        story_3(settings, server, http_server, start_worker, api)


def story_3(
    settings: Settings, server: Any, http_server: Server, start_worker: Any, api: Any
) -> None:
    definition = {
        "name": "charge",
        "executor": "http",
        "url": http_server.url + "/charges/${payload.order}",
        "json": {"order": "${payload.order}", "amount": "${payload.amount}"},
        "retry": {"attempts": 3, "backoff_base": 0.2, "backoff_max": 5},
    }
    api.post("/v1/definitions", json=definition).raise_for_status()
    start_worker(concurrency=8)

    http_server.answers = [(503, {}, b"busy"), (503, {}, b"busy")]
    first = {"definition": "charge", "payload": {"order": "o-1", "amount": 12}}
    body = {**first, "idempotency_key": "order-o-1", "group": "customer-7"}
    created = api.post("/v1/jobs", json=body).json()
    again = api.post("/v1/jobs", json=body).json()
    assert (again["id"], again["created"]) == (created["id"], False)
    done = api.get(f"/v1/jobs/{created['id']}", params={"wait": 30}).json()
    assert done["state"] == "SUCCEEDED"
    attempts = done["attempts"]
    assert [a["reason"] for a in attempts] == ["HTTP 503", "HTTP 503", None]
    gaps = [
        (datetime.fromisoformat(b["started_at"]) - datetime.fromisoformat(a["stopped_at"]))
        for a, b in itertools.pairwise(attempts)
    ]
    assert gaps[0].total_seconds() >= 0.2 and gaps[1].total_seconds() >= 0.4  # the backoff

    http_server.received.clear()
    http_server.delay = 0.05
    orders = [f"g-{n}" for n in range(6)]
    ids = [
        api.post(
            "/v1/jobs",
            json={
                "definition": "charge",
                "group": "customer-9",
                "payload": {"order": o, "amount": 1},
            },
        ).json()["id"]
        for o in orders
    ]
    for job_id in ids:
        assert api.get(f"/v1/jobs/{job_id}", params={"wait": 30}).json()["state"] == "SUCCEEDED"
    assert [r.path for r in http_server.received] == [f"/charges/{o}" for o in orders]
    http_server.delay = 0.0

    http_server.answers = [(500, {}, b"down")] * 3
    doomed = api.post("/v1/jobs", json={**first, "payload": {"order": "o-2", "amount": 5}}).json()
    failed = api.get(f"/v1/jobs/{doomed['id']}", params={"wait": 30}).json()
    assert failed["state"] == "FAILED" and len(failed["attempts"]) == 3
    env = {"DOCKYARD_URL": server.url, "DOCKYARD_TOKEN": server.admin_token}
    listed = run_cli(settings, env, "jobs", "list", "--state", "FAILED")
    assert doomed["id"] in listed
    run_cli(settings, env, "jobs", "retry", doomed["id"])
    retried = api.get(f"/v1/jobs/{doomed['id']}", params={"wait": 30}).json()
    assert retried["state"] == "SUCCEEDED"


def run_cli(settings: Settings, env: dict[str, str], *args: str) -> str:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    result = subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKYARD_HOME": str(settings.home), **env},
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
