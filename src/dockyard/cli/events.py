"""``dockyard events put|list``: events on the bus, for rules to match."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from dockyard.cli.context import CliContext, output_option, pass_cli
from dockyard.cli.options import read_file
from dockyard.cli.render import print_events, print_json
from dockyard.errors import ValidationError

__all__ = ["events", "json_flag"]

F = TypeVar("F", bound=Callable[..., Any])


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(CliContext).output = "json"


def json_flag(fn: F) -> F:
    """``--json``, short for ``-o json``, with ``-o`` itself."""
    fn = click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print JSON (as -o json).",
    )(fn)
    return output_option(fn)


@click.group()
def events() -> None:
    """Put events on the bus and see what it carries; rules match them and invoke targets."""


@events.command("put")
@click.option(
    "-f", "--file", "file", help="A YAML or JSON file: one event, or a list ('-' for stdin)."
)
@click.option("--source", help="Who sent it, e.g. ci or com.example.orders.")
@click.option("--detail-type", help="What happened, e.g. 'Build Done'.")
@click.option("--detail", metavar="JSON", help="The event's detail, a JSON object [{}].")
@click.option("--resource", "resources", multiple=True, help="A resource it concerns (repeat).")
@click.option("--time", "time", metavar="ISO", help="When it happened [now].")
@json_flag
@pass_cli
def put(
    cli: CliContext,
    file: str | None,
    source: str | None,
    detail_type: str | None,
    detail: str | None,
    resources: tuple[str, ...],
    time: str | None,
) -> None:
    """Put events on the bus and print their ids, one a line.

    An event in a file is in PutEvents form (Source, DetailType, Detail as JSON text) or an
    envelope (source, detail-type, detail as an object), e.g. an ECR event as AWS sent it.

    \b
    dockyard events put --source ci --detail-type 'Build Done' --detail '{"commit": "abc1"}'
    dockyard events put -f ecr-push.json
    """
    flags = source is not None or detail_type is not None or detail is not None or resources
    if file is not None:
        if flags or time is not None:
            raise ValidationError("file", "give the events with -f FILE or with flags, not both")
        entries = read_file(file)
    else:
        for value, flag in ((source, "source"), (detail_type, "detail-type")):
            if value is None:
                raise ValidationError(flag, f"is required: give --{flag}, or the events in -f FILE")
        entry: dict[str, Any] = {"Source": source, "DetailType": detail_type}
        if detail is not None:
            entry["Detail"] = detail
        if resources:
            entry["Resources"] = list(resources)
        if time is not None:
            entry["Time"] = time
        entries = [entry]
    ids = cli.client.put_events(entries)
    if cli.json:
        print_json(ids)
        return
    for event_id in ids:
        click.echo(event_id)


@events.command("list")
@click.option("--source", help="Only events of this source.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, help="How many, newest first.")
@json_flag
@pass_cli
def list_events(cli: CliContext, source: str | None, limit: int) -> None:
    """Events on the bus, newest first. It keeps events only while some rule is enabled."""
    print_events(cli.client.events(limit=limit, source=source), cli.json)
