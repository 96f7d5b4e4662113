"""Shared fixtures: a Dockyard home in a temporary folder, a client, and real workers.

Workers are real: :class:`WorkerThread` runs the production :class:`~dockyard.runtime.Worker` on
its own event loop in a thread (so a test can give it a fake clock), and :class:`WorkerProcess`
runs ``python -m dockyard worker`` as a separate process (so a test can SIGKILL it). Both share the
store with the test's client, as a worker and a CLI on one laptop do.

Every test that uses ``settings`` runs twice: on SQLite (a file in the test's folder) and on
PostgreSQL (a schema of its own in the database at ``DOCKYARD_TEST_POSTGRES_URL``, dropped after
the test). A test marked ``sqlite_only`` inspects the SQLite file itself and runs once. Away from
CI an unreachable PostgreSQL skips its half with the reason; under ``CI=true`` it fails.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self, TypeVar

import pytest

from dockyard import Client, Definition, DirectClient
from dockyard.app import Dockyard, WorkerConfig
from dockyard.policy import ALL_EXECUTORS
from dockyard.runtime import Worker
from dockyard.settings import Settings
from dockyard.storage.postgres import with_search_path

#: ``run`` and ``runner``, for the suites that drive async ports directly.
pytest_plugins = ["tests.helpers.loops"]

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "DOCKYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
#: Schemas of test runs are named ``<prefix><pid>_<random>``; a run drops its own, and the next
#: run drops those of runs that died (runs side by side leave each other's alone).
TEST_SCHEMA_PREFIX = "dy_test_"
#: The suite's stores offer every executor kind on both backends: its process and python jobs
#: run on PostgreSQL too, where a deployment offers only docker, http and lambda unless told
#: (tests/test_executor_kinds.py checks those defaults). Given explicitly, never read from the
#: environment of the run. Their http jobs and webhooks call servers on this machine, which
#: a PostgreSQL deployment refuses unless its owner lists them (tests/test_egress.py checks that).
SUITE_ENVIRON = {
    "DOCKYARD_EXECUTORS": ",".join(ALL_EXECUTORS),
    "DOCKYARD_HTTP_ALLOWED_NETWORKS": "127.0.0.0/8",
}


T = TypeVar("T")


def suite_settings(home: Path, url: str | None = None) -> Settings:
    """The settings of a test's store (None: SQLite in ``home``), offering every executor."""
    return Settings.resolve(home=home, url=url, environ=SUITE_ENVIRON)


def dockyard_environ(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a ``dockyard`` process a test starts on ``settings``'s store: its home,
    its store and the executor kinds its workers offer (those of ``settings``)."""
    return {
        **os.environ,
        "DOCKYARD_HOME": str(settings.home),
        "DOCKYARD_URL": settings.url,
        "DOCKYARD_EXECUTORS": ",".join(settings.policy.executors),
        "DOCKYARD_HTTP_ALLOWED_NETWORKS": ",".join(settings.policy.http_allowed_networks),
        **extra,
    }


def wait_until(predicate: Callable[[], T], timeout: float = 30, what: str = "a condition") -> T:
    """Poll ``predicate`` every 20 ms until it returns something truthy, and return that.

    Only for what no event announces (a job's state as seen from another process); anything a
    call can await (``client.wait``) is awaited instead.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class FakeClock:
    """A clock that moves only when a test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


class WorkerThread:
    """A production worker on its own event loop in a background thread."""

    def __init__(self, settings: Settings, config: WorkerConfig, clock: Any = None) -> None:
        self.settings = settings
        self.config = config
        self.clock = clock
        self.worker: Worker | None = None
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="test-worker", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        if not self._ready.wait(30):
            raise TimeoutError("worker did not start")
        if self.error is not None:
            raise self.error
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:
            self.error = error
            self._ready.set()

    async def _serve(self) -> None:
        app = await Dockyard.open(self.settings, clock=self.clock)
        try:
            self._loop = asyncio.get_running_loop()
            self.worker = self._make_worker(app)
            task = asyncio.create_task(self.worker.run())
            await self.worker.started.wait()
            self._ready.set()
            await task
        finally:
            await app.close()

    def _make_worker(self, app: Dockyard) -> Worker:
        """The worker to run, on the open ``app``: a subclass may build its own."""
        return app.worker(self.config)

    def stop(self, timeout: float = 60) -> None:
        """Graceful stop (as SIGTERM does), then wait for the thread to end."""
        if self._loop is not None and self.worker is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.worker.stop)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("worker did not stop")
        if self.error is not None:
            raise self.error

    def join(self, timeout: float = 60) -> None:
        """Wait for a burst worker to finish by itself."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("worker still running")
        if self.error is not None:
            raise self.error


class WorkerProcess:
    """``python -m dockyard worker`` in its own process and process group."""

    def __init__(self, settings: Settings, *args: str, log: Path) -> None:
        self.log_path = log
        self._log = log.open("ab")
        env = dockyard_environ(settings)
        env.pop("DOCKYARD_LOG_DIR", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dockyard", "worker", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL the worker alone (its jobs' process groups live on, as after a crash)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def terminate(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        """Stop the worker if it still runs (SIGTERM, then SIGKILL) and close its log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
        if not self._log.closed:
            self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: runs on the SQLite backend only")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that depends on ``backend`` (through ``settings``) on each backend."""
    if "backend" in metafunc.fixturenames:
        only_sqlite = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("backend", ["sqlite"] if only_sqlite else ["sqlite", "postgres"])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The test PostgreSQL's URL, once it answered; skip (fail under CI=true) when it does not."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=5, autocommit=True) as conn:
            schemas = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                (TEST_SCHEMA_PREFIX + "%",),
            ).fetchall()
            for (schema,) in schemas:
                owner = schema.removeprefix(TEST_SCHEMA_PREFIX).split("_")[0]
                if not (owner.isdigit() and _pid_alive(int(owner))):  # left by a run that died
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    except psycopg.Error as error:
        reason = (
            f"PostgreSQL is unreachable at {POSTGRES_URL} ({error}); start it or set"
            " DOCKYARD_TEST_POSTGRES_URL to run the PostgreSQL half of the suite"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose search_path is a new, empty schema, dropped after the test."""
    import psycopg

    schema = f"{TEST_SCHEMA_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield with_search_path(postgres_server, schema)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        # A process the test left running could hold a lock; the next run drops what remains.
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """The store of the test's backend; None for SQLite's default file in the test's home."""
    if backend == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, store_url: str | None) -> Settings:
    return suite_settings(tmp_path / "home", store_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with DirectClient(settings) as connected:
        yield connected


@pytest.fixture
def start_worker(settings: Settings) -> Iterator[Any]:
    """``start_worker(concurrency=…, clock=…, **config)`` → a started :class:`WorkerThread`."""
    started: list[WorkerThread] = []

    def start(*, clock: Any = None, **config: Any) -> WorkerThread:
        config.setdefault("poll_seconds", 0.05)
        config.setdefault("check_seconds", 0.1)
        thread = WorkerThread(settings, WorkerConfig(**config), clock=clock).start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()


@pytest.fixture
def spawn_worker(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    """``spawn_worker("--concurrency", "4", …)`` → a running :class:`WorkerProcess`."""
    spawned: list[WorkerProcess] = []

    def spawn(*args: str) -> WorkerProcess:
        process = WorkerProcess(settings, *args, log=tmp_path / f"worker-{len(spawned)}.log")
        spawned.append(process)
        return process

    yield spawn
    for process in spawned:
        process.close()


def register_process(client: Client, name: str, *command: str, **fields: Any) -> Definition:
    """Register a process definition running ``command`` with ``fields`` (document format)."""
    return client.register({"executor": "process", "command": list(command), **fields}, name=name)


_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI=true a skipped test is a failure: a missing service must never pass as green."""
    if os.environ.get("CI") == "true" and _skipped:
        print(f"\nCI=true: {len(_skipped)} test(s) were skipped: {', '.join(_skipped)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess:
    """``python -m dockyard server`` (uvicorn, the HTTP API) on a free port of 127.0.0.1, or
    another command that serves it (``up``: the API, a worker, the scheduler and the rules)."""

    def __init__(
        self,
        settings: Settings,
        log: Path,
        *,
        command: tuple[str, ...] = ("server",),
        environ: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        env = dockyard_environ(settings, **(environ or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dockyard", *command, "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
        import httpx

        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {log.read_text()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=30, what="the server to answer /healthz")
        self.admin_token = (settings.home / "token").read_text().strip()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[ServerProcess]:
    """A real API server sharing the test's home; its first start wrote an admin token."""
    process = ServerProcess(settings, tmp_path / "server.log")
    yield process
    process.close()


# -- an S3-compatible server (moto's emulator) ------------------------------------------------

#: scripts/services starts moto's S3 server here, once for the whole run (it is an emulator of
#: S3, in memory; tests give each their own bucket).
S3_ENDPOINT = os.environ.get("DOCKYARD_TEST_S3_ENDPOINT", "http://127.0.0.1:5055")


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """The S3 emulator's URL, once it answers; skip (fail under CI=true) when it does not."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(S3_ENDPOINT, timeout=5):
            pass
    except urllib.error.HTTPError:
        pass  # it answers (a server that wants a signature says 403): it is up
    except OSError as error:
        reason = (
            f"no S3 server answers at {S3_ENDPOINT} ({error}); scripts/services starts moto's"
            " (pip install -e '.[test]' installs it), or set DOCKYARD_TEST_S3_ENDPOINT"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return S3_ENDPOINT


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new, empty bucket on the S3 emulator, and the AWS_* environment that reaches it (as a
    deployment configures boto3: endpoint, region and keys; no ~/.aws file is read). The bucket
    is emptied and removed after the test (the emulator keeps everything in memory)."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dockyard-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dockyard-test-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    import boto3

    bucket = f"dockyard-test-{uuid.uuid4().hex[:16]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    yield bucket
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=bucket)
    client.close()


# -- a Docker engine ----------------------------------------------------------------------------

BUSYBOX_IMAGE = "local/busybox:1"
_BUSYBOX_APPLETS = ("sh", "echo", "sleep", "cat", "head", "tr", "env", "ls", "id", "true", "false")


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """The local Docker engine's client; skip (fail under CI=true) when no engine answers."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as error:
        reason = f"no Docker engine answers ({error}); .ci/run starts one (dockerd, as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return client


def busybox_tar(scripts: dict[str, str] | None = None) -> bytes:
    """A root filesystem of busybox-static and its applets, plus ``scripts`` (path → text)."""
    import io
    import tarfile

    busybox = Path("/bin/busybox")
    if not busybox.exists():
        reason = "busybox-static is not installed (/bin/busybox); .ci/run installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        tar.add(busybox, arcname="bin/busybox")
        for applet in _BUSYBOX_APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        tmp = tarfile.TarInfo("tmp")
        tmp.type = tarfile.DIRTYPE
        tmp.mode = 0o1777
        tar.addfile(tmp)
        for path, text in (scripts or {}).items():
            data = text.encode()
            entry = tarfile.TarInfo(path.lstrip("/"))
            entry.size = len(data)
            entry.mode = 0o755
            tar.addfile(entry, io.BytesIO(data))
    return archive.getvalue()


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any) -> str:
    """``local/busybox:1``: an image made here from Debian's busybox-static, with no download."""
    repository, tag = BUSYBOX_IMAGE.split(":")
    docker_client.api.import_image_from_data(busybox_tar(), repository=repository, tag=tag)
    return BUSYBOX_IMAGE


def _serve_registry(
    folder: Path, auth: tuple[str, str] | None = None, notify: tuple[str, str] | None = None
) -> Iterator[str]:
    """Debian's Docker registry (Distribution 2.8) on a free port, with htpasswd auth when
    ``auth`` is given, notifying ``notify``'s URL with its bearer token of every push and pull
    when it is given: yields its ``host:port``."""
    import shutil
    import urllib.error
    import urllib.request

    binary = shutil.which("docker-registry")
    if binary is None:
        reason = "docker-registry is not installed; .ci/run installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    folder.mkdir(parents=True, exist_ok=True)
    address = f"127.0.0.1:{free_port()}"
    config = (
        "version: 0.1\n"
        f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: {address}}}\n"
        "log: {level: warn}\n"
    )
    if auth is not None:
        import bcrypt

        user, password = auth
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        (folder / "htpasswd").write_text(f"{user}:{hashed}\n")
        config += f"auth: {{htpasswd: {{realm: test, path: {folder / 'htpasswd'}}}}}\n"
    if notify is not None:
        url, token = notify
        config += (
            "notifications:\n  endpoints:\n"
            f"    - {{name: dockyard, url: '{url}', timeout: 2s, threshold: 3, backoff: 100ms,"
            f" headers: {{Authorization: ['Bearer {token}']}}}}\n"
        )
    (folder / "registry.yml").write_text(config)
    log = (folder / "registry.log").open("wb")
    proc = subprocess.Popen(
        [binary, "serve", str(folder / "registry.yml")], stdout=log, stderr=subprocess.STDOUT
    )

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=1):
                return True
        except urllib.error.HTTPError as error:
            return error.code == 401  # up, and asking for credentials
        except OSError:
            return False

    try:
        wait_until(answers, what="the registry to answer")
        yield address
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A registry anyone may push to and pull from: its ``host:port``."""
    yield from _serve_registry(tmp_path / "registry")


REGISTRY_AUTH = ("ci", "s3cret-pass")


@pytest.fixture
def notifying_registry(tmp_path: Path) -> Iterator[Any]:
    """``notifying_registry(url, token)`` → the ``host:port`` of a registry that POSTs its
    notifications to ``url`` with ``Authorization: Bearer token``."""
    started: list[Iterator[str]] = []

    def start(url: str, token: str) -> str:
        serving = _serve_registry(tmp_path / f"registry-{len(started)}", notify=(url, token))
        started.append(serving)
        return next(serving)

    yield start
    for serving in started:
        for _ in serving:  # runs the generator's clean-up
            pass


@pytest.fixture
def private_registry(tmp_path: Path) -> Iterator[str]:
    """A registry that wants the login REGISTRY_AUTH: its ``host:port``."""
    yield from _serve_registry(tmp_path / "private-registry", REGISTRY_AUTH)


# -- a scripted HTTP server ----------------------------------------------------------------------

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpServer:
    url: str
    received: list[Received] = field(default_factory=list)
    #: What to answer next, in order; then ``default``.
    answers: list[Answer] = field(default_factory=list)
    default: Callable[[Received], Answer] = lambda _: (
        200,
        {"Content-Type": "application/json"},
        b'{"ok": true}',
    )
    in_flight: int = 0
    most_in_flight: int = 0
    delay: float = 0.0
    #: Hold every request until this many are in flight at once (or ``hold_seconds`` pass): a
    #: test of concurrency awaits the overlap instead of racing a timer.
    hold_until: int = 0
    hold_seconds: float = 10.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """A real HTTP server on a free port that records each request and answers as scripted."""
    state: dict[str, HttpServer] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            server = state["server"]
            length = int(self.headers.get("Content-Length") or 0)
            request = Received(
                self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
            )
            with server.lock:
                server.received.append(request)
                server.in_flight += 1
                server.most_in_flight = max(server.most_in_flight, server.in_flight)
                answer = server.answers.pop(0) if server.answers else None
                server.arrived.notify_all()
                server.arrived.wait_for(
                    lambda: server.most_in_flight >= server.hold_until, timeout=server.hold_seconds
                )
            try:
                if server.delay:
                    time.sleep(server.delay)  # the server is slow: that is what is tested
                status, headers, body = answer or server.default(request)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            finally:
                with server.lock:
                    server.in_flight -= 1

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    class Threading(ThreadingHTTPServer):
        request_queue_size = 128  # socketserver's default backlog of 5 would queue connections

    httpd = Threading(("127.0.0.1", 0), Handler)
    state["server"] = HttpServer(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state["server"]
    httpd.shutdown()
    httpd.server_close()


#: ECR's own event for a push, as EventBridge delivers it: aws-semantics.md §6.1, verbatim (the
#: AWS guide's digest is cut short; a real one has 64 hex digits).
ECR_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "13cde686-328b-6117-af20-0e5566167482",
    "detail-type": "ECR Image Action",
    "source": "aws.ecr",
    "account": "123456789012",
    "time": "2019-11-16T01:54:34Z",
    "region": "us-west-2",
    "resources": [],
    "detail": {
        "result": "SUCCESS",
        "repository-name": "my-repository-name",
        "image-digest": "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
        "action-type": "PUSH",
        "image-tag": "latest",
    },
}


def each_transport(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Client]:
    """For a fixture with ``params=["direct", "http"]``: a client on the store itself, or over a
    real HTTP server (the ``server`` fixture), so that every operation runs on both."""
    if request.param == "direct":
        with DirectClient(settings) as direct:
            yield direct
        return
    from dockyard import HttpClient

    server: ServerProcess = request.getfixturevalue("server")
    with HttpClient(server.url, token=server.admin_token) as http:
        yield http
