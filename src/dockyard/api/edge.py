"""What the HTTP edge refuses before any route runs: no token, too big a body, too deep a JSON.

FastAPI reads and parses a body before a route's dependencies run, so a token checked by a
dependency comes too late: a stranger's 200 MB body would be in memory by then. These two ASGI
middlewares look first, in this order:

- :class:`Authenticate`: every ``/v1`` request carries a live bearer token, checked from its
  headers alone; without one it is answered 401 and not a byte of its body is read. The token is
  left in the request's state for the routes (:func:`dockyard.api.auth.caller`).
- :class:`LimitBody`: a body is at most :data:`MAX_BODY_BYTES` (:data:`MAX_BATCH_BODY_BYTES` for
  a batch of jobs). A declared ``Content-Length`` past the limit is refused before reading; any
  other body is counted as it arrives, chunked or not, and refused (413) at the first byte past
  it. A body within the limit is measured for nesting before anything parses it: past
  :data:`MAX_BODY_DEPTH` levels it is 422, naming the rule.

A request refused before its body was read is answered with ``Connection: close``, so that the
rest of the body is never read either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.api.problems import problem
from dockyard.app import Dockyard
from dockyard.domain.fields import MAX_DEPTH, text_nesting
from dockyard.domain.tokens import Token
from dockyard.errors import AuthenticationError

__all__ = [
    "MAX_BATCH_BODY_BYTES",
    "MAX_BODY_BYTES",
    "MAX_BODY_DEPTH",
    "Authenticate",
    "LimitBody",
    "body_limit",
    "request_token",
]

#: The largest body of any request but a batch: one job with the largest payload (256 KiB of
#: JSON) and every other field fits several times over, as does a PutEvents request (10 entries).
MAX_BODY_BYTES = 1024 * 1024
#: ``POST /v1/jobs/batch`` takes up to 1,000 jobs: 16 KiB each on average, or 60 jobs that each
#: carry the largest payload. Split bigger batches (the SDK sends 1,000 jobs per request).
MAX_BATCH_BODY_BYTES = 16 * 1024 * 1024
#: A body's nesting: the :data:`~dockyard.domain.fields.MAX_DEPTH` levels a payload, a detail or
#: a pattern may have, plus the levels of the request around it (``{"jobs": [{"payload": …}]}``),
#: so that the rule a user meets names the field at fault (``payload``), not the body.
MAX_BODY_DEPTH = MAX_DEPTH + 8
#: Bodies longer than this are measured on a worker thread, so the event loop keeps serving.
_MEASURE_INLINE_BYTES = 64 * 1024
#: Routes that take more than :data:`MAX_BODY_BYTES` (method, path).
_LARGER_BODIES = {("POST", "/v1/jobs/batch"): MAX_BATCH_BODY_BYTES}
#: Where :class:`Authenticate` leaves the request's token (``request.state``).
_TOKEN_KEY = "dockyard_token"


def body_limit(method: str, path: str) -> int:
    """The most bytes a request's body may have."""
    return _LARGER_BODIES.get((method, path.rstrip("/")), MAX_BODY_BYTES)


def request_token(scope: Scope) -> Token | None:
    """The token :class:`Authenticate` found for this request, if it looked."""
    token: Token | None = scope.get("state", {}).get(_TOKEN_KEY)
    return token


def _protected(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def _bearer_secret(headers: Headers) -> str | None:
    """The secret of ``Authorization: Bearer SECRET`` (the scheme in any case), else None."""
    scheme, _, secret = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return secret.strip() or None


async def _refuse(response: Response, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer ``response`` and close the connection: the body left unread is never read."""
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


class Authenticate:
    """401 for a ``/v1`` request without a live bearer token, before its body is read."""

    def __init__(self, app: ASGIApp, dockyard: Dockyard) -> None:
        self._app = app
        self._dockyard = dockyard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _protected(scope["path"]):
            await self._app(scope, receive, send)
            return
        try:
            token = await self._dockyard.authenticate(_bearer_secret(Headers(scope=scope)))
        except AuthenticationError as error:
            await _refuse(problem(401, "Unauthorized", str(error)), scope, receive, send)
            return
        scope.setdefault("state", {})[_TOKEN_KEY] = token
        await self._app(scope, receive, send)


class LimitBody:
    """413 past a body's size limit, counted as it arrives; 422 past the nesting limit."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = body_limit(scope["method"], scope["path"])
        declared = headers.get("content-length")
        if declared == "0" or (declared is None and "transfer-encoding" not in headers):
            await self._app(scope, receive, send)  # no body (RFC 9112 §6.3)
            return
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(_too_large(limit), scope, receive, send)
            return
        body = await _read_body(receive, limit)
        if body is None:
            await _refuse(_too_large(limit), scope, receive, send)
            return
        if not isinstance(body, bytes):
            return  # the client left before sending its whole body: nobody to answer
        depth = await _measure(body)
        if depth > MAX_BODY_DEPTH:
            rule = f"must nest at most {MAX_BODY_DEPTH} levels of lists and objects"
            await problem(422, "Invalid request", f"body: {rule}", field="body", rule=rule)(
                scope, receive, send
            )
            return
        await self._app(scope, _replay(body, receive), send)


def _too_large(limit: int) -> Response:
    rule = f"must be at most {limit} bytes"
    return problem(413, "Content too large", f"body: {rule}", field="body", rule=rule)


async def _read_body(receive: Receive, limit: int) -> bytes | Message | None:
    """The whole body; None at the first chunk that takes it past ``limit``; the disconnect
    message when the client leaves first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return message
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _measure(body: bytes) -> int:
    if len(body) <= _MEASURE_INLINE_BYTES:
        return text_nesting(body)
    return await run_in_threadpool(text_nesting, body)


def _replay(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A ``receive`` that gives the body read already, then waits as the original does (for the
    disconnect a streaming response listens for)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
