"""The Python SDK: ``dockyard.connect()`` returns a :class:`Client`, over one of two transports.

* :class:`DirectClient` opens the store named by a database URL (``sqlite:///…``).
* :class:`HttpClient` talks to a Dockyard server (``http://host:8000``) with a bearer token.

Both have the same methods, return the same records and raise the same errors; one test suite
runs against both.
"""

from __future__ import annotations

from pathlib import Path

from dockyard.client.base import Client
from dockyard.client.direct import DirectClient
from dockyard.client.http import HttpClient
from dockyard.settings import Settings

__all__ = ["Client", "DirectClient", "HttpClient", "connect"]


def connect(
    url: str | None = None, *, home: str | Path | None = None, token: str | None = None
) -> Client:
    """Connect to Dockyard at ``url``: a server (``http://…``) or a store (``sqlite:///…``).

    Without a URL: ``DOCKYARD_URL``, else the embedded store in ``DOCKYARD_HOME`` (``~/.dockyard``).
    A server needs a token: ``token``, else ``DOCKYARD_TOKEN``, else the file ``<home>/token`` —
    which is sent only to the server that wrote it (``dockyard up``), never to another URL.
    """
    return open_client(Settings.resolve(home=home, url=url, token=token))


def open_client(settings: Settings) -> Client:
    if settings.is_server:
        return HttpClient(
            settings.url,
            token=settings.resolved_token(),
            unsent_token=settings.home_token_refused(),
        )
    return DirectClient(settings)
