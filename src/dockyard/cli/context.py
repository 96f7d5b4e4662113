"""What every command shares: the resolved settings, the output format and a lazily opened client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from dockyard.client import Client, open_client
from dockyard.settings import Settings

__all__ = ["CliContext", "output_option", "pass_cli"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(slots=True)
class CliContext:
    home: str | None
    url: str | None
    token: str | None
    output: str
    _settings: Settings | None = None
    _client: Client | None = field(default=None)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.resolve(home=self.home, url=self.url, token=self.token)
        return self._settings

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = open_client(self.settings)
            click.get_current_context().call_on_close(self._client.close)
        return self._client

    @property
    def json(self) -> bool:
        return self.output == "json"


pass_cli = click.make_pass_decorator(CliContext)


def _set_output(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(CliContext).output = value


def output_option(fn: F) -> F:
    """``-o json|table`` on a command, as well as before it (``dockyard -o json jobs list``)."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json"]),
        default=None,
        expose_value=False,
        callback=_set_output,
        help="Output format [table].",
    )(fn)
