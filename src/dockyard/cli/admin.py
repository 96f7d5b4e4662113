"""``dockyard queues``, ``dockyard workers`` and ``dockyard tokens``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import click

from dockyard.cli.context import CliContext, output_option, pass_cli
from dockyard.cli.render import print_json, print_table
from dockyard.domain.documents import iso, token_document
from dockyard.domain.tokens import Role

__all__ = ["queues", "tokens", "workers"]


@click.group()
def queues() -> None:
    """See queues with their job counts; pause and resume them."""


@queues.command("list")
@output_option
@pass_cli
def list_queues(cli: CliContext) -> None:
    """Every queue with its jobs per state."""
    found = cli.client.queues()
    if cli.json:
        print_json([{"name": q.name, "paused": q.paused, "counts": dict(q.counts)} for q in found])
        return
    states = ("RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
    print_table(
        ("QUEUE", "PAUSED", *states),
        [(q.name, "yes" if q.paused else "", *(q.counts.get(s, 0) for s in states)) for q in found],
    )


@queues.command("pause")
@click.argument("name")
@pass_cli
def pause(cli: CliContext, name: str) -> None:
    """Workers take no job from NAME until it is resumed; submissions still land."""
    cli.client.pause_queue(name)
    click.echo(f"paused {name}")


@queues.command("resume")
@click.argument("name")
@pass_cli
def resume(cli: CliContext, name: str) -> None:
    cli.client.resume_queue(name)
    click.echo(f"resumed {name}")


@click.group()
def workers() -> None:
    """See the workers and what they run."""


@workers.command("list")
@output_option
@pass_cli
def list_workers(cli: CliContext) -> None:
    """Workers, their last heartbeat and the jobs they run now."""
    found = cli.client.workers()
    documents: list[dict[str, object]] = [
        {
            "id": w.id,
            "hostname": w.hostname,
            "pid": w.pid,
            "queues": None if w.queues is None else list(w.queues),
            "concurrency": w.concurrency,
            "started_at": iso(w.started_at),
            "heartbeat_at": iso(w.heartbeat_at),
            "stopped_at": iso(w.stopped_at),
            "running": list(w.running),
        }
        for w in found
    ]
    if cli.json:
        print_json(documents)
        return
    print_table(
        ("WORKER", "PID", "QUEUES", "CONCURRENCY", "HEARTBEAT", "STOPPED", "RUNNING"),
        [
            (
                w.id,
                w.pid,
                ",".join(w.queues or ["*"]),
                w.concurrency,
                iso(w.heartbeat_at),
                iso(w.stopped_at),
                len(w.running),
            )
            for w in found
        ],
    )


@click.group()
def tokens() -> None:
    """API tokens: admin (everything, tokens and the audit trail included), operator (register,
    submit, cancel, retry, pause: runs code on the workers), publisher (only puts events: for a
    registry's notifications), viewer (reads)."""


#: ``--expires-in`` units: ``90s``, ``15m``, ``12h``, ``30d``, ``8w``.
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    match = _DURATION.match(value)
    if match is None:
        raise click.BadParameter("a number and a unit: 90s, 15m, 12h, 30d or 8w")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def _moment(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    """An ISO 8601 date or time; one without a time zone is in the local one."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("an ISO 8601 time, e.g. 2026-12-31T18:00:00Z") from None
    return moment if moment.tzinfo is not None else moment.astimezone()


@tokens.command("create")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option("--name", required=True, help="Who or what uses the token.")
@click.option(
    "--expires-in", callback=_duration, metavar="DURATION", help="Refused after: 12h, 30d, 8w…"
)
@click.option(
    "--expires-at", callback=_moment, metavar="TIME", help="Refused from: 2026-12-31T18:00Z…"
)
@output_option
@pass_cli
def create(
    cli: CliContext,
    role: str,
    name: str,
    expires_in: timedelta | None,
    expires_at: datetime | None,
) -> None:
    """Create a token and print its secret: it is shown this once. Without --expires-in or
    --expires-at it lasts until revoked."""
    token, secret = cli.client.create_token(
        name, role, expires_at=expires_at, expires_in=expires_in
    )
    if cli.json:
        print_json({**token_document(token), "secret": secret})
    else:
        click.echo(secret)


@tokens.command("list")
@output_option
@pass_cli
def list_tokens(cli: CliContext) -> None:
    """Every token: when it expires, when it was last used (to within a minute), if revoked."""
    documents = [token_document(token) for token in cli.client.tokens()]
    if cli.json:
        print_json(documents)
    else:
        print_table(
            ("ID", "NAME", "ROLE", "CREATED", "EXPIRES", "LAST USED", "REVOKED"),
            [tuple(d.values()) for d in documents],
        )


@tokens.command("revoke")
@click.argument("token_id")
@pass_cli
def revoke(cli: CliContext, token_id: str) -> None:
    """Revoke a token: requests with it get 401 from now on."""
    token = cli.client.revoke_token(token_id)
    click.echo(f"revoked {token.id}")
