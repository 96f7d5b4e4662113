"""``dockyard worker``, ``dockyard up`` and ``dockyard db upgrade``: the long-running side."""

from __future__ import annotations

import asyncio
import logging

import click

from dockyard.app import Dockyard, WorkerConfig, upgrade_store
from dockyard.cli.context import CliContext, pass_cli
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


async def _serve(settings: Settings, config: WorkerConfig, banner: bool) -> None:
    app = await Dockyard.open(settings)
    try:
        if banner:
            click.echo(f"Dockyard is up: home {settings.home}, store {settings.url}")
            click.echo("Submit from another shell, e.g.:")
            click.echo("  dockyard definitions register hello -- echo hello")
            click.echo("  dockyard submit hello --follow")
            click.echo("Stop with Ctrl-C.")
        await app.run_worker(config)
    finally:
        await app.close()


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
    asyncio.run(
        _serve(cli.settings, _config(queues, concurrency, lease, shutdown_grace, burst), False)
    )


@click.command()
@_worker_options
@pass_cli
def up(
    cli: CliContext, queues: str | None, concurrency: int, lease: float, shutdown_grace: float
) -> None:
    """Start the embedded Dockyard in this process (today: a worker on the embedded store)."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    asyncio.run(
        _serve(cli.settings, _config(queues, concurrency, lease, shutdown_grace, False), True)
    )


@click.group()
def db() -> None:
    """Manage the store's schema."""


@db.command("upgrade")
@pass_cli
def upgrade(cli: CliContext) -> None:
    """Apply the migrations the store does not have yet."""
    applied = asyncio.run(upgrade_store(cli.settings))
    click.echo("applied: " + ", ".join(applied) if applied else "the schema is up to date")
