"""``dockyard schedules create|list|describe|update|pause|resume|delete|next``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from dockyard.cli.context import CliContext, output_option, pass_cli
from dockyard.cli.options import parse_pairs, read_document
from dockyard.cli.render import print_json, print_schedule, print_schedules
from dockyard.domain.fire_times import next_fire_times
from dockyard.domain.jobs import parse_payload
from dockyard.domain.schedules import parse_timezone
from dockyard.domain.scheduling import Schedule, schedule_document
from dockyard.errors import ValidationError

__all__ = ["schedules"]

F = TypeVar("F", bound=Callable[..., Any])

#: Flags that set a top-level field of the schedule document, by the field they set.
_FIELDS = (
    ("expression", "expression"),
    ("timezone", "timezone"),
    ("start", "start"),
    ("end", "end"),
    ("flexible_window", "flexible_window_minutes"),
    ("overlap", "overlap"),
    ("catch_up", "catch_up"),
    ("catch_up_limit", "catch_up_limit"),
    ("delete_after_completion", "delete_after_completion"),
    ("description", "description"),
)
#: Flags that set a field of the target, by the field they set.
_TARGET_FIELDS = (
    ("definition", "definition"),
    ("queue", "queue"),
    ("group", "group"),
    ("priority", "priority"),
    ("timeout", "timeout"),
    ("attempts", "attempts"),
)
_SPEC_OPTIONS = (
    click.option("-f", "--file", "file", help="A YAML or JSON schedule file ('-' for stdin)."),
    click.option("--expression", help="cron(...), rate(...), at(...) or five-field cron."),
    click.option("--timezone", help="IANA time zone the expression is read in [UTC]."),
    click.option("--start", metavar="ISO", help="No fire before, e.g. 2026-12-01T00:00:00Z."),
    click.option("--end", metavar="ISO", help="No fire after, e.g. 2027-01-01T00:00:00+01:00."),
    click.option(
        "--flexible-window", type=int, metavar="MINUTES", help="Delay each job randomly [0]."
    ),
    click.option(
        "--overlap",
        type=click.Choice(["allow", "skip", "queue"]),
        help="A fire while the previous job runs: allow it, skip it, or queue behind it [allow].",
    ),
    click.option(
        "--catch-up",
        type=click.Choice(["none", "latest", "all"]),
        help="Fires missed while no scheduler ran: skip them, run the latest, or all [none].",
    ),
    click.option("--catch-up-limit", type=int, help="The most missed fires 'all' runs [100]."),
    click.option(
        "--delete-after-completion/--keep-after-completion",
        default=None,
        help="Delete the schedule once it has no fire left [keep].",
    ),
    click.option("--description", help="What the schedule is for."),
    click.option("--disabled", is_flag=True, default=None, help="Create or set it DISABLED."),
    click.option("--definition", metavar="NAME[:REVISION]", help="The definition of the jobs."),
    click.option("--payload", help="The jobs' JSON payload."),
    click.option("--queue", help="The jobs' queue [the definition's]."),
    click.option("--group", help="The jobs' ordering group."),
    click.option("--priority", type=int, help="The jobs' priority [0]."),
    click.option(
        "--env", "env", multiple=True, metavar="K=V", help="An environment variable of the jobs."
    ),
    click.option(
        "--parameter", "parameters", multiple=True, metavar="K=V", help="A Ref:: parameter."
    ),
    click.option("--timeout", type=float, help="The jobs' attempt timeout, in seconds."),
    click.option("--attempts", type=int, help="The jobs' number of attempts."),
)


def spec_options(fn: F) -> F:
    """The flags of ``create`` and ``update``: each sets one field of the document."""
    for option in reversed(_SPEC_OPTIONS):
        fn = option(fn)
    return fn


@click.group()
def schedules() -> None:
    """Submit jobs on a schedule: cron, rate or one-time (at), in a time zone."""


def _apply_flags(document: dict[str, Any], command: tuple[str, ...], flags: dict[str, Any]) -> None:
    """Flags override the file's fields; target flags merge into the file's target."""
    for flag, key in _FIELDS:
        if flags[flag] is not None:
            document[key] = flags[flag]
    if flags["disabled"]:
        document["state"] = "DISABLED"
    given = document.get("target")
    file_target: dict[str, Any] = given if isinstance(given, dict) else {}
    target: dict[str, Any] = {}
    for flag, key in _TARGET_FIELDS:
        if flags[flag] is not None:
            target[key] = flags[flag]
    if flags["payload"] is not None:
        target["payload"] = parse_payload(flags["payload"])
    if command:
        target["command"] = list(command)
    for flag, key, field in (
        ("env", "environment", "env"),
        ("parameters", "parameters", "parameter"),
    ):
        if flags[flag]:
            target[key] = {**(file_target.get(key) or {}), **parse_pairs(flags[flag], field)}
    if target:
        document["target"] = {**file_target, **target}


def _done(cli: CliContext, verb: str, schedule: Schedule) -> None:
    if cli.json:
        print_json(schedule_document(schedule))
        return
    line = f"{verb} {schedule.name}"
    if schedule.enabled and schedule.next_fire_at is not None and verb != "deleted":
        zone = parse_timezone(schedule.spec.timezone)
        line += f", next fire {schedule.next_fire_at.astimezone(zone).isoformat()}"
    click.echo(line)


@schedules.command("create", context_settings={"ignore_unknown_options": False})
@click.argument("name")
@click.argument("command", nargs=-1)
@spec_options
@output_option
@pass_cli
def create(
    cli: CliContext, /, name: str, command: tuple[str, ...], file: str | None, **flags: Any
) -> None:
    """Create schedule NAME from a file or flags; a COMMAND after -- replaces the definition's.

    \b
    dockyard schedules create nightly --expression 'cron(0 2 * * ? *)' \\
        --timezone Europe/Paris --definition refresh --payload '{"full": true}'
    dockyard schedules create nightly -f nightly.yaml
    """
    document: dict[str, Any] = read_document(file) if file else {}
    _apply_flags(document, command, flags)
    _done(cli, "created", cli.client.create_schedule(document, name=name))


@schedules.command("update", context_settings={"ignore_unknown_options": False})
@click.argument("name")
@click.argument("command", nargs=-1)
@spec_options
@output_option
@pass_cli
def update(
    cli: CliContext, /, name: str, command: tuple[str, ...], file: str | None, **flags: Any
) -> None:
    """Change the fields of NAME given in a file or flags; the others keep their values.

    Target fields merge: --queue changes the target's queue and keeps its definition; --env
    and --parameter replace the target's whole environment or parameters. A null in the file
    sets a field back to its default.

    \b
    dockyard schedules update nightly --expression 'cron(30 3 * * ? *)'
    """
    changes: dict[str, Any] = read_document(file) if file else {}
    _apply_flags(changes, command, flags)
    if not changes:
        raise ValidationError("update", "give the fields to change, as flags or with -f FILE")
    _done(cli, "updated", cli.client.update_schedule(name, changes))


@schedules.command("list")
@output_option
@pass_cli
def list_schedules(cli: CliContext) -> None:
    """Every schedule with its next and last fire."""
    print_schedules(cli.client.schedules(), cli.json)


@schedules.command("describe")
@click.argument("name")
@output_option
@pass_cli
def describe(cli: CliContext, name: str) -> None:
    """A schedule in full: its document, target and fire history."""
    print_schedule(cli.client.schedule(name), cli.json)


@schedules.command("pause")
@click.argument("name")
@output_option
@pass_cli
def pause(cli: CliContext, name: str) -> None:
    """No fire until resumed; fires missed meanwhile are not caught up."""
    _done(cli, "paused", cli.client.pause_schedule(name))


@schedules.command("resume")
@click.argument("name")
@output_option
@pass_cli
def resume(cli: CliContext, name: str) -> None:
    """Fire again, from the next fire time after now."""
    _done(cli, "resumed", cli.client.resume_schedule(name))


@schedules.command("delete")
@click.argument("name")
@output_option
@pass_cli
def delete(cli: CliContext, name: str) -> None:
    """Delete a schedule; the jobs it submitted stay."""
    _done(cli, "deleted", cli.client.delete_schedule(name))


@schedules.command("next")
@click.argument("expression")
@click.option("--tz", "timezone", default="UTC", help="IANA time zone of the expression.")
@click.option(
    "--after",
    metavar="TIME",
    help="ISO 8601; without an offset, read in --tz [now].",
)
@click.option("--count", type=click.IntRange(1, 1000), default=5, help="How many fire times.")
@output_option
@pass_cli
def next_times(
    cli: CliContext, expression: str, timezone: str, after: str | None, count: int
) -> None:
    """Print the next fire times of EXPRESSION, one a line (no store or server needed).

    \b
    dockyard schedules next 'cron(30 2 * * ? *)' --tz Europe/Paris --count 3
    """
    times = next_fire_times(
        expression, timezone=timezone, after=_after(after, timezone), count=count
    )
    if cli.json:
        print_json([moment.isoformat() for moment in times])
        return
    for moment in times:
        click.echo(moment.isoformat())


def _after(text: str | None, timezone: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError("after", f"{text!r} is not an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=parse_timezone(timezone))
    return moment.astimezone(UTC)
