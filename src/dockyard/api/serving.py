"""How the API is served: uvicorn, with limits on connections and request heads, and TLS.

uvicorn closes a connection that idles between requests (its keep-alive timeout), but gives none
that never sends a whole request head: a client that opens connections and sends nothing, or a
header a byte at a time, would hold them for ever. :class:`HeadDeadlineProtocol` gives each
request head :attr:`ServingLimits.header_timeout` seconds, from the moment the connection opens
or its previous response ends, and closes the connection when it is not in by then. Past
:attr:`ServingLimits.max_connections` connections at once, uvicorn answers 503. A request head
is at most :attr:`ServingLimits.max_header_bytes` (h11 answers 400 past it). Over TLS the
handshake comes first, under asyncio's own 60-second limit.

These are constants rather than settings for now; behind a reverse proxy its own limits apply
first (nginx ``client_header_timeout``, ``client_max_body_size``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HeadDeadlineProtocol", "ServingLimits", "Tls", "server_config"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingLimits:
    """What one API process holds open at most."""

    #: Connections at once (idle ones included); the next request is answered 503.
    max_connections: int = 500
    #: Seconds a connection has to send a whole request head; then it is closed.
    header_timeout: float = 10.0
    #: Seconds an idle connection is kept between requests.
    keep_alive: int = 5
    #: Bytes of one request head (request line and headers).
    max_header_bytes: int = 16 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Tls:
    """A certificate (PEM, with its chain) and its private key: the API speaks HTTPS."""

    certificate: Path
    key: Path


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for each request head (see the module)."""

    #: Set by :func:`server_config` on a subclass of its own.
    header_timeout = ServingLimits().header_timeout
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def _watch_head(self) -> None:
        """A deadline runs while the connection owes a request head, and only then."""
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if waiting and self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.header_timeout, self._head_late)
        elif not waiting:
            self._stop_deadline()

    def _stop_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_late(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def server_config(
    app: Any, *, host: str, port: int, limits: ServingLimits, tls: Tls | None
) -> uvicorn.Config:
    """uvicorn's configuration for the API ``app`` (the socket is bound by the caller)."""
    protocol = type(
        "HeadDeadlineProtocol",
        (HeadDeadlineProtocol,),
        {"header_timeout": limits.header_timeout},
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        ws="none",  # no route speaks WebSocket: an upgrade is not even parsed
        log_level="warning",
        timeout_graceful_shutdown=5,
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        ssl_certfile=None if tls is None else str(tls.certificate),
        ssl_keyfile=None if tls is None else str(tls.key),
    )
