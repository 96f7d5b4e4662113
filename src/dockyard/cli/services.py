"""``dockyard worker``, ``dockyard up`` and ``dockyard db upgrade``: the long-running side."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from typing import Any

import click

from dockyard.app import Dockyard, WorkerConfig, upgrade_store
from dockyard.cli.context import CliContext, pass_cli
from dockyard.errors import DockyardError
from dockyard.settings import Settings

__all__ = ["db", "up", "worker"]


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
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _config(
    queues: str | None, concurrency: int, lease: float, shutdown_grace: float, burst: bool
) -> WorkerConfig:
    return WorkerConfig(
        queues=None if not queues else tuple(q.strip() for q in queues.split(",") if q.strip()),
        concurrency=concurrency,
        lease_seconds=lease,
        shutdown_grace=shutdown_grace,
        burst=burst,
    )


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


def _api_server(app: Dockyard, host: str, port: int) -> Any:
    """uvicorn serving the API, without its own signal handling: ``_serve`` stops it and the worker
    together.

    FastAPI and uvicorn are imported here, not at the top: they take about 0.3 s and 25 MiB to
    import, which ``dockyard worker`` and every other command would otherwise pay for nothing.
    """
    import uvicorn

    from dockyard.api import create_app

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    config = uvicorn.Config(
        create_app(app), host=host, port=port, log_level="warning", timeout_graceful_shutdown=5
    )
    return Server(config)


async def _serve(
    settings: Settings,
    config: WorkerConfig | None,
    listen: tuple[str, int] | None,
    banner: bool,
    *,
    schedules: bool = False,
) -> None:
    app = await Dockyard.open(settings)
    try:
        services: list[Any] = []
        stops: list[Any] = []
        if listen is not None:
            host, port = listen
            sockets = [_listen(host, port)]
            secret = await app.ensure_admin_token()
            server = _api_server(app, host, port)
            services.append(server.serve(sockets=sockets))
            stops.append(lambda: setattr(server, "should_exit", True))
            if banner:
                click.echo(f"Dockyard is up: http://{host}:{port} (API docs at /docs)")
                click.echo(f"  home {settings.home}, store {settings.url}")
                created = "created an admin token in" if secret else "admin token in"
                click.echo(f"  {created} {settings.token_file} (mode 0600)")
        if config is not None:
            worker = app.worker(config)
            services.append(worker.run())
            stops.append(worker.stop)
            if banner:
                click.echo(f"  a worker runs {config.concurrency} jobs at once")
        if schedules:
            scheduler, rules = app.scheduler(), app.rules_engine()
            services += [scheduler.run(), rules.run()]
            stops += [scheduler.stop, rules.stop]
            if banner:
                click.echo("  the scheduler fires schedules (one leader among all processes)")
                click.echo("  the rules engine routes events to their rules' targets (one leader)")
        if banner:
            click.echo(
                "Submit from another shell: dockyard submit NAME --follow. Stop with Ctrl-C."
            )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: [stop() for stop in stops])
        await asyncio.gather(*services)
    finally:
        await app.close()


def _listen_options(fn: click.decorators.FC) -> click.decorators.FC:
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
    burst: bool,
) -> None:
    """Run jobs. SIGTERM or Ctrl-C stops claiming and lets running jobs finish."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = _config(queues, concurrency, lease, shutdown_grace, burst)
    asyncio.run(_serve(cli.settings, config, None, False))


@click.command()
@_listen_options
@pass_cli
def server(cli: CliContext, host: str, port: int) -> None:
    """Serve the HTTP API only (run workers apart with `dockyard worker`)."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    asyncio.run(_serve(cli.settings, None, (host, port), True))


@click.command()
@_listen_options
@_worker_options
@pass_cli
def up(
    cli: CliContext,
    host: str,
    port: int,
    queues: str | None,
    concurrency: int,
    lease: float,
    shutdown_grace: float,
) -> None:
    """Start the embedded Dockyard in one process: the HTTP API, a worker and the scheduler."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    config = _config(queues, concurrency, lease, shutdown_grace, False)
    asyncio.run(_serve(cli.settings, config, (host, port), True, schedules=True))


@click.command()
@pass_cli
def scheduler(cli: CliContext) -> None:
    """Fire schedules and route events to rules. Run it on several hosts: one leads each,
    another takes over if it dies."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
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
