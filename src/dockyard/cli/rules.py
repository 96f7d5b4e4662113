"""``dockyard rules create|list|describe|update|enable|disable|delete|history|retry|test-pattern``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from dockyard.cli.context import CliContext, pass_cli
from dockyard.cli.events import json_flag
from dockyard.cli.options import read_file
from dockyard.cli.render import print_invocations, print_json, print_rule, print_rules
from dockyard.domain.patterns import matches
from dockyard.domain.rules import InvocationState, Rule, rule_document
from dockyard.errors import ValidationError

__all__ = ["rules"]


@click.group()
def rules() -> None:
    """Rules: when an event matches a rule's pattern, invoke its targets (submit a job,
    register a revision with the pushed image, or call a webhook)."""


def _done(cli: CliContext, verb: str, rule: Rule) -> None:
    if cli.json:
        print_json(rule_document(rule))
        return
    click.echo(f"{verb} {rule.name}")


@rules.command("create")
@click.option("-f", "--file", "file", required=True, help="A YAML or JSON rule ('-' for stdin).")
@click.option("--name", help="The rule's name [the file's].")
@json_flag
@pass_cli
def create(cli: CliContext, file: str, name: str | None) -> None:
    """Create a rule from a file.

    \b
    name: deploy-on-push
    event_pattern: {source: [dockyard.registry], detail: {repository: [team/app]}}
    targets:
      - {kind: register-revision, definition: app}
    max_invocations_per_minute: 1000   # the default
    """
    _done(cli, "created", cli.client.create_rule(_document(file), name=name))


@rules.command("update")
@click.argument("name")
@click.option("-f", "--file", "file", required=True, help="The fields to change ('-': stdin).")
@json_flag
@pass_cli
def update(cli: CliContext, name: str, file: str) -> None:
    """Change the fields of NAME given in a file; the others keep their values, and targets
    are replaced whole."""
    _done(cli, "updated", cli.client.update_rule(name, _document(file)))


@rules.command("list")
@json_flag
@pass_cli
def list_rules(cli: CliContext) -> None:
    """Every rule with its state and targets."""
    print_rules(cli.client.rules(), cli.json)


@rules.command("describe")
@click.argument("name")
@json_flag
@pass_cli
def describe(cli: CliContext, name: str) -> None:
    """A rule in full: its pattern, and each target with its retry policy."""
    print_rule(cli.client.rule(name), cli.json)


@rules.command("enable")
@click.argument("name")
@json_flag
@pass_cli
def enable(cli: CliContext, name: str) -> None:
    """Match events again."""
    _done(cli, "enabled", cli.client.enable_rule(name))


@rules.command("disable")
@click.argument("name")
@json_flag
@pass_cli
def disable(cli: CliContext, name: str) -> None:
    """Match no event; the invocations already made are still delivered."""
    _done(cli, "disabled", cli.client.disable_rule(name))


@rules.command("delete")
@click.argument("name")
@json_flag
@pass_cli
def delete(cli: CliContext, name: str) -> None:
    """Delete a rule and its history."""
    _done(cli, "deleted", cli.client.delete_rule(name))


@rules.command("history")
@click.argument("name")
@click.option("--dead", is_flag=True, help="Only the dead list: invocations out of retries.")
@click.option(
    "--state",
    type=click.Choice([state.value for state in InvocationState], case_sensitive=False),
    help="Only invocations in this state (THROTTLED: over the rule's rate; REFUSED: a loop).",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, help="How many, newest first.")
@json_flag
@pass_cli
def history(cli: CliContext, name: str, dead: bool, state: str | None, limit: int) -> None:
    """What the rule invoked, newest first: each target's result, or why it failed; and the
    invocations never made: THROTTLED (over the rule's max_invocations_per_minute) and REFUSED
    (deeper than the causation cap: a rule that triggers itself)."""
    if dead:
        if state is not None and state.upper() != InvocationState.DEAD:
            raise ValidationError("--dead", f"asks for DEAD, and --state for {state.upper()}")
        state = InvocationState.DEAD
    wanted = None if state is None else InvocationState(state.upper())
    print_invocations(cli.client.rule_history(name, state=wanted, limit=limit), cli.json)


@rules.command("retry")
@click.argument("name")
@click.option("--id", "ids", multiple=True, help="An invocation to retry (repeat) [all dead].")
@json_flag
@pass_cli
def retry(cli: CliContext, name: str, ids: tuple[str, ...]) -> None:
    """Deliver the dead invocations of NAME again, with their retries renewed."""
    count = cli.client.retry_invocations(name, list(ids) or None)
    if cli.json:
        print_json({"retried": count})
        return
    click.echo(f"retried {count} invocation{'' if count == 1 else 's'} of {name}")


@rules.command("test-pattern")
@click.option("--pattern", required=True, metavar="JSON|@FILE", help="The event pattern.")
@click.option("--event", required=True, metavar="JSON|@FILE", help="The event.")
def test_pattern(pattern: str, event: str) -> None:
    """Print true (exit 0) if EVENT matches PATTERN, else false (exit 1), as AWS's
    TestEventPattern answers; an invalid pattern is an error with AWS's reason (exit 2).
    No store or server is needed.

    \b
    dockyard rules test-pattern --pattern '{"source": ["ci"]}' --event @event.json
    """
    result = matches(_text_or_file(pattern, "pattern"), _text_or_file(event, "event"))
    click.echo("true" if result else "false")
    if not result:
        sys.exit(1)


def _document(path: str) -> dict[str, Any]:
    document = read_file(path)
    if not isinstance(document, dict):
        raise ValidationError("file", f"{path} must hold one mapping of rule fields")
    return document


def _text_or_file(value: str, field: str) -> str:
    """JSON text as it is (the pattern's own parser reports its mistakes), or ``@FILE``'s text."""
    if not value.startswith("@"):
        return value
    path = value[1:]
    try:
        return Path(path).read_text()
    except OSError as error:
        raise ValidationError(field, f"cannot read {path}: {error.strerror}") from None
