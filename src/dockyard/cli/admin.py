"""``dockyard queues``, ``dockyard workers`` and ``dockyard tokens``."""

from __future__ import annotations

import click

from dockyard.cli.context import CliContext, output_option, pass_cli
from dockyard.cli.render import print_json, print_table
from dockyard.domain.documents import iso

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
    """API tokens: admin (everything), operator (register, submit, cancel, retry, pause), viewer."""


@tokens.command("create")
@click.option("--role", type=click.Choice(["admin", "operator", "viewer"]), required=True)
@click.option("--name", required=True, help="Who or what uses the token.")
@output_option
@pass_cli
def create(cli: CliContext, role: str, name: str) -> None:
    """Create a token and print its secret: it is shown this once."""
    token, secret = cli.client.create_token(name, role)
    if cli.json:
        print_json({"id": token.id, "name": token.name, "role": token.role.value, "secret": secret})
    else:
        click.echo(secret)


@tokens.command("list")
@output_option
@pass_cli
def list_tokens(cli: CliContext) -> None:
    found = cli.client.tokens()
    documents = [
        {
            "id": t.id,
            "name": t.name,
            "role": t.role.value,
            "created_at": iso(t.created_at),
            "revoked_at": iso(t.revoked_at),
        }
        for t in found
    ]
    if cli.json:
        print_json(documents)
    else:
        print_table(
            ("ID", "NAME", "ROLE", "CREATED", "REVOKED"),
            [tuple(d.values()) for d in documents],
        )


@tokens.command("revoke")
@click.argument("token_id")
@pass_cli
def revoke(cli: CliContext, token_id: str) -> None:
    """Revoke a token: requests with it get 401 from now on."""
    token = cli.client.revoke_token(token_id)
    click.echo(f"revoked {token.id}")
