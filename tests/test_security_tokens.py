"""Issue 26, tokens and what the CLI does with them: each test sends the attack of its finding.

- The registry webhook needed a code-running operator token: a *publisher* token now puts events
  and does nothing else.
- Tokens never expired: they take an expiry (refused after it, 401 "expired") and keep their
  last use, written about once a minute, not per request.
- No audit trail: every change made through the facade records the token (by name) that made
  it, for admins to read (API, CLI, SDK); direct access records the local owner.
- Stored text broke and reached terminals: a cancel reason ``[/oops]`` crashed ``jobs describe``
  and escape sequences went through; stored text is now shown without markup or controls.
- The CLI sent the home's admin token to any configured URL: the token file is bound to the
  server that wrote it.
- The PostgreSQL password was printed in errors; the home, store and logs were world-readable.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

import dockyard
from dockyard import AuthenticationError, PermissionDeniedError
from dockyard.app import Dockyard
from dockyard.cli.text import LogPrinter, safe_text
from dockyard.domain.tokens import Role, Token, generate_secret, hash_secret
from dockyard.errors import StorageError
from dockyard.logs import LocalLogStore
from dockyard.settings import Settings, redacted_url, same_server
from dockyard.storage import open_storage
from tests.conftest import FakeClock, HttpServer, ServerProcess, register_process
from tests.helpers.commands import cli_as


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=bearer(server.admin_token), timeout=60) as http:
        yield http


def create_token(api: httpx.Client, role: str, name: str) -> tuple[str, str]:
    response = api.post("/v1/tokens", json={"name": name, "role": role})
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["secret"]


# -- a publisher token for the registry (High) ----------------------------------------------------

REGISTRY_PULL = {
    "events": [
        {
            "action": "pull",
            "target": {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": "sha256:" + "a" * 64,
                "repository": "hello-world",
                "tag": "latest",
            },
            "request": {"host": "registry.local:5000"},
        }
    ]
}


def test_a_publisher_token_puts_events_and_can_do_nothing_else(
    server: ServerProcess, api: httpx.Client
) -> None:
    """The credential a registry keeps in its config: before, only an operator token (which
    runs code on the workers) could post registry notifications."""
    _, secret = create_token(api, "publisher", "registry")
    with httpx.Client(base_url=server.url, headers=bearer(secret), timeout=30) as publisher:
        put = publisher.post(
            "/v1/events",
            json={"entries": [{"Source": "ci", "DetailType": "Built", "Detail": "{}"}]},
        )
        assert put.status_code == 200, put.text
        notified = publisher.post(
            "/v1/webhooks/registry",
            content=json.dumps(REGISTRY_PULL),
            headers={"Content-Type": "application/vnd.docker.distribution.events.v2+json"},
        )
        assert notified.status_code == 200, notified.text
        denied = [
            ("GET", "/v1/jobs", None),
            ("POST", "/v1/jobs", {"definition": "x"}),
            ("POST", "/v1/definitions", {"name": "x", "executor": "process", "command": ["id"]}),
            ("GET", "/v1/events", None),
            ("GET", "/v1/tokens", None),
            ("POST", "/v1/tokens", {"name": "mine", "role": "admin"}),
        ]
        for method, path, body in denied:
            response = publisher.request(method, path, json=body)
            assert response.status_code == 403, (method, path, response.text)


def test_publisher_is_a_role_of_the_facade_and_the_cli(settings: Settings) -> None:
    async def scenario() -> None:
        app = await Dockyard.open(settings)
        try:
            token, _ = await app.tokens.create("registry", "publisher")
            assert token.role is Role.PUBLISHER
            publisher = app.acting_as(token)
            (event,) = await publisher.events.put([{"source": "ci", "detail-type": "Built"}])
            assert event.source == "ci"
            with pytest.raises(PermissionDeniedError):
                await publisher.jobs.list()
            with pytest.raises(PermissionDeniedError):
                await publisher.definitions.register(
                    {"executor": "process", "command": ["id"]}, "x"
                )
        finally:
            await app.close()

    asyncio.run(scenario())
    created = cli_as(
        settings.home, settings.url, "tokens", "create", "--role", "publisher", "--name", "hub",
        "-o", "json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["role"] == "publisher"


# -- expiry and last use (Medium) -----------------------------------------------------------------


def test_an_expired_token_is_refused_and_the_last_use_is_written_once_a_minute(
    settings: Settings,
) -> None:
    clock = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))

    async def scenario() -> None:
        app = await Dockyard.open(settings, clock=clock)
        try:
            token, secret = await app.tokens.create("ci", "operator", expires_in=timedelta(hours=1))
            assert token.expires_at == clock.now() + timedelta(hours=1)

            async def last_used() -> datetime | None:
                return next(t for t in await app.tokens.list() if t.id == token.id).last_used_at

            assert await last_used() is None
            first_use = clock.now()
            assert (await app.authenticate(secret)).id == token.id
            assert await last_used() == first_use
            for _ in range(5):  # a busy token, read from the store each time (no cache)
                clock.advance(10)
                app._core.token_cache.clear()
                await app.authenticate(secret)
            assert await last_used() == first_use  # 50 s later: not written again
            clock.advance(15)
            app._core.token_cache.clear()
            await app.authenticate(secret)
            assert await last_used() == clock.now()  # over a minute later: written

            clock.advance(3600)
            with pytest.raises(AuthenticationError, match="expired"):
                await app.authenticate(secret)  # cached or not, an expiry is checked
            app._core.token_cache.clear()
            with pytest.raises(AuthenticationError, match="expired"):
                await app.authenticate(secret)
        finally:
            await app.close()

    asyncio.run(scenario())


def test_an_expiry_must_be_one_future_time(settings: Settings) -> None:
    with dockyard.connect(settings.url, home=settings.home) as client:
        now = datetime.now(UTC)
        with pytest.raises(dockyard.ValidationError, match="future"):
            client.create_token("x", "viewer", expires_at=now - timedelta(seconds=1))
        with pytest.raises(dockyard.ValidationError, match="not both"):
            client.create_token(
                "x", "viewer", expires_at=now + timedelta(days=1), expires_in=timedelta(days=1)
            )
        with pytest.raises(dockyard.ValidationError, match="from 1 second to 3650 days"):
            client.create_token("x", "viewer", expires_in=timedelta(0))
        with pytest.raises(dockyard.ValidationError, match="from 1 second to 3650 days"):
            client.create_token("x", "viewer", expires_in=timedelta(days=3651))
        token, _ = client.create_token("y", "viewer", expires_at=now + timedelta(days=2))
        assert token.expires_at == now + timedelta(days=2)


def test_an_expired_token_gets_401_from_the_server(
    settings: Settings, server: ServerProcess
) -> None:
    secret = generate_secret()
    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = Token(id="expired1", name="old", role=Role.ADMIN, created_at=past, expires_at=past)

    async def insert() -> None:
        app = await Dockyard.open(settings)
        try:
            await app.storage.tokens.insert(expired, hash_secret(secret))
        finally:
            await app.close()

    asyncio.run(insert())
    with httpx.Client(base_url=server.url, headers=bearer(secret), timeout=30) as attacker:
        for method, path in (("GET", "/v1/jobs"), ("POST", "/v1/tokens")):
            response = attacker.request(method, path, json={"name": "new", "role": "admin"})
            assert response.status_code == 401, response.text
            assert "expired" in response.json()["detail"]


def test_the_cli_creates_expiring_tokens_and_lists_expiry_and_last_use(
    settings: Settings,
) -> None:
    created = cli_as(
        settings.home, settings.url, "tokens", "create", "--role", "viewer", "--name", "dash",
        "--expires-in", "30d", "-o", "json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    expires_at = datetime.fromisoformat(json.loads(created.stdout)["expires_at"])
    assert abs(expires_at - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    at = cli_as(
        settings.home, settings.url, "tokens", "create", "--role", "viewer", "--name", "until",
        "--expires-at", "2099-12-31T18:00:00+00:00",
    )  # fmt: skip
    assert at.returncode == 0, at.stderr
    bad = cli_as(
        settings.home, settings.url, "tokens", "create", "--role", "viewer", "--name", "x",
        "--expires-in", "soon",
    )  # fmt: skip
    assert bad.returncode == 2 and "90s, 15m, 12h, 30d or 8w" in bad.stderr
    listed = json.loads(cli_as(settings.home, settings.url, "tokens", "list", "-o", "json").stdout)
    assert [t["name"] for t in listed] == ["dash", "until"]
    assert listed[1]["expires_at"].startswith("2099-12-31T18:00:00")
    assert all("last_used_at" in t for t in listed)
    table = cli_as(settings.home, settings.url, "tokens", "list").stdout
    assert "EXPIRES" in table and "LAST USED" in table and "2099-12-31" in table


# -- the audit trail (Low) ------------------------------------------------------------------------


def test_every_change_records_its_token_and_target_but_no_payload_or_secret(
    settings: Settings,
) -> None:
    with dockyard.connect(settings.url, home=settings.home) as client:
        register_process(client, "report", "true")
        job = client.submit("report", payload={"card": "4111-1111-1111-1111"})
        client.cancel(job.id, reason="wrong card")
        client.list()  # reads are not recorded
        client.get(job.id)
        token, secret = client.create_token("ci", "operator")
        client.pause_queue("nightly")
        entries = client.audit()
    assert [(e.operation, e.target) for e in entries] == [
        ("queues.set_paused", "nightly"),
        ("tokens.create", token.id),
        ("jobs.cancel", job.id),
        ("jobs.submit_many", job.id),  # the SDK submits in batches
        ("definitions.register", "report:1"),
    ]
    assert {(e.token_id, e.role) for e in entries} == {("local", Role.ADMIN)}
    written = repr(entries)
    assert "4111" not in written and secret not in written and "wrong card" not in written


def test_admins_read_the_trail_over_http_others_may_not(
    server: ServerProcess, api: httpx.Client
) -> None:
    _, operator = create_token(api, "operator", "billing-app")
    _, viewer = create_token(api, "viewer", "dashboards")
    with httpx.Client(base_url=server.url, headers=bearer(operator), timeout=30) as http:
        queue = http.post("/v1/queues/nightly/pause")
        assert queue.status_code == 200, queue.text
        for secret in (operator, viewer):
            denied = http.get("/v1/audit", headers=bearer(secret))
            assert denied.status_code == 403, denied.text
    page = api.get("/v1/audit", params={"limit": 1})
    assert page.status_code == 200, page.text
    (newest,) = page.json()["entries"]
    assert (newest["token_name"], newest["role"], newest["operation"], newest["target"]) == (
        "billing-app",
        "operator",
        "queues.set_paused",
        "nightly",
    )
    older = api.get("/v1/audit", params={"before": page.json()["next_cursor"]}).json()
    assert [e["operation"] for e in older["entries"]] == ["tokens.create", "tokens.create"]
    assert older["next_cursor"] is None
    with dockyard.connect(server.url, token=server.admin_token) as admin:
        assert [e.operation for e in admin.audit(limit=2)] == ["queues.set_paused", "tokens.create"]
    with dockyard.connect(server.url, token=viewer) as reader, pytest.raises(PermissionDeniedError):
        reader.audit()


def test_the_cli_lists_the_trail(settings: Settings) -> None:
    assert cli_as(settings.home, settings.url, "queues", "pause", "nightly").returncode == 0
    listed = cli_as(settings.home, settings.url, "audit", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert (entry["token_id"], entry["operation"], entry["target"]) == (
        "local",
        "queues.set_paused",
        "nightly",
    )
    table = cli_as(settings.home, settings.url, "audit", "list").stdout
    assert "queues.set_paused" in table and "nightly" in table


# -- stored text in the terminal (Low) ------------------------------------------------------------

ATTACK = "[/oops] \x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x1b[1;1H\u202egnp.exe\x9b31m done"


def test_a_cancel_reason_with_markup_and_escapes_is_shown_as_plain_text(
    settings: Settings,
) -> None:
    """``[/oops]`` made rich raise for every user who described the job; the escapes wrote the
    clipboard (OSC 52), cleared the screen and reversed the text of every user's terminal."""
    with dockyard.connect(settings.url, home=settings.home) as client:
        register_process(client, "report", "true")
        job = client.submit("report")
        client.cancel(job.id, reason=ATTACK)
    for args in (("jobs", "describe", job.id), ("jobs", "list")):
        shown = cli_as(settings.home, settings.url, *args)
        assert shown.returncode == 0, shown.stderr
        assert "[/oops]" in shown.stdout and "gnp.exe" in shown.stdout
        assert not any(ch in shown.stdout for ch in "\x1b\x07\x9b\u202e"), repr(shown.stdout)
    as_json = json.loads(
        cli_as(settings.home, settings.url, "jobs", "describe", job.id, "-o", "json").stdout
    )
    assert as_json["status_reason"] == ATTACK  # JSON keeps the text exactly (escaped)


def test_safe_text_removes_sequences_and_controls_but_keeps_tabs_and_newlines() -> None:
    assert safe_text(ATTACK) == "[/oops] gnp.exe31m done"
    assert safe_text("a\tb\nc\r\x00\x7fd") == "a\tb\ncd"


class FakeTerminal(io.TextIOWrapper):
    """A text stream over bytes that says whether it is a terminal."""

    def __init__(self, terminal: bool) -> None:
        self.bytes = io.BytesIO()
        super().__init__(self.bytes, encoding="utf-8", write_through=True)
        self._terminal = terminal

    def isatty(self) -> bool:
        return self._terminal


def test_a_log_is_cleaned_for_a_terminal_and_exact_when_piped() -> None:
    chunks = ["héllo \x1b]0;pwned\x07".encode(), b"\xc3", b"\xa9t\xc3\xa9\n"]  # é split in two
    terminal = FakeTerminal(terminal=True)
    printer = LogPrinter(terminal)
    for chunk in chunks:
        printer.write(chunk)
    assert terminal.bytes.getvalue().decode() == "héllo été\n"
    piped = FakeTerminal(terminal=False)
    printer = LogPrinter(piped)
    for chunk in chunks:
        printer.write(chunk)
    assert piped.bytes.getvalue() == b"".join(chunks)


# -- the home's token goes to its own server only (Low) -------------------------------------------


def test_the_home_token_is_not_sent_to_another_server(
    tmp_path: Path, http_server: HttpServer
) -> None:
    """An attacker who gets DOCKYARD_URL pointed at their server (a project's .envrc, a shell
    profile) received the local admin token with the first command."""
    home = tmp_path / "home"
    settings = Settings.resolve(home=home, environ={})

    async def first_start() -> str:
        app = await Dockyard.open(settings)
        try:
            secret = await app.ensure_admin_token("http://127.0.0.1:8000")
            assert secret is not None
            return secret
        finally:
            await app.close()

    admin = asyncio.run(first_start())
    assert (home / "token.url").read_text() == "http://127.0.0.1:8000\n"
    assert stat.S_IMODE((home / "token.url").stat().st_mode) == 0o600
    http_server.default = lambda _: (
        401,
        {"Content-Type": "application/problem+json"},
        b'{"status": 401, "title": "Unauthorized", "detail": "a bearer token is required"}',
    )
    attempt = cli_as(home, http_server.url, "jobs", "list")
    assert attempt.returncode == 2
    assert [r.headers.get("Authorization") for r in http_server.received] == [None]
    assert f"{home / 'token'} belongs to http://127.0.0.1:8000" in attempt.stderr
    assert admin not in attempt.stderr

    # A token given explicitly is the user's choice: it is sent.
    cli_as(home, http_server.url, "jobs", "list", token="dy_explicit")
    assert http_server.received[-1].headers.get("Authorization") == "Bearer dy_explicit"
    # The server it was written for gets it, under any loopback name.
    for url in ("http://127.0.0.1:8000", "http://localhost:8000/"):
        assert Settings.resolve(home=home, url=url, environ={}).resolved_token() == admin


def test_a_token_file_without_its_server_goes_to_this_machine_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "token").write_text("dy_old\n")  # written by a version that did not bind it
    resolve = Settings.resolve
    assert resolve(home=home, url="http://127.0.0.1:9000", environ={}).resolved_token() == "dy_old"
    assert resolve(home=home, url="http://[::1]:9000", environ={}).resolved_token() == "dy_old"
    far = resolve(home=home, url="http://jobs.example.com:8000", environ={})
    assert far.resolved_token() is None
    assert "for servers on this machine only" in (far.home_token_refused() or "")
    explicit = resolve(home=home, url="http://jobs.example.com", token="dy_mine", environ={})
    assert explicit.resolved_token() == "dy_mine"


def test_each_server_start_binds_the_token_file_to_its_url(settings: Settings) -> None:
    async def start(url: str) -> str | None:
        app = await Dockyard.open(settings)
        try:
            return await app.ensure_admin_token(url)
        finally:
            await app.close()

    assert asyncio.run(start("http://127.0.0.1:8000")) is not None
    assert asyncio.run(start("http://0.0.0.0:9000")) is None  # the same token, a new server
    assert settings.token_url_file.read_text() == "http://0.0.0.0:9000\n"
    assert Settings.resolve(
        home=settings.home, url="http://127.0.0.1:9000", environ={}
    ).resolved_token()
    assert not Settings.resolve(
        home=settings.home, url="http://127.0.0.1:8000", environ={}
    ).resolved_token()


@pytest.mark.parametrize(
    ("bound", "url", "same"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/", True),
        ("http://127.0.0.1:8000", "http://localhost:8000", True),
        ("http://0.0.0.0:8000", "http://127.0.0.1:8000", True),
        ("http://[::]:8000", "http://[::1]:8000", True),
        ("http://jobs.internal:80", "http://jobs.internal", True),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8001", False),
        ("http://127.0.0.1:8000", "https://127.0.0.1:8000", False),
        ("http://0.0.0.0:8000", "http://evil.example:8000", False),
        ("http://10.0.0.5:8000", "http://127.0.0.1:8000", False),
        ("http://127.0.0.1:8000", "http://127.0.0.1:x", False),
    ],
)
def test_same_server(bound: str, url: str, same: bool) -> None:
    assert same_server(bound, url) is same


# -- the PostgreSQL password in messages (Low) ----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://dy:hunter2@db:5432/jobs", "postgresql://dy:***@db:5432/jobs"),
        ("postgresql://dy:hun@ter2@db/jobs", "postgresql://dy:***@db/jobs"),
        ("postgresql://dy:hun/ter2@db/jobs", "postgresql://dy:***@db/jobs"),
        ("postgresql://dy@db/jobs?password=hunter2&sslmode=require",
         "postgresql://dy@db/jobs?password=***&sslmode=require"),
        ("postgresql://db/jobs", "postgresql://db/jobs"),
        ("sqlite:////srv/dockyard.db", "sqlite:////srv/dockyard.db"),
    ],
)  # fmt: skip
def test_redacted_url(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def test_errors_do_not_print_the_store_password(tmp_path: Path, postgres_server: str) -> None:
    home = tmp_path / "home"
    typo = cli_as(home, "postgresq://dockyard:hunter2@127.0.0.1/jobs", "jobs", "list")
    assert typo.returncode == 2 and "hunter2" not in typo.stderr
    assert "postgresq://dockyard:***@127.0.0.1/jobs" in typo.stderr
    # A reachable server (trust auth ignores the password) and a schema that does not exist.
    host = postgres_server.split("@", 1)[1]
    url = f"postgresql://postgres:hunter2@{host}?options=-csearch_path%3Dno_such_schema_26"
    missing = cli_as(home, url, "jobs", "list")
    assert missing.returncode == 2 and "hunter2" not in missing.stderr, missing.stderr

    async def read_unmigrated() -> str:
        store = open_storage(url)
        try:
            with pytest.raises(StorageError) as raised:
                await store.tokens.all()
            return str(raised.value)
        finally:
            await store.close()

    message = asyncio.run(read_unmigrated())
    assert "no schema on the search_path" in message and "hunter2" not in message
    assert "postgres:***@" in message
    unreachable = cli_as(home, "postgresql://postgres:hunter2@127.0.0.1:1/test", "jobs", "list")
    assert unreachable.returncode == 2 and "hunter2" not in unreachable.stderr


# -- files only their owner may read (Low) --------------------------------------------------------


def test_the_home_store_logs_and_token_are_private_with_umask_022(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings.resolve(home=home, environ={})
    previous = os.umask(0o022)
    try:

        async def first_start() -> None:
            app = await Dockyard.open(settings)
            try:
                await app.ensure_admin_token("http://127.0.0.1:8000")
            finally:
                await app.close()

        asyncio.run(first_start())
        writer = LocalLogStore(settings.log_dir).open("job-1", 1, 1024)
        writer.write(b"PGPASSWORD=hunter2\n")
        writer.close()
    finally:
        os.umask(previous)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(home) == 0o700
    assert mode(home / "logs") == 0o700 and mode(home / "logs" / "job-1") == 0o700
    files = [home / "dockyard.db", home / "token", home / "token.url", home / "logs/job-1/1.log"]
    files += [path for path in home.glob("dockyard.db-*")]  # -wal and -shm, while they last
    assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
