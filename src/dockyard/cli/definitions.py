"""``dockyard definitions register|list|describe|deregister|rollback``.

``register`` takes the executor kinds, and the list of each kind's fields its help shows, from the
domain's table of kinds (``dockyard.domain.specs.registry``): a kind added there can be named with
``--executor`` and its fields given with ``-f FILE`` at once. Flags exist for the fields people
set by hand most; they override the file's.
"""

from __future__ import annotations

import textwrap
from typing import Any

import click

from dockyard.cli.context import CliContext, output_option, pass_cli
from dockyard.cli.options import parse_pairs, read_document
from dockyard.cli.render import print_definitions, print_json
from dockyard.domain.documents import definition_summary
from dockyard.domain.imports import definition_from_batch, definition_from_ecs
from dockyard.domain.specs.registry import executor_kinds, kind_names
from dockyard.errors import ValidationError

__all__ = ["definitions"]


@click.group()
def definitions() -> None:
    """Register and inspect job definitions (revisioned templates)."""


def _rule(text: str) -> dict[str, str]:
    action, sep, condition = text.partition(":")
    key, eq, glob = condition.partition("=")
    fields = {
        "exit_code": "on_exit_code",
        "reason": "on_reason",
        "status_reason": "on_status_reason",
    }
    if not sep or not eq or key not in fields:
        raise ValidationError(
            "on-exit", f"{text!r} must look like ACTION:exit_code=GLOB (or reason=, status_reason=)"
        )
    return {"action": action, fields[key]: glob}


def _fields_by_executor() -> str:
    """The help's list of every kind's fields (``\\b`` keeps click from rewrapping it)."""
    width = max(len(name) for name in kind_names())
    lines = ["\b", "Each executor's fields (those without a flag above come from -f FILE):"]
    for kind in executor_kinds():
        lines += textwrap.wrap(
            ", ".join(kind.fields),
            width=76,
            initial_indent=f"  {kind.name:<{width}}  ",
            subsequent_indent=" " * (width + 4),
        )
    return "\n".join(lines)


@definitions.command(
    "register",
    context_settings={"ignore_unknown_options": False},
    epilog=_fields_by_executor(),
)
@click.argument("name", required=False)
@click.argument("command", nargs=-1)
@click.option("-f", "--file", "file", help="A YAML or JSON definition file ('-' for stdin).")
@click.option("--from-ecs", "ecs_file", metavar="FILE", help="An ECS task definition (JSON).")
@click.option(
    "--from-batch", "batch_file", metavar="FILE", help="An AWS Batch job definition (JSON)."
)
@click.option(
    "--executor",
    type=click.Choice(kind_names()),
    help="How jobs run [docker with --image, else process].",
)
@click.option("--image", help="The container image, for the docker executor.")
@click.option(
    "--pull",
    type=click.Choice(["always", "if-not-present", "never"]),
    help="When the docker executor pulls the image [if-not-present].",
)
@click.option("--user", help="The container's user [the image's].")
@click.option("--env", "env", multiple=True, metavar="K=V", help="An environment variable.")
@click.option("--timeout", type=float, help="Seconds an attempt may run.")
@click.option("--kill-grace", type=float, help="Seconds between SIGTERM and SIGKILL [10].")
@click.option("--attempts", type=int, help="Attempts, 1-10 [1].")
@click.option("--backoff-base", type=float, help="First retry delay in seconds; 0 = at once [60].")
@click.option("--backoff-max", type=float, help="Longest retry delay in seconds [86400].")
@click.option(
    "--on-exit",
    multiple=True,
    metavar="ACTION:FIELD=GLOB",
    help="An evaluate_on_exit rule, e.g. EXIT:exit_code=1 or RETRY:reason=Signal.",
)
@click.option("--queue", help="Default queue [default].")
@click.option("--log-max-bytes", type=int, help="Log cap per attempt [10 MiB].")
@click.option(
    "--function",
    help="package.module:function (python), or a Lambda function name or ARN (lambda).",
)
@click.option(
    "--isolation", type=click.Choice(["inline", "subprocess"]), help="Where python jobs run."
)
@click.option("--shell", is_flag=True, default=None, help="Run COMMAND as one /bin/sh line.")
@click.option("--working-dir", help="Directory the process starts in.")
@click.option("--url", help="The URL an http job calls; ${payload.a} and ${job.id} are filled in.")
@click.option("--method", help="The HTTP method of an http job [POST].")
@click.option("--header", "headers", multiple=True, metavar="K=V", help="An http job's header.")
@click.option("--region", help="The AWS region of a lambda job's function.")
@click.option("--vcpus", type=float, help="vCPUs a job needs.")
@click.option("--memory", "memory_mib", type=int, help="Memory a job needs, in MiB.")
@click.option(
    "--parameter", "parameters", multiple=True, metavar="K=V", help="A Ref:: parameter default."
)
@click.option("--description", help="What the definition is for.")
@output_option
@pass_cli
def register(
    cli: CliContext,
    /,
    name: str | None,
    command: tuple[str, ...],
    file: str | None,
    ecs_file: str | None,
    batch_file: str | None,
    **flags: Any,
) -> None:
    """Register NAME (a new revision if it exists), from a file or flags.

    \b
    dockyard definitions register hello --executor process -- echo hello
    dockyard definitions register report --image registry:5000/team/report:1 -- report --all
    dockyard definitions register ping --executor http --url https://hooks.example.com/ping
    dockyard definitions register resize --executor lambda --function resize --region eu-west-1
    dockyard definitions register -f nightly.yaml
    dockyard definitions register --from-ecs taskdef.json
    dockyard definitions register --from-batch jobdef.json
    """
    if sum(source is not None for source in (file, ecs_file, batch_file)) > 1:
        raise ValidationError("file", "give one of -f, --from-ecs and --from-batch")
    document: dict[str, Any] = read_document(file) if file else {}
    for path, convert in ((ecs_file, definition_from_ecs), (batch_file, definition_from_batch)):
        if path is not None:
            document, left_out = convert(read_document(path))
            if left_out:
                click.echo(
                    f"warning: not imported (Dockyard does not support them): {', '.join(left_out)}",
                    err=True,
                )
    _apply_flags(document, command, flags)
    document.setdefault("executor", "docker" if "image" in document else "process")
    definition = cli.client.register(document, name=name)
    if cli.json:
        print_json(definition_summary(definition))
    else:
        click.echo(f"registered {definition.ref}")


def _apply_flags(document: dict[str, Any], command: tuple[str, ...], flags: dict[str, Any]) -> None:
    """Flags override the file's fields; nested fields (retry, resources) merge."""
    if command:
        document["command"] = list(command)
    for key, flag, field in (
        ("environment", "env", "env"),
        ("headers", "headers", "header"),
        ("parameters", "parameters", "parameter"),
    ):
        if flags[flag]:
            document[key] = {**document.get(key, {}), **parse_pairs(flags[flag], field)}
    for flag, key in (
        ("executor", "executor"),
        ("timeout", "timeout"),
        ("kill_grace", "kill_grace"),
        ("queue", "queue"),
        ("log_max_bytes", "log_max_bytes"),
        ("function", "function"),
        ("isolation", "isolation"),
        ("image", "image"),
        ("pull", "pull"),
        ("user", "user"),
        ("shell", "shell"),
        ("working_dir", "working_dir"),
        ("url", "url"),
        ("method", "method"),
        ("region", "region"),
        ("description", "description"),
    ):
        if flags[flag] is not None:
            document[key] = flags[flag]
    rules = [_rule(text) for text in flags["on_exit"]]
    _merge(document, "retry", flags, ("attempts", "backoff_base", "backoff_max"))
    if rules:
        document.setdefault("retry", {})["evaluate_on_exit"] = rules
    _merge(document, "resources", flags, ("vcpus", "memory_mib"))


def _merge(
    document: dict[str, Any], key: str, flags: dict[str, Any], names: tuple[str, ...]
) -> None:
    """Put the given flags into the nested mapping ``document[key]``, keeping its other fields."""
    given = {name: flags[name] for name in names if flags[name] is not None}
    if given:
        document[key] = {**(document.get(key) or {}), **given}


@definitions.command("list")
@output_option
@pass_cli
def list_definitions(cli: CliContext) -> None:
    """The latest revision of every definition."""
    print_definitions(cli.client.definitions(), cli.json)


@definitions.command("describe")
@click.argument("ref", metavar="NAME[:REVISION]")
@output_option
@pass_cli
def describe(cli: CliContext, ref: str) -> None:
    """One revision in full (NAME:REVISION), or every revision of NAME."""
    if ":" in ref:
        revisions = [cli.client.definition(ref)]
    else:
        revisions = cli.client.revisions(ref)
    if cli.json or ":" in ref:
        documents = [definition_summary(d) for d in revisions]
        print_json(documents[0] if ":" in ref else documents)
    else:
        print_definitions(revisions, as_json=False)


@definitions.command("deregister")
@click.argument("ref", metavar="NAME:REVISION")
@output_option
@pass_cli
def deregister(cli: CliContext, ref: str) -> None:
    """Make a revision INACTIVE: it takes no new jobs; jobs already submitted still run."""
    definition = cli.client.deregister(ref)
    if cli.json:
        print_json(definition_summary(definition))
    else:
        click.echo(f"deregistered {definition.ref}")


@definitions.command("rollback")
@click.argument("name")
@output_option
@pass_cli
def rollback(cli: CliContext, name: str) -> None:
    """Register a new revision equal to the ACTIVE one before the latest: the next job runs it."""
    definition = cli.client.rollback(name)
    if cli.json:
        print_json(definition_summary(definition))
    else:
        click.echo(f"registered {definition.ref} (a copy of the revision before the latest)")
