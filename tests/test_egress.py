"""Where http jobs, Lambda invocations and rule webhooks may go, and with which credentials
(issue 26: SSRF and worker variables as credentials).

Calls go to real HTTP servers on 127.0.0.1. A metadata or link-local address needs no server:
the gate refuses it before connecting. ``SERVER`` is the policy of a PostgreSQL deployment
(no loopback or private address unless its owner allows it); the suite's own stores allow
127.0.0.0/8 (tests/conftest.py), as the owner of an internal service would.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest

from dockyard import JobState, ValidationError
from dockyard.app import Dockyard
from dockyard.client import Client
from dockyard.domain.definitions import parse_definition
from dockyard.domain.fields import NEVER_CREDENTIAL_PREFIXES
from dockyard.domain.rules import Invocation, InvocationState
from dockyard.executors.egress import AddressGate
from dockyard.executors.environment import NEVER_CREDENTIALS
from dockyard.executors.http import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from dockyard.runtime import WorkerConfig
from dockyard.settings import Settings
from tests.conftest import HttpServer, Received, WorkerThread

#: What a PostgreSQL deployment's workers allow unless their owner says otherwise.
SERVER = {"http_allow_private": False, "http_allowed_networks": ()}
LOOPBACK_REFUSED = (
    "is a loopback address: calls reach it only with DOCKYARD_HTTP_ALLOW_PRIVATE=true"
    " or when DOCKYARD_HTTP_ALLOWED_NETWORKS lists it"
)
METADATA_REFUSED = (
    "169.254.169.254 is an instance-metadata address: calls reach it only when"
    " DOCKYARD_HTTP_ALLOWED_NETWORKS lists it"
)


def with_policy(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with its worker policy changed as a worker's owner would."""
    return replace(settings, policy=replace(settings.policy, **changes))


def run_jobs(client: Client, settings: Settings, *submissions: tuple[str, Any]) -> list[Any]:
    """Each ``(definition, payload)`` run to its end by one worker on ``settings``."""
    worker = WorkerThread(settings, WorkerConfig(concurrency=4, poll_seconds=0.05)).start()
    try:
        ids = [client.submit(name, payload=payload).id for name, payload in submissions]
        return [client.wait(job_id, timeout=30) for job_id in ids]
    finally:
        worker.stop()


def deliver(settings: Settings, target: dict[str, Any]) -> Invocation:
    """One event delivered to a rule's webhook ``target`` by one round of the rules engine."""

    async def main() -> Invocation:
        app = await Dockyard.open(settings)
        try:
            rule = {"event_pattern": {"source": ["ci"]}, "targets": [target]}
            await app.rules.create(rule, name="hook")
            await app.events.put([{"Source": "ci", "DetailType": "Done", "Detail": "{}"}])
            engine = app.rules_engine()
            try:
                await engine.run_once()
            finally:
                engine.stop()
            (invocation,) = await app.rules.history("hook")
            return invocation
        finally:
            await app.close()

    return asyncio.run(main())


@dataclass
class Elsewhere:
    """A second server: where a call must not go (an attacker's, or a proxy)."""

    url: str
    port: int
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def elsewhere() -> Iterator[Elsewhere]:
    recorder: list[Elsewhere] = []

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            recorder[0].requests.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = _record

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    recorder.append(Elsewhere(url=f"http://127.0.0.1:{port}", port=port))
    Thread(target=httpd.serve_forever, daemon=True).start()
    yield recorder[0]
    httpd.shutdown()
    httpd.server_close()


# -- the gate -----------------------------------------------------------------------------------

ALWAYS_REFUSED = [
    "169.254.169.254",
    "169.254.170.2",
    "fd00:ec2::254",
    "100.100.100.200",
    "fe80::1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",
    "2002:a9fe:a9fe::1",
]
PRIVATE = [
    "127.0.0.1",
    "::1",
    "::ffff:127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "fc00::1",
    "100.64.0.1",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "240.0.0.1",
    "192.0.2.1",
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700::1111"]


@pytest.mark.parametrize("address", ALWAYS_REFUSED)
def test_metadata_and_link_local_addresses_are_refused_unless_listed(address: str) -> None:
    refusal = AddressGate(allow_private=True).refusal(address)
    assert refusal is not None
    assert refusal.endswith("only when DOCKYARD_HTTP_ALLOWED_NETWORKS lists it")
    assert refusal.startswith(str(ipaddress.ip_address(address)))
    network = ipaddress.ip_network(ipaddress.ip_address(address))
    assert AddressGate(allowed_networks=(network,)).refusal(address) is None


@pytest.mark.parametrize("address", PRIVATE)
def test_private_addresses_need_the_setting_or_a_listed_network(address: str) -> None:
    refusal = AddressGate(allow_private=False).refusal(address)
    assert refusal is not None and "DOCKYARD_HTTP_ALLOW_PRIVATE=true" in refusal
    assert AddressGate(allow_private=True).refusal(address) is None
    network = ipaddress.ip_network(ipaddress.ip_address(address))
    assert AddressGate(allowed_networks=(network,)).refusal(address) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert AddressGate(allow_private=False).refusal(address) is None


# -- http jobs, Lambda endpoints and webhooks, through a worker ---------------------------------


def test_no_call_reaches_instance_metadata_even_where_private_addresses_may(
    settings: Settings, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")  # Lambda calls are signed first
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    assert settings.policy.http_allowed_networks == ("127.0.0.0/8",)
    retry = {"attempts": 3, "backoff_base": 0.05}
    metadata = "/latest/meta-data/iam/security-credentials/"
    client.register({"executor": "http", "url": "http://169.254.169.254" + metadata}, name="imds")
    client.register(
        {"executor": "http", "url": "http://[::ffff:169.254.169.254]" + metadata, "retry": retry},
        name="mapped",
    )
    lambda_endpoint = {"region": "us-east-1", "endpoint": "http://[fd00:ec2::254]"}
    client.register({"executor": "lambda", "function": "f", **lambda_endpoint}, name="fn")
    allowing = with_policy(settings, http_allow_private=True)
    imds, mapped, fn = run_jobs(client, allowing, ("imds", None), ("mapped", None), ("fn", {}))
    for job in (imds, mapped, fn):
        assert job.state is JobState.FAILED
        assert [a.reason for a in job.attempts] == ["EgressDenied"]  # not retried
    assert imds.status_reason == METADATA_REFUSED
    assert mapped.status_reason is not None and mapped.status_reason.endswith(
        "(IPv4 169.254.169.254)" + METADATA_REFUSED.removeprefix("169.254.169.254")
    )
    assert fn.status_reason is not None and fn.status_reason.startswith("fd00:ec2::254 is an")


def test_a_server_policy_refuses_loopback_by_address_and_by_name(
    settings: Settings, client: Client, http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")  # Lambda calls are signed first
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    port = http_server.url.rsplit(":", 1)[1]
    client.register({"executor": "http", "url": f"{http_server.url}/direct"}, name="direct")
    # ``localhost`` is no address at all: only the address it resolves to, the one connected
    # to, can be refused. The name allow-list lets both names through; the gate does not.
    client.register({"executor": "http", "url": f"http://localhost:{port}/named"}, name="named")
    local = {"region": "us-east-1", "endpoint": http_server.url}
    client.register({"executor": "lambda", "function": "f", **local}, name="fn")
    server = replace(
        with_policy(settings, **SERVER),
        http_allowed_hosts=(f"127.0.0.1:{port}", f"localhost:{port}"),
    )
    direct, named, fn = run_jobs(client, server, ("direct", None), ("named", None), ("fn", {}))
    assert direct.status_reason == f"127.0.0.1 {LOOPBACK_REFUSED}"
    assert named.status_reason == f"localhost (127.0.0.1) {LOOPBACK_REFUSED}"
    assert fn.status_reason == f"127.0.0.1 {LOOPBACK_REFUSED}"
    assert all(job.attempts[-1].reason == "EgressDenied" for job in (direct, named, fn))
    assert http_server.received == []

    internal = with_policy(server, http_allowed_networks=("127.0.0.1/32",))
    (allowed,) = run_jobs(client, internal, ("named", None))
    assert allowed.state is JobState.SUCCEEDED, allowed.status_reason
    assert [request.path for request in http_server.received] == ["/named"]


def test_proxies_in_the_environment_do_not_carry_calls(
    settings: Settings,
    client: Client,
    http_server: HttpServer,
    elsewhere: Elsewhere,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, elsewhere.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    client.register({"executor": "http", "url": "http://169.254.169.254/"}, name="imds")
    client.register({"executor": "http", "url": f"{http_server.url}/direct"}, name="direct")
    imds, direct = run_jobs(client, settings, ("imds", None), ("direct", None))
    assert imds.status_reason == METADATA_REFUSED
    assert direct.state is JobState.SUCCEEDED
    assert [request.path for request in http_server.received] == ["/direct"]
    assert elsewhere.requests == []


def test_webhooks_pass_the_same_gate(settings: Settings, http_server: HttpServer) -> None:
    server = with_policy(settings, **SERVER)
    refused = deliver(server, {"id": "t", "kind": "webhook", "url": f"{http_server.url}/hook"})
    assert (refused.state, refused.attempts) == (InvocationState.DEAD, 1)  # not retried
    assert refused.error == f"127.0.0.1 {LOOPBACK_REFUSED}"
    assert http_server.received == []


# -- placeholders -------------------------------------------------------------------------------


def test_a_placeholder_cannot_move_a_call_to_another_host(
    settings: Settings, client: Client, http_server: HttpServer, elsewhere: Elsewhere
) -> None:
    attack = f"x@127.0.0.1:{elsewhere.port}#"
    port = http_server.url.rsplit(":", 1)[1]
    path_url = http_server.url + "/regions/${payload.region}/items?q=${payload.region}"
    client.register({"executor": "http", "url": path_url, "method": "GET"}, name="regional")
    host_url = "http://127.0.0.${payload.region}:" + port + "/items"
    client.register({"executor": "http", "url": host_url, "method": "GET"}, name="by-host")
    files = http_server.url + "/files/${payload.region}/meta"
    client.register({"executor": "http", "url": files, "method": "GET"}, name="files")
    regional, intended, moved, climbed = run_jobs(
        client,
        settings,
        ("regional", {"region": attack}),
        ("by-host", {"region": 1}),
        ("by-host", {"region": "1" + attack.removeprefix("x")}),
        ("files", {"region": ".."}),
    )
    assert regional.state is JobState.SUCCEEDED and intended.state is JobState.SUCCEEDED
    encoded = f"x%40127.0.0.1%3A{elsewhere.port}%23"
    assert sorted(request.path for request in http_server.received) == sorted(  # any order
        [f"/regions/{encoded}/items?q={encoded}", "/items", "/files/%2E%2E/meta"]
    )
    assert climbed.state is JobState.SUCCEEDED
    assert moved.state is JobState.FAILED and [a.reason for a in moved.attempts] == ["InvalidURL"]
    assert elsewhere.requests == []


# -- headers ------------------------------------------------------------------------------------

FORBIDDEN = [
    "Host",
    "host",
    "Connection",
    "Keep-Alive",
    "Proxy-Authorization",
    "Proxy-Connection",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "Content-Length",
]


@pytest.mark.parametrize("header", FORBIDDEN)
def test_a_definition_may_not_set_host_or_hop_by_hop_headers(header: str) -> None:
    document = {"executor": "http", "url": "https://api.example.com/", "headers": {header: "x"}}
    with pytest.raises(ValidationError) as refused:
        parse_definition(document)
    assert refused.value.field == "headers"
    assert refused.value.rule.startswith(f"{header!r}: a definition may not set Host")


def test_registered_definitions_and_rules_refuse_them_too(client: Client) -> None:
    headers = {"X-Team": "ops", "Host": "metadata.google.internal"}
    with pytest.raises(ValidationError) as refused:
        client.register(
            {"executor": "http", "url": "https://api.example.com/", "headers": headers}, name="h"
        )
    assert refused.value.field == "headers"
    hook = {"kind": "webhook", "url": "https://hooks.example.com/", "headers": headers}
    with pytest.raises(ValidationError) as refused:
        client.create_rule({"event_pattern": {"source": ["ci"]}, "targets": [hook]}, name="r")
    assert refused.value.field == "targets[0].headers"
    assert client.definitions() == [] and client.rules() == []


# -- credentials --------------------------------------------------------------------------------


def test_the_domain_and_the_worker_refuse_the_same_variables() -> None:
    assert tuple(f"{prefix}*" for prefix in NEVER_CREDENTIAL_PREFIXES) == NEVER_CREDENTIALS


SIGV4 = {"kind": "aws-sigv4", "service": "execute-api", "region": "us-east-1"}
HTTP = {"executor": "http", "url": "https://api.example.com/"}
LAMBDA = {"executor": "lambda", "function": "f", "region": "us-east-1"}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({**HTTP, "signing": {"kind": "hmac-sha256", "secret_env": "PGPASSWORD"}}, "secret_env"),
        (
            {**HTTP, "signing": {"kind": "hmac-sha256", "secret_env": "DOCKYARD_TOKEN"}},
            "secret_env",
        ),
        ({**HTTP, "signing": {**SIGV4, "access_key_env": "PGPASSWORD"}}, "access_key_env"),
        ({**HTTP, "signing": {**SIGV4, "secret_key_env": "DOCKYARD_URL"}}, "secret_key_env"),
        ({**HTTP, "signing": {**SIGV4, "session_token_env": "PGSERVICE"}}, "session_token_env"),
        ({**LAMBDA, "signing": {**SIGV4, "access_key_env": "PGPASSWORD"}}, "access_key_env"),
    ],
)
def test_worker_settings_and_database_passwords_are_never_credentials(
    document: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_definition(document)
    assert refused.value.field == f"signing.{field}"
    assert refused.value.rule.startswith("must not name a DOCKYARD_* or PG* variable")


def test_a_webhook_secret_is_never_a_worker_setting(client: Client) -> None:
    hook = {"kind": "webhook", "url": "https://hooks.example.com/", "secret_env": "DOCKYARD_TOKEN"}
    with pytest.raises(ValidationError) as refused:
        client.create_rule({"event_pattern": {"source": ["ci"]}, "targets": [hook]}, name="r")
    assert refused.value.field == "targets[0].secret_env"


def test_only_variables_the_owner_allows_are_read_as_credentials(
    settings: Settings,
    client: Client,
    http_server: HttpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INTERNAL_API_KEY", "s3cret")  # the worker has it; no definition may use it
    retry = {"attempts": 3, "backoff_base": 0.05}
    secret = {"secret_env": "INTERNAL_API_KEY"}
    hmac = {"kind": "hmac-sha256", **secret}
    url = f"{http_server.url}/signed"
    client.register({**HTTP, "url": url, "signing": hmac, "retry": retry}, name="hmac")
    sigv4 = {**SIGV4, "access_key_env": "INTERNAL_API_KEY"}
    client.register({**HTTP, "url": url, "signing": sigv4, "retry": retry}, name="sigv4")
    hmac_job, sigv4_job = run_jobs(client, settings, ("hmac", None), ("sigv4", None))
    for job in (hmac_job, sigv4_job):
        assert job.state is JobState.FAILED
        assert [a.reason for a in job.attempts] == ["CredentialDenied"]  # not retried
        assert job.status_reason == (
            "INTERNAL_API_KEY is not a credential this worker allows: its owner lists the"
            " variables definitions may name in DOCKYARD_CREDENTIAL_ENV (credential_env)"
        )
    hook = {"id": "t", "kind": "webhook", "url": f"{http_server.url}/hook", **secret}
    invocation = deliver(settings, hook)
    assert invocation.state is InvocationState.DEAD
    assert invocation.error == hmac_job.status_reason
    assert http_server.received == []

    def check(request: Received) -> tuple[int, dict[str, str], bytes]:
        stamp, signature = request.headers[TIMESTAMP_HEADER], request.headers[SIGNATURE_HEADER]
        good = verify_signature(b"s3cret", stamp, request.body, signature)
        return (200, {}, b"") if good else (401, {}, b"")

    http_server.default = check
    allowed = with_policy(settings, credential_env=("INTERNAL_*",))
    (signed,) = run_jobs(client, allowed, ("hmac", None))
    assert signed.state is JobState.SUCCEEDED, signed.status_reason


def test_the_aws_credentials_sign_requests_but_are_never_sent_as_a_secret_by_default(
    settings: Settings,
    client: Client,
    http_server: HttpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-workers-aws-secret")
    retry = {"attempts": 3, "backoff_base": 0.05}
    url = f"{http_server.url}/signed"
    client.register({**HTTP, "url": url, "signing": SIGV4, "retry": retry}, name="sigv4")
    # An HMAC signature made with the AWS secret could be tried offline against guesses, and a
    # registry password is sent as it is: neither may name it unless the owner lists it.
    hmac = {"kind": "hmac-sha256", "secret_env": "AWS_SECRET_ACCESS_KEY"}
    client.register({**HTTP, "url": url, "signing": hmac, "retry": retry}, name="hmac")
    sigv4_job, hmac_job = run_jobs(client, settings, ("sigv4", None), ("hmac", None))
    assert sigv4_job.state is JobState.SUCCEEDED, sigv4_job.status_reason
    (request,) = http_server.received
    authorization = {k.lower(): v for k, v in request.headers.items()}["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert b"the-workers-aws-secret" not in request.body
    assert "the-workers-aws-secret" not in str(request.headers)
    assert hmac_job.state is JobState.FAILED
    assert [a.reason for a in hmac_job.attempts] == ["CredentialDenied"]
