"""Issue 26, the HTTP edge: each test sends the attack of its finding, against local servers.

- A stranger's 200 MB body was read and parsed before the 401: the token is now checked from
  the headers, a body past its limit is 413 (counted as it arrives, chunked or not), and JSON
  nested too deep is refused before anything parses it.
- One deeply nested payload broke ``GET /v1/jobs`` and ``dockyard jobs list`` for everyone: the
  domain refuses it wherever it comes in, and a stored one is listed with a marker.
- Connections had no limits: a request head has a deadline, connections are capped, a token
  follows a few logs at once, and following is driven by changes, not by polling the store.
- ``/docs`` and ``/openapi.json`` were open while the README said only health checks are: they
  stay open (they describe the API, not its data), and the README says so.
- No TLS: ``server`` and ``up`` take a certificate and its key.
- A ``/v1`` route that names no operation with ``allowed(...)`` is found.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from dockyard import DirectClient, ValidationError
from dockyard.api import create_app
from dockyard.api.application import OPEN_PATHS
from dockyard.api.auth import declared_operation
from dockyard.api.edge import MAX_BATCH_BODY_BYTES, MAX_BODY_BYTES, MAX_BODY_DEPTH
from dockyard.api.serving import ServingLimits
from dockyard.api.streams import MAX_FOLLOWS_PER_TOKEN
from dockyard.app import Dockyard
from dockyard.app import logs as follow_module
from dockyard.cli.services import ApiServer
from dockyard.domain.fields import MAX_DEPTH
from dockyard.domain.jobs import SubmitRequest, new_job
from dockyard.settings import Settings
from tests.conftest import REPO, ServerProcess, free_port, wait_until

PROBLEM = "application/problem+json"
DEPTH_RULE = f"must nest at most {MAX_DEPTH} levels of lists and objects"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def nested(depth: int) -> Any:
    """A list ``depth`` levels deep, built without recursion."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def nested_text(depth: int) -> str:
    return "[" * depth + "]" * depth


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def raw_exchange(url: str, head: bytes, body: bytes = b"", timeout: float = 10) -> bytes:
    """Send a request head and part of a body on one socket, then read what the server says
    without sending the rest: the answer must come from the head alone."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head + body)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or the read times out)."""
    received = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def head_of(method: str, path: str, **headers: str) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(answer: bytes) -> int:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert match, f"no answer from the head alone: {answer[:200]!r}"
    return int(match.group(1))


@contextlib.asynccontextmanager
async def in_process(settings: Settings) -> AsyncIterator[tuple[Dockyard, httpx.AsyncClient]]:
    """The API over ASGI (no socket) on the test's store, with an admin token's client."""
    dockyard = await Dockyard.open(settings)
    try:
        secret = await dockyard.ensure_admin_token()
        assert secret is not None
        transport = httpx.ASGITransport(app=create_app(dockyard), raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=bearer(secret)
        ) as http:
            yield dockyard, http
    finally:
        await dockyard.close()


async def register(http: httpx.AsyncClient, name: str = "noop") -> None:
    response = await http.post("/v1/definitions", json={"name": name, "command": ["true"]})
    assert response.status_code == 201, response.text


# -- 1. a stranger's body is refused from its headers; bodies have a size and a depth ---------


def test_a_stranger_is_refused_from_the_headers_before_a_byte_of_the_body_is_read(
    server: ServerProcess,
) -> None:
    """The attack: 200 MB announced to ``/v1/jobs`` without a token. The 401 comes while the
    body is still unsent (before, the server waited for all of it and parsed it)."""
    announced = head_of(
        "POST", "/v1/jobs", **{"Content-Type": "application/json", "Content-Length": "209715200"}
    )
    answer = raw_exchange(server.url, announced, b'{"definition": "' + b"x" * 65536)
    assert status_of(answer) == 401
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert b"www-authenticate: bearer" in head
    assert b"content-type: application/problem+json" in head
    assert b"connection: close" in head  # the rest of the body is never read

    chunked = head_of(
        "POST",
        "/v1/jobs/batch",
        **{"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        Authorization="Bearer dy_not-a-token",
    )
    assert status_of(raw_exchange(server.url, chunked, b"10000\r\n" + b"[" * 65536)) == 401


def test_a_body_past_its_limit_is_413_whether_announced_or_chunked(server: ServerProcess) -> None:
    token = server.admin_token
    # Announced: refused from the Content-Length, nothing of the body sent.
    for path, limit in (("/v1/jobs", MAX_BODY_BYTES), ("/v1/jobs/batch", MAX_BATCH_BODY_BYTES)):
        too_long = head_of(
            "POST", path, Authorization=f"Bearer {token}", **{"Content-Length": str(limit + 1)}
        )
        answer = raw_exchange(server.url, too_long)
        assert status_of(answer) == 413, path
        assert f"at most {limit} bytes".encode() in answer

    # Chunked, no length announced: counted as it arrives, refused at the first byte past it.
    head = head_of(
        "POST",
        "/v1/jobs",
        Authorization=f"Bearer {token}",
        **{"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    chunks = MAX_BODY_BYTES // 65536 + 1  # one chunk past the limit, and no last chunk
    assert status_of(raw_exchange(server.url, head, chunk * chunks)) == 413

    # A batch may be bigger than any other body: 1,000 jobs of 1.5 KiB each.
    with httpx.Client(base_url=server.url, headers=bearer(token), timeout=60) as http:
        definition = {"name": "noop", "command": ["true"]}
        assert http.post("/v1/definitions", json=definition).status_code == 201
        job = {"definition": "noop", "payload": {"note": "x" * 1500}}
        batch = json.dumps({"jobs": [job] * 1000}).encode()
        assert MAX_BODY_BYTES < len(batch) < MAX_BATCH_BODY_BYTES
        response = http.post(
            "/v1/jobs/batch", content=batch, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 201, response.text[:300]
        too_big = http.post("/v1/jobs", json={**job, "payload": {"note": "x" * MAX_BODY_BYTES}})
        assert problem_of(too_big, 413)["field"] == "body"


def test_json_nested_too_deep_is_refused_before_it_is_parsed(settings: Settings) -> None:
    """100,000 levels broke the parser (500); any body past the edge's depth is now 422, on
    every route that takes JSON, the registry's own media type included."""
    deep = nested_text(100_000).encode()

    async def scenario() -> None:
        async with in_process(settings) as (_, http):
            for path, content_type in (
                ("/v1/jobs", "application/json"),
                ("/v1/jobs/batch", "application/json"),
                ("/v1/definitions", "application/json"),
                ("/v1/events", "application/json"),
                ("/v1/rules/test-pattern", "application/json"),
                ("/v1/webhooks/registry", "application/vnd.docker.distribution.events.v1+json"),
                ("/v1/jobs", "text/plain"),
            ):
                response = await http.post(
                    path, content=deep, headers={"Content-Type": content_type}
                )
                problem = problem_of(response, 422)
                assert problem["field"] == "body", path
                assert (
                    problem["rule"]
                    == f"must nest at most {MAX_BODY_DEPTH} levels of lists and objects"
                )
            # Brackets inside strings are text, not nesting.
            await register(http)
            text = {"definition": "noop", "payload": {"note": "[" * 10_000}}
            assert (await http.post("/v1/jobs", json=text)).status_code == 201

    asyncio.run(scenario())


# -- 2. the domain refuses deep documents wherever they come in; stored ones never break a list


def test_the_domain_refuses_a_payload_or_detail_nested_past_64_levels_naming_the_field(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        async with in_process(settings) as (_, http):
            await register(http)
            fine = await http.post("/v1/jobs", json={"definition": "noop", "payload": nested(64)})
            assert fine.status_code == 201, fine.text
            for path, body, field in (
                ("/v1/jobs", {"definition": "noop", "payload": nested(65)}, "payload"),
                (
                    "/v1/jobs/batch",
                    {
                        "jobs": [
                            {"definition": "noop"},
                            {"definition": "noop", "payload": nested(65)},
                        ]
                    },
                    "jobs.1.payload",
                ),
                (
                    "/v1/events",
                    {
                        "entries": [
                            {
                                "Source": "ci",
                                "DetailType": "d",
                                "Detail": json.dumps({"a": nested(64)}),
                            }
                        ]
                    },
                    "entries[0].Detail",
                ),
                (
                    "/v1/events",
                    {"source": "ci", "detail-type": "d", "detail": {"a": nested(64)}},
                    "entries[0].detail",
                ),
                (
                    "/v1/schedules",
                    {
                        "name": "s",
                        "expression": "rate(1 hour)",
                        "target": {"definition": "noop", "payload": nested(65)},
                    },
                    "target.payload",
                ),
                (
                    "/v1/rules/test-pattern",
                    {"pattern": {"source": ["ci"]}, "event": nested_text(65)},
                    "event",
                ),
            ):
                problem = problem_of(await http.post(path, json=body), 422)
                assert (problem["field"], problem["rule"].removeprefix("Value error, ")) == (
                    field,
                    DEPTH_RULE,
                ), path

    asyncio.run(scenario())

    # Without the HTTP edge: the SDK on the store itself, and the CLI's --payload text.
    with DirectClient(settings) as client:
        client.register({"executor": "process", "command": ["true"]}, name="direct")
        with pytest.raises(ValidationError) as refused:
            client.submit("direct", payload={"a": nested(64)})
        assert (refused.value.field, refused.value.rule) == ("payload", DEPTH_RULE)
    deep_text = nested_text(30_000)  # past the parser's recursion limit: before, a traceback
    result = cli(settings, "submit", "direct", "--payload", deep_text)
    assert result.returncode == 2, result.stderr[-500:]
    assert result.stderr == f"error: payload: {DEPTH_RULE}\n"


def cli(settings: Settings, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKYARD_HOME": str(settings.home), "DOCKYARD_URL": settings.url}
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        capture_output=True,
        text=True,
        env={**env, **environ},
        cwd=REPO,
        timeout=60,
    )


async def store_deep_job(settings: Settings, depth: int = 300) -> str:
    """A job whose payload nests ``depth`` levels, written under the domain's checks, as one
    stored before them was."""
    dockyard = await Dockyard.open(settings)
    try:
        definition = await dockyard.definitions.register(
            {"executor": "process", "command": ["true"]}, name="deep"
        )
        valid = new_job(SubmitRequest(definition="deep"), definition, dockyard.clock.now())
        deep = nested(depth)
        (inserted,) = await dockyard.storage.jobs.insert(
            [replace(valid, payload=deep, payload_json=json.dumps(deep))]
        )
        return str(inserted.job.id)
    finally:
        await dockyard.close()


def test_a_stored_job_that_cannot_be_rendered_is_listed_with_a_marker(
    settings: Settings, server: ServerProcess
) -> None:
    """Before: ``GET /v1/jobs`` answered 500 to everyone while the job was stored."""
    deep_id = asyncio.run(store_deep_job(settings))
    with httpx.Client(base_url=server.url, headers=bearer(server.admin_token), timeout=30) as http:
        assert (
            http.post("/v1/definitions", json={"name": "plain", "command": ["true"]}).status_code
            == 201
        )
        plain = http.post("/v1/jobs", json={"definition": "plain", "payload": {"a": 1}}).json()
        page = http.get("/v1/jobs")
        assert page.status_code == 200, page.text
        listed = {job["id"]: job for job in page.json()["jobs"]}
        assert listed[deep_id]["payload"] is None
        assert listed[deep_id]["payload_error"].startswith("cannot be shown: it nests deeper")
        assert listed[plain["id"]]["payload"] == {"a": 1}
        assert listed[plain["id"]]["payload_error"] is None
        one = http.get(f"/v1/jobs/{deep_id}")
        assert one.status_code == 200 and one.json()["payload_error"], one.text

    # The CLI: over HTTP (it failed with the server's 500), and on the store itself.
    over_http = cli(
        settings, "jobs", "list", DOCKYARD_URL=server.url, DOCKYARD_TOKEN=server.admin_token
    )
    assert over_http.returncode == 0, over_http.stderr
    assert deep_id in over_http.stdout
    direct = cli(settings, "jobs", "list", "-o", "json")
    assert direct.returncode == 0, direct.stderr
    (shown,) = [job for job in json.loads(direct.stdout) if job["id"] == deep_id]
    assert shown["payload"] is None and shown["payload_error"].startswith("cannot be shown")
    described = cli(settings, "jobs", "describe", deep_id)
    assert described.returncode == 0, described.stderr
    assert "payload_error" in described.stdout


# -- 3. connections: head deadline, connection cap, follow cap, change-driven following -------


def test_connections_that_never_send_a_whole_request_head_are_closed(settings: Settings) -> None:
    """The attack: connections opened and left silent, or sent a header a byte at a time; before,
    300 of them stayed open for ever. Past the connection cap a request is answered 503."""
    limits = ServingLimits(header_timeout=0.5, max_connections=40)

    async def scenario() -> None:
        dockyard = await Dockyard.open(settings)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = ApiServer(dockyard, sock, "127.0.0.1", port, limits=limits)
        try:
            await server.start()
            await asyncio.to_thread(attack, port)
        finally:
            server.stop()
            await server.wait()
            await dockyard.close()

    def attack(port: int) -> None:
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        partial = [socket.create_connection(("127.0.0.1", port)) for _ in range(19)]
        for index, connection in enumerate(partial):
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * index)
        # 39 connections held: the 40th gets its answer, and it is 503.
        assert (
            status_of(raw_exchange(f"http://127.0.0.1:{port}", head_of("GET", "/healthz"))) == 503
        )
        started = time.monotonic()
        for connection in silent + partial:
            connection.settimeout(5)
            assert read_answer(connection) == b""  # closed by the server, nothing said
            connection.close()
        assert time.monotonic() - started < 3
        healthy = raw_exchange(
            f"http://127.0.0.1:{port}", head_of("GET", "/healthz", Connection="close")
        )
        assert status_of(healthy) == 200

    asyncio.run(scenario())


def test_a_token_follows_at_most_a_few_logs_at_once(server: ServerProcess) -> None:
    """The attack: one token opens log streams until the server has no connection left."""
    with httpx.Client(base_url=server.url, headers=bearer(server.admin_token), timeout=30) as http:
        assert (
            http.post("/v1/definitions", json={"name": "idle", "command": ["true"]}).status_code
            == 201
        )
        job_id = http.post("/v1/jobs", json={"definition": "idle"}).json()["id"]  # no worker: stays
        viewer = http.post("/v1/tokens", json={"name": "watcher", "role": "viewer"}).json()[
            "secret"
        ]

    path = f"/v1/jobs/{job_id}/logs"
    with contextlib.ExitStack() as streams, httpx.Client(base_url=server.url, timeout=30) as http:

        def follow(secret: str) -> httpx.Response:
            request = http.build_request(
                "GET", path, params={"follow": "true"}, headers=bearer(secret)
            )
            response = http.send(request, stream=True)
            streams.callback(response.close)
            return response

        opened = [follow(viewer) for _ in range(MAX_FOLLOWS_PER_TOKEN)]
        assert [response.status_code for response in opened] == [200] * MAX_FOLLOWS_PER_TOKEN
        refused = follow(viewer)
        refused.read()
        assert problem_of(refused, 429)["detail"].startswith(
            f"a token follows at most {MAX_FOLLOWS_PER_TOKEN}"
        )
        assert follow(server.admin_token).status_code == 200  # another token is not held back
        # A stream that ends gives its slot back.
        opened[0].close()

        def slot_back() -> bool:
            response = follow(viewer)
            response.close() if response.status_code != 200 else None
            return response.status_code == 200

        wait_until(slot_back, timeout=10, what="the closed stream's slot to be given back")


def test_followers_wait_on_changes_not_on_the_store(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: many followers of a job that prints nothing. Before, each read its job and
    polled the change feed five times a second (200 of them: 80 % CPU); now one watch serves
    them all, and each reads its job again only after a change."""
    followers = 50

    async def scenario() -> None:
        dockyard = await Dockyard.open(settings)
        try:
            definition = await dockyard.definitions.register(
                {"executor": "process", "command": ["true"]}, name="quiet"
            )
            job = (await dockyard.jobs.submit(SubmitRequest(definition=definition.name))).job
            counts = {"get": 0, "wait": 0}
            jobs_type, changes_type = type(dockyard.storage.jobs), type(dockyard.storage.changes)
            original_get, original_wait = jobs_type.get, changes_type.wait

            async def counted_get(self: Any, job_id: Any) -> Any:
                counts["get"] += 1
                return await original_get(self, job_id)

            async def counted_wait(self: Any, token: int, timeout: float) -> None:
                counts["wait"] += 1
                await original_wait(self, token, timeout)

            monkeypatch.setattr(jobs_type, "get", counted_get)
            monkeypatch.setattr(changes_type, "wait", counted_wait)

            received: list[list[bytes]] = [[] for _ in range(followers)]

            async def follow(into: list[bytes]) -> None:
                async for chunk in dockyard.logs.follow(job.id):
                    into.append(chunk)

            tasks = [asyncio.create_task(follow(into)) for into in received]
            await asyncio.sleep(1.5)
            # Each read its job once, and PostgreSQL's listener says "anything may have changed"
            # once it connects: one more. Before: about 8 reads per follower.
            assert counts["get"] <= 2 * followers, counts
            assert counts["wait"] <= 5, counts  # the shared watch's; before: 8 per follower
            writer = dockyard.log_store.open(job.id, 1, 1 << 20)
            writer.write(b"hello\n")
            writer.close()
            await dockyard.jobs.cancel(job.id, "done watching")
            # The cancel is a change: every follower ends at once, not at its next recheck.
            async with asyncio.timeout(follow_module.RECHECK_SECONDS - 1):
                await asyncio.gather(*tasks)
            assert received == [[b"hello\n"]] * followers
            assert not follow_module._watches  # the shared watch stopped with the last follower
        finally:
            await dockyard.close()

    asyncio.run(scenario())


# -- 4. what is open: the README and the server agree --------------------------------------------


def test_the_readme_names_exactly_the_paths_that_need_no_token(server: ServerProcess) -> None:
    """Decided: the API's description stays open (it describes routes, not data), and the README
    says which paths are open in one sentence that this test reads."""
    readme = (REPO / "README.md").read_text()
    (sentence,) = re.findall(r"Open without a token: (.*?)\n\n", readme, re.DOTALL)
    named = set(re.findall(r"`(/[^`]*)`", sentence))
    assert named == set(OPEN_PATHS) - {"/docs/oauth2-redirect"}  # part of /docs
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for path in OPEN_PATHS:
            assert anonymous.get(path).status_code == 200, path
        # Every other path the application serves is under /v1 and refuses a stranger.
        others = [path for path, _ in api_routes() if path not in OPEN_PATHS]
        assert others and all(path.startswith("/v1/") for path in others), others
        assert problem_of(anonymous.get("/v1/jobs"), 401)


def api_routes(app: FastAPI | None = None) -> list[tuple[str, Any]]:
    """``(path, route)`` for every route the application serves, included routers flattened
    whichever way this FastAPI keeps them (read, never called: no store is needed)."""
    app = app or create_app(Dockyard.__new__(Dockyard))
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:  # FastAPI before 0.16x: included routes are copied, with full paths
        return [(getattr(route, "path", ""), route) for route in app.routes]
    return [(context.path, context.original_route) for context in contexts(app.routes)]


# -- 5. TLS --------------------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made here with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is not installed")
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize("command", ["server", "up"])
def test_server_and_up_speak_https_with_a_certificate_and_its_key(
    settings: Settings, certificate: tuple[Path, Path], command: str
) -> None:
    cert, key = certificate
    port = free_port()
    env = {**os.environ, "DOCKYARD_HOME": str(settings.home), "DOCKYARD_URL": settings.url}
    # One without the other: one line, before anything starts.
    alone = subprocess.run(
        [sys.executable, "-m", "dockyard", command, "--port", str(port), "--tls-cert", str(cert)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert (alone.returncode, alone.stderr) == (
        2,
        "error: --tls-cert and --tls-key go together: give both, or neither\n",
    )
    tls_env = {**env, "DOCKYARD_TLS_CERT": str(cert), "DOCKYARD_TLS_KEY": str(key)}
    with subprocess.Popen(
        [sys.executable, "-m", "dockyard", command, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=tls_env, cwd=REPO,
    ) as process:  # fmt: skip
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            assert banner.startswith(f"Dockyard is up: https://127.0.0.1:{port} "), banner
            token = (settings.home / "token").read_text().strip()
            trusted = ssl.create_default_context(cafile=str(cert))
            with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trusted) as https:

                def answers() -> bool:
                    try:
                        return https.get("/healthz").status_code == 200
                    except httpx.ConnectError:
                        return False  # bound, not listening yet

                wait_until(answers, what="the server to answer over HTTPS")
                assert https.get("/v1/queues", headers=bearer(token)).status_code == 200
            with pytest.raises(httpx.HTTPError):  # plain HTTP is not spoken on that port
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        finally:
            process.terminate()
            process.wait(30)


# -- 6. every /v1 route names the operation it performs ----------------------------------------


def routes_without_an_operation(app: FastAPI) -> list[str]:
    return [
        f"{sorted(route.methods or ())} {path}"
        for path, route in api_routes(app)
        if isinstance(route, APIRoute)
        and path.startswith("/v1/")
        and declared_operation(route) is None
    ]


def test_every_v1_route_names_its_operation_and_one_that_does_not_is_found() -> None:
    """``test_api``'s role matrix catches a route that lets a role do too much; this catches one
    that forgot ``allowed(...)`` even where the facade still refuses (after its body is read)."""
    app = create_app(Dockyard.__new__(Dockyard))
    # The walk sees every operation the OpenAPI document lists, so the check is not vacuous.
    walked = [
        (method, path)
        for path, route in api_routes(app)
        if isinstance(route, APIRoute) and path.startswith("/v1/")
        for method in route.methods or ()
    ]
    documented = [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    ]
    assert sorted(walked) == sorted(documented)
    assert routes_without_an_operation(app) == []

    forgotten = APIRouter(prefix="/v1")

    @forgotten.get("/forgotten")
    async def forgotten_route() -> dict[str, str]:
        return {}

    app.include_router(forgotten)
    assert routes_without_an_operation(app) == ["['GET'] /v1/forgotten"]
