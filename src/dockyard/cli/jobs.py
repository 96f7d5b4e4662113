"""``dockyard submit`` and ``dockyard jobs list|describe|logs|cancel|retry``."""

from __future__ import annotations

import sys

import click

from dockyard.cli.context import CliContext, output_option, pass_cli
from dockyard.cli.options import parse_pairs
from dockyard.cli.render import print_job, print_jobs
from dockyard.cli.text import LogPrinter, safe_text
from dockyard.domain.jobs import parse_payload
from dockyard.domain.records import Job
from dockyard.domain.states import JobState

__all__ = ["jobs", "submit"]

STATES = [state.value for state in JobState]


def exit_code_of(job: Job) -> int:
    """Like ``docker run``: the job's exit code; 1 when it failed without one."""
    if job.state is JobState.SUCCEEDED:
        return 0
    if job.exit_code:
        return job.exit_code
    return 1


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("definition", metavar="DEFINITION[:REVISION]")
@click.argument("command", nargs=-1)
@click.option("--name", help="The job's name [the definition's].")
@click.option("--queue", help="Queue [the definition's].")
@click.option("--group", help="Ordering group: one job of a group runs at a time, in order.")
@click.option("--idempotency-key", help="Submitting again with this key returns the same job.")
@click.option("--priority", type=int, default=0, help="Higher runs first within a queue.")
@click.option(
    "--env", "env", multiple=True, metavar="K=V", help="Override an environment variable."
)
@click.option("--parameter", "parameters", multiple=True, metavar="K=V", help="A Ref:: parameter.")
@click.option("--payload", help="A JSON payload (DOCKYARD_PAYLOAD, or the function's argument).")
@click.option("--timeout", type=float, help="Override the attempt timeout, in seconds.")
@click.option("--attempts", type=int, help="Override the number of attempts.")
@click.option("--wait", is_flag=True, help="Wait for the job to end; exit with its exit code.")
@click.option("--follow", is_flag=True, help="Print the log as it runs; exit with its exit code.")
@output_option
@pass_cli
def submit(
    cli: CliContext,
    definition: str,
    command: tuple[str, ...],
    name: str | None,
    queue: str | None,
    group: str | None,
    idempotency_key: str | None,
    priority: int,
    env: tuple[str, ...],
    parameters: tuple[str, ...],
    payload: str | None,
    timeout: float | None,
    attempts: int | None,
    wait: bool,
    follow: bool,
) -> None:
    """Submit a job of DEFINITION; a COMMAND after -- replaces the definition's.

    \b
    dockyard submit hello --wait
    dockyard submit refresh --group cards --payload '{"set": "M21"}' -- update-cards --full
    """
    job = cli.client.submit(
        definition,
        name=name,
        queue=queue,
        group=group,
        idempotency_key=idempotency_key,
        priority=priority,
        payload=None if payload is None else parse_payload(payload),
        command=command or None,
        environment=parse_pairs(env, "env"),
        parameters=parse_pairs(parameters, "parameter"),
        timeout=timeout,
        attempts=attempts,
    )
    if follow:
        printer = LogPrinter(sys.stdout)
        for chunk in cli.client.follow(job.id):
            printer.write(chunk)
    if wait or follow:
        job = cli.client.wait(job.id)
        outcome = f"{job.id} {job.state.value}" + (
            f": {safe_text(job.status_reason)}" if job.status_reason else ""
        )
        if cli.json:
            print_job(job, as_json=True)
        elif not follow:
            click.echo(outcome)
        elif job.state is not JobState.SUCCEEDED:
            # stdout is the job's own output; why it ended goes beside it, as docker run would.
            click.echo(f"dockyard: {outcome}", err=True)
        sys.exit(exit_code_of(job))
    if cli.json:
        print_job(job, as_json=True)
    else:
        click.echo(job.id)


@click.group()
def jobs() -> None:
    """List and inspect jobs, read their logs, cancel and retry them."""


@jobs.command("list")
@click.option("--state", "states", multiple=True, type=click.Choice(STATES, case_sensitive=False))
@click.option("--queue")
@click.option("--definition")
@click.option("--group")
@click.option("--limit", type=int, default=100)
@output_option
@pass_cli
def list_jobs(
    cli: CliContext,
    states: tuple[str, ...],
    queue: str | None,
    definition: str | None,
    group: str | None,
    limit: int,
) -> None:
    """Jobs, newest first."""
    found = cli.client.list(
        states=states, queue=queue, definition=definition, group=group, limit=limit
    )
    print_jobs(found, cli.json)


@jobs.command("describe")
@click.argument("job_id")
@output_option
@pass_cli
def describe(cli: CliContext, job_id: str) -> None:
    """A job with its attempts."""
    print_job(cli.client.get(job_id), cli.json)


@jobs.command("logs")
@click.argument("job_id")
@click.option("--attempt", type=int, help="Which attempt [the latest].")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    default=0,
    help="Begin at this byte, to resume a read (not with --follow).",
)
@output_option
@pass_cli
def logs(cli: CliContext, job_id: str, attempt: int | None, follow: bool, offset: int) -> None:
    """Print a job's log."""
    printer = LogPrinter(sys.stdout)
    if follow:
        if offset:
            raise click.UsageError("--offset reads the log as it is: leave out --follow")
        for chunk in cli.client.follow(job_id, attempt):
            printer.write(chunk)
    else:
        printer.write(cli.client.logs(job_id, attempt, offset=offset))


@jobs.command("cancel")
@click.argument("job_id")
@click.option("--reason", help="Recorded as the job's status reason.")
@output_option
@pass_cli
def cancel(cli: CliContext, job_id: str, reason: str | None) -> None:
    """Cancel a job; a running one is stopped (SIGTERM, then SIGKILL)."""
    job = cli.client.cancel(job_id, reason)
    print_job(job, as_json=True) if cli.json else click.echo(f"{job.id} {job.state.value}")


@jobs.command("retry")
@click.argument("job_id")
@output_option
@pass_cli
def retry(cli: CliContext, job_id: str) -> None:
    """Run a FAILED or CANCELLED job again, with its attempts renewed."""
    job = cli.client.retry(job_id)
    print_job(job, as_json=True) if cli.json else click.echo(f"{job.id} {job.state.value}")
