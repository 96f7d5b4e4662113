"""The root ``dockyard`` group and the error boundary: user mistakes print one line and exit 2."""

from __future__ import annotations

import sys

import click

from dockyard.cli.admin import queues, tokens, workers
from dockyard.cli.audit import audit
from dockyard.cli.context import CliContext
from dockyard.cli.definitions import definitions
from dockyard.cli.events import events
from dockyard.cli.jobs import jobs, submit
from dockyard.cli.rules import rules
from dockyard.cli.schedules import schedules
from dockyard.cli.services import db, scheduler, server, up, worker
from dockyard.cli.text import safe_text
from dockyard.errors import DockyardError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option(
    "--home", envvar="DOCKYARD_HOME", show_envvar=True, help="Dockyard's home [~/.dockyard]."
)
@click.option(
    "--url",
    envvar="DOCKYARD_URL",
    show_envvar=True,
    help="The store, e.g. sqlite:////path/to.db [sqlite:///<home>/dockyard.db].",
)
@click.option(
    "--token",
    envvar="DOCKYARD_TOKEN",
    show_envvar=True,
    help="Bearer token for a server URL [<home>/token].",
)
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", help="Output format."
)
@click.version_option(package_name="dockyard")
@click.pass_context
def cli(
    ctx: click.Context, home: str | None, url: str | None, token: str | None, output: str
) -> None:
    """Dockyard runs jobs: container images, scripts, HTTP calls and Python functions.

    Commands work on the store itself (a sqlite:/// URL, the default) or on a server
    (an http:// URL and a token), with the same results.
    """
    ctx.obj = CliContext(home=home, url=url, token=token, output=output)


cli.add_command(definitions)
cli.add_command(submit)
cli.add_command(jobs)
cli.add_command(schedules)
cli.add_command(events)
cli.add_command(rules)
cli.add_command(worker)
cli.add_command(up)
cli.add_command(server)
cli.add_command(scheduler)
cli.add_command(db)
cli.add_command(queues)
cli.add_command(workers)
cli.add_command(tokens)
cli.add_command(audit)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except DockyardError as error:
        # A message may quote stored text or a server's answer: shown without control characters.
        click.echo(f"error: {safe_text(str(error))}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
