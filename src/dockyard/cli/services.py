"""``dockyard worker``, ``server``, ``up``, ``scheduler`` and ``db upgrade``: the long-running side.

Thin over the runtime: each command parses its options, opens the facade, builds its services
(the API server, a worker, the scheduler, the rules engine) and hands them to one
:class:`Supervisor`, which starts them, stops them all on SIGTERM or SIGINT, and raises the
first error. The API server is adapted to the service contract here, because the runtime does
not import the API; it speaks HTTPS when ``server`` or ``up`` is given a certificate and its key
(``--tls-cert``/``--tls-key``), checked before anything starts so that a mistake is one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dockyard.app import Dockyard, Service, Supervisor, WorkerConfig, upgrade_store
from dockyard.cli.context import CliContext, pass_cli
from dockyard.errors import DockyardError, ValidationError
from dockyard.policy import ALL_EXECUTORS
from dockyard.settings import Settings, redacted_url

if TYPE_CHECKING:
    from dockyard.api.serving import ServingLimits, Tls

__all__ = ["ApiServer", "db", "scheduler", "server", "up", "worker"]

#: The banner's last line.
_STOP_HINT = "Submit from another shell: dockyard submit NAME --follow. Stop with Ctrl-C."


def _worker_options(fn: click.decorators.FC) -> click.decorators.FC:
    options = [
        click.option(
            "--queues",
            envvar="DOCKYARD_WORKER_QUEUES",
            show_envvar=True,
            help="Comma-separated queues to take jobs from [all].",
        ),
        click.option(
            "--concurrency",
            type=int,
            default=4,
            envvar="DOCKYARD_WORKER_CONCURRENCY",
            show_envvar=True,
            help="Jobs run at once.",
        ),
        click.option(
            "--lease",
            type=float,
            default=30.0,
            envvar="DOCKYARD_WORKER_LEASE",
            show_envvar=True,
            help="Seconds a job stays claimed without a heartbeat.",
        ),
        click.option(
            "--shutdown-grace",
            type=float,
            default=30.0,
            envvar="DOCKYARD_WORKER_SHUTDOWN_GRACE",
            show_envvar=True,
            help="Seconds running jobs get to finish on SIGTERM before they are handed back.",
        ),
        click.option(
            "--executors",
            envvar="DOCKYARD_EXECUTORS",
            show_envvar=True,
            metavar="KINDS",
            help=f"Comma-separated executor kinds to offer ({', '.join(ALL_EXECUTORS)}); the"
            " worker claims only jobs of these kinds [every kind on SQLite, docker,http,lambda"
            " on PostgreSQL: process and python run code on the worker's host].",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _log_at(level: int) -> None:
    """Log to stderr from ``level`` up, each line with its time and logger."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def _config(
    queues: str | None,
    concurrency: int,
    lease: float,
    shutdown_grace: float,
    burst: bool,
    executors: str | None = None,
) -> WorkerConfig:
    return WorkerConfig(
        queues=None if not queues else tuple(q.strip() for q in queues.split(",") if q.strip()),
        concurrency=concurrency,
        lease_seconds=lease,
        shutdown_grace=shutdown_grace,
        burst=burst,
        executors=_executors(executors),
    )


def _executors(value: str | None) -> tuple[str, ...] | None:
    """The kinds ``--executors`` names (None when not given: the settings' policy decides)."""
    if value is None:
        return None
    kinds = tuple(kind.strip() for kind in value.split(",") if kind.strip())
    known = ", ".join(ALL_EXECUTORS)
    for kind in kinds:
        if kind not in ALL_EXECUTORS:
            raise ValidationError("--executors", f"{kind!r} is not an executor kind ({known})")
    if not kinds:
        raise ValidationError("--executors", f"name at least one of {known}")
    return kinds


def _listen(host: str, port: int) -> socket.socket:
    """Bind the API's socket here, so that a taken port is one clear error, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it. uvicorn's own sockets get it from asyncio, but not one
    # handed over: without it each answer waited ~40 ms for the client's delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise DockyardError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return sock


def _tls(certificate: str | None, key: str | None) -> Tls | None:
    """The certificate and key to serve HTTPS with, once they load; None for plain HTTP."""
    if certificate is None and key is None:
        return None
    if certificate is None or key is None:
        raise DockyardError("--tls-cert and --tls-key go together: give both, or neither")
    from dockyard.api.serving import Tls

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certificate, key)
    except OSError as error:  # ssl.SSLError included
        reason = error.strerror or str(error)
        raise DockyardError(f"cannot serve TLS with {certificate} and {key}: {reason}") from None
    return Tls(certificate=Path(certificate), key=Path(key))


class ApiServer(Service):
    """The HTTP API (uvicorn on a socket already bound) as a service: started once it accepts
    connections, stopped by asking uvicorn to exit (it gives requests in flight 5 s).

    FastAPI and uvicorn are imported here, not at the top: they take about 0.3 s and 25 MiB to
    import, which ``dockyard worker`` and every other command would otherwise pay for nothing.
    """

    name = "api server"

    def __init__(
        self,
        app: Dockyard,
        sock: socket.socket,
        host: str,
        port: int,
        *,
        tls: Tls | None = None,
        limits: ServingLimits | None = None,
    ) -> None:
        super().__init__()
        import uvicorn

        from dockyard.api import create_app
        from dockyard.api.serving import ServingLimits, server_config

        announce = self._announce_started

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield  # the supervisor's handlers stop every service, this one included

            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                if self.started:
                    announce()

        config = server_config(
            create_app(app), host=host, port=port, limits=limits or ServingLimits(), tls=tls
        )
        self._server = Server(config)
        self._socket = sock

    def _on_stop(self) -> None:
        self._server.should_exit = True

    async def _serve(self) -> None:
        try:
            await self._server.serve(sockets=[self._socket])
        except SystemExit as exit:  # uvicorn's answer to a failed startup
            raise DockyardError(f"the API server did not start (exit status {exit.code})") from None
        finally:
            self._socket.close()


async def _serve(
    settings: Settings,
    config: WorkerConfig | None,
    listen: tuple[str, int] | None,
    banner: bool,
    *,
    schedules: bool = False,
    tls: Tls | None = None,
) -> None:
    """Open the store, run the services asked for under one supervisor, close the store."""
    app = await Dockyard.open(settings)
    try:
        services: list[Service] = []
        lines: list[str] = []
        if listen is not None:
            host, port = listen
            # Bound first, so that a taken port is the one error before anything else happens.
            server = ApiServer(app, _listen(host, port), host, port, tls=tls)
            scheme = "http" if tls is None else "https"
            url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
            secret = await app.ensure_admin_token(url)
            services.append(server)
            created = "created an admin token in" if secret else "admin token in"
            lines += [
                f"Dockyard is up: {url} (API docs at /docs)",
                f"  home {settings.home}, store {redacted_url(settings.url)}",
                f"  {created} {settings.token_file} (mode 0600)",
            ]
        if config is not None:
            worker = app.worker(config)
            services.append(worker)
            executors = f"executors on: {', '.join(worker.executors)}"
            lines.append(f"  a worker runs {config.concurrency} jobs at once; {executors}")
            if not banner:
                click.echo(f"Dockyard worker {worker.id}: {executors}")
        if schedules:
            services += [app.scheduler(), app.rules_engine()]
            lines += [
                "  the scheduler fires schedules (one leader among all processes)",
                "  the rules engine routes events to their rules' targets (one leader)",
            ]
        if banner:
            for line in [*lines, _STOP_HINT]:
                click.echo(line)
        await Supervisor(services).run()
    finally:
        await app.close()


def _listen_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option(
        "--tls-key",
        envvar="DOCKYARD_TLS_KEY",
        show_envvar=True,
        metavar="PATH",
        help="The private key of --tls-cert (PEM).",
    )(fn)
    fn = click.option(
        "--tls-cert",
        envvar="DOCKYARD_TLS_CERT",
        show_envvar=True,
        metavar="PATH",
        help="Serve HTTPS with this certificate (PEM, with its chain); needs --tls-key.",
    )(fn)
    fn = click.option(
        "--port", type=int, default=8000, envvar="DOCKYARD_PORT", show_envvar=True, help="API port."
    )(fn)
    return click.option(
        "--host",
        default="127.0.0.1",
        envvar="DOCKYARD_HOST",
        show_envvar=True,
        help="Address the API listens on (0.0.0.0 for every interface).",
    )(fn)


@click.command()
@_worker_options
@click.option("--burst", is_flag=True, help="Exit once nothing is runnable.")
@pass_cli
def worker(
    cli: CliContext,
    queues: str | None,
    concurrency: int,
    lease: float,
    shutdown_grace: float,
    executors: str | None,
    burst: bool,
) -> None:
    """Run jobs. SIGTERM or Ctrl-C stops claiming and lets running jobs finish."""
    _log_at(logging.INFO)
    config = _config(queues, concurrency, lease, shutdown_grace, burst, executors)
    asyncio.run(_serve(cli.settings, config, None, False))


@click.command()
@_listen_options
@pass_cli
def server(
    cli: CliContext, host: str, port: int, tls_cert: str | None, tls_key: str | None
) -> None:
    """Serve the HTTP API only (run workers apart with `dockyard worker`)."""
    tls = _tls(tls_cert, tls_key)
    _log_at(logging.WARNING)
    asyncio.run(_serve(cli.settings, None, (host, port), True, tls=tls))


@click.command()
@_listen_options
@_worker_options
@pass_cli
def up(
    cli: CliContext,
    host: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    queues: str | None,
    concurrency: int,
    lease: float,
    shutdown_grace: float,
    executors: str | None,
) -> None:
    """Start the embedded Dockyard in one process: the HTTP API, a worker and the scheduler."""
    tls = _tls(tls_cert, tls_key)
    _log_at(logging.WARNING)
    config = _config(queues, concurrency, lease, shutdown_grace, False, executors)
    asyncio.run(_serve(cli.settings, config, (host, port), True, schedules=True, tls=tls))


@click.command()
@pass_cli
def scheduler(cli: CliContext) -> None:
    """Fire schedules and route events to rules. Run it on several hosts: one leads each,
    another takes over if it dies."""
    _log_at(logging.INFO)
    asyncio.run(_serve(cli.settings, None, None, False, schedules=True))


@click.group()
def db() -> None:
    """Manage the store's schema."""


@db.command("upgrade")
@pass_cli
def upgrade(cli: CliContext) -> None:
    """Apply the migrations the store does not have yet."""
    applied = asyncio.run(upgrade_store(cli.settings))
    click.echo("applied: " + ", ".join(applied) if applied else "the schema is up to date")
