"""``dockyard audit list``: the audit trail, for admins — which token changed what, and when."""

from __future__ import annotations

import click

from dockyard.cli.context import CliContext, output_option, pass_cli
from dockyard.cli.render import print_json, print_table
from dockyard.domain.documents import audit_entry_document

__all__ = ["audit"]


@click.group()
def audit() -> None:
    """The audit trail: every change, with the token (by name) that made it."""


@audit.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, help="Entries to show.")
@click.option("--before", type=click.IntRange(min=1), help="Only entries older than this id.")
@output_option
@pass_cli
def list_entries(cli: CliContext, limit: int, before: int | None) -> None:
    """Newest first; page back with --before (the last ID shown). Direct access to the store is
    recorded as the token `local`."""
    documents = [
        audit_entry_document(entry) for entry in cli.client.audit(limit=limit, before=before)
    ]
    if cli.json:
        print_json(documents)
        return
    print_table(
        ("ID", "TIME", "TOKEN", "NAME", "ROLE", "OPERATION", "TARGET"),
        [tuple(document.values()) for document in documents],
    )
