"""The ``http`` executor: one HTTP request per attempt, on httpx, many at once on the event loop.

The response's status, headers and body (up to ``max_response_bytes``) are the attempt's log and
the job's result. Connection errors, timeouts, 5xx and 429 fail the attempt as retryable, with
the reason ``HTTP 503`` (or ``ConnectError``, ``Timeout``); any other unexpected status fails it
as not retryable, so the job ends unless an ``evaluate_on_exit`` rule says RETRY for that
reason. A ``Retry-After`` header (seconds or an HTTP date) sets the next attempt's delay, within
the backoff's bounds.

Where calls may go is the worker's to say, twice: ``allowed_hosts``
(``DOCKYARD_HTTP_ALLOWED_HOSTS``) limits the host names in URLs, and the egress gate
(:mod:`dockyard.executors.egress`) the addresses actually connected to. A refused call fails
the attempt with the reason ``EgressDenied``, not retried, before anything is sent.

The response is read as it streams in, and reading stops at ``max_response_bytes`` (the
connection is then closed, the rest unread); the whole exchange — connecting, sending, the
status and the body — must end within the attempt's ``timeout`` (60 s without one), so a
server that trickles an endless body cannot hold an attempt or a worker's memory. Responses
are asked for uncompressed unless the definition sets ``Accept-Encoding``, so the cap counts
what the server sent. Placeholders are filled in as :mod:`dockyard.executors.templates` says;
signing secrets come from the worker's credentials (:mod:`dockyard.executors.request_signing`).
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from dockyard.domain.fields import check_header_names
from dockyard.domain.outcomes import Outcome, OutcomeKind
from dockyard.domain.records import HttpSpec, LambdaSpec, Signing
from dockyard.errors import ValidationError
from dockyard.executors.egress import AddressGate, EgressRefused, GatedTransport
from dockyard.executors.port import ExecutionContext
from dockyard.executors.request_signing import (
    REPLAY_WINDOW_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CredentialRefused,
    Credentials,
    sign,
    sign_request,
    verify_signature,
)
from dockyard.executors.templates import fill_text, fill_url, request_body, template_values
from dockyard.policy import WorkerPolicy

__all__ = [
    "REPLAY_WINDOW_SECONDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "HttpExecutor",
    "LambdaExecutor",
    "WebhookError",
    "sign",
    "verify_signature",
]

#: How long an exchange may take when the attempt has no timeout of its own.
DEFAULT_DEADLINE = 60.0


class WebhookError(Exception):
    """A webhook delivery that failed; ``retryable`` when trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class _Answer:
    """A response, its body read up to the cap, and whether there was more."""

    response: httpx.Response
    body: bytes
    truncated: bool


def _denied(context: ExecutionContext, reason: str, message: str) -> Outcome:
    """A failure no retry can help: logged, and not retried."""
    context.log.write(f"dockyard: {message}\n".encode())
    return Outcome.failed(reason=reason, status_reason=message).with_retry(False)


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """The body up to ``cap`` bytes, and whether it went on: at most ``cap`` plus one chunk is
    ever held, and nothing past it is read."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            break
    return b"".join(chunks)[:cap], size > cap


class HttpExecutor:
    """Runs ``http`` attempts, ``lambda`` ones (:meth:`invoke`) and rule webhooks
    (:meth:`post_event`) over one pool whose connections pass the egress gate."""

    starts_at_once = True  # nothing to prepare: claimed RUNNING (executors/port.py)

    def __init__(
        self,
        allowed_hosts: Sequence[str] | None = None,
        *,
        policy: WorkerPolicy | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        #: Host patterns (``api.example.com``, ``*.example.com``, ``127.0.0.1:8080``); None: any.
        self.allowed_hosts = None if allowed_hosts is None else tuple(allowed_hosts)
        policy = policy or WorkerPolicy()
        self.gate = AddressGate.from_policy(policy)
        self._credentials = Credentials(dict(credentials or {}), policy.credential_env)
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            self._client = httpx.AsyncClient(
                transport=GatedTransport(self.gate, limits=limits),
                follow_redirects=False,
                # No proxy, .netrc or other setting from the environment: a proxy would take
                # the call around the gate, and .netrc would hand its passwords to any host.
                trust_env=False,
                headers={"Accept-Encoding": "identity"},
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def post_event(
        self,
        url: str,
        body: bytes,
        *,
        secret_env: str | None,
        headers: Mapping[str, str],
        timeout: float,
    ) -> str:
        """POST an event (a rule's webhook target), HMAC-signed as this executor signs.

        Return the response's status line; raise :class:`WebhookError` (saying whether a retry
        may help) for a refused host or address, a secret the worker lacks or does not allow,
        a connection error or a non-2xx status. The response's body is not read, and the whole
        exchange ends within ``timeout``."""
        refusal = self._refusal(url) or _header_refusal(headers)
        if refusal is not None:
            raise WebhookError(refusal, retryable=False)
        sent = {"Content-Type": "application/json", **headers}
        if secret_env is not None:
            try:
                secret = self._credentials.get(secret_env)
            except CredentialRefused as error:
                raise WebhookError(str(error), retryable=False) from None
            if secret is None:
                raise WebhookError(f"the environment has no {secret_env}", retryable=False)
            timestamp = int(time.time())
            sent[TIMESTAMP_HEADER] = str(timestamp)
            sent[SIGNATURE_HEADER] = sign(secret.encode(), timestamp, body)
        try:
            async with asyncio.timeout(timeout):
                request = self._http().stream(
                    "POST", url, content=body, headers=sent, timeout=timeout
                )
                async with request as response:
                    status = response.status_code
        except EgressRefused as error:
            raise WebhookError(str(error), retryable=False) from None
        except TimeoutError:
            raise WebhookError(
                f"POST {url}: no answer within {timeout:g} s", retryable=True
            ) from None
        except httpx.HTTPError as error:
            name = type(error).__name__
            raise WebhookError(f"POST {url}: {name}: {error}", retryable=True) from None
        except httpx.InvalidURL as error:
            raise WebhookError(f"POST {url}: {error}", retryable=False) from None
        if not 200 <= status < 300:
            retryable = status >= 500 or status in (408, 429)
            raise WebhookError(f"HTTP {status}", retryable=retryable)
        return f"HTTP {status}"

    async def run(self, context: ExecutionContext) -> Outcome:
        spec = context.spec.executor
        assert isinstance(spec, HttpSpec)
        values = template_values(context)
        url = fill_url(spec.url, values)
        if "%" in (urlsplit(url).hostname or ""):
            # An encoded value in the host: it would have moved the call (``x@host:port#``).
            return _denied(context, "InvalidURL", f"{url}: a placeholder's value is not a host")
        refusal = self._refusal(url) or _header_refusal(spec.headers)
        if refusal is not None:
            return _denied(context, "EgressDenied", refusal)
        headers = {name: fill_text(value, values) for name, value in spec.headers.items()}
        body = request_body(spec, context, values, headers)
        if spec.signing is not None:
            unsigned = self._sign(spec.signing, spec.method, url, headers, body or b"", context)
            if unsigned is not None:
                return unsigned
        sent = await self._send(spec.method, url, headers, body, spec.max_response_bytes, context)
        if isinstance(sent, Outcome):
            return sent
        return _judge(spec, sent, context)

    def _sign(
        self,
        signing: Signing,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        context: ExecutionContext,
    ) -> Outcome | None:
        """Sign the request; the outcome of an attempt that cannot be signed, or None."""
        try:
            missing = sign_request(signing, method, url, headers, body, self._credentials)
        except CredentialRefused as error:
            return _denied(context, "CredentialDenied", str(error))
        return None if missing is None else _denied(context, "NoSecret", missing)

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        cap: int,
        context: ExecutionContext,
    ) -> _Answer | Outcome:
        """The response and its body up to ``cap``, or the outcome of a request that got none
        (or not all of it) within the deadline."""
        context.log.write(f"> {method} {url}\n".encode())
        timeout = context.spec.timeout_seconds
        deadline = timeout or DEFAULT_DEADLINE
        try:
            async with asyncio.timeout(deadline):
                request = self._http().stream(
                    method, url, headers=headers, content=body, timeout=deadline
                )
                async with request as response:
                    data, truncated = await _read_capped(response, cap)
        except (httpx.TimeoutException, TimeoutError) as error:
            context.log.write(f"dockyard: timed out: {error!r}\n".encode())
            return Outcome(
                kind=OutcomeKind.TIMED_OUT if timeout else OutcomeKind.FAILED,
                reason="Timeout",
                status_reason=f"No full answer from {urlsplit(url).netloc} within {deadline:g} s",
            )
        except EgressRefused as error:
            return _denied(context, "EgressDenied", str(error))
        except httpx.InvalidURL as error:
            return _denied(context, "InvalidURL", f"{url}: {error}")
        except httpx.HTTPError as error:
            name = type(error).__name__
            context.log.write(f"dockyard: {name}: {error}\n".encode())
            return Outcome.failed(reason=name, status_reason=f"{name}: {error}")
        return _Answer(response, data, truncated)

    async def invoke(self, context: ExecutionContext) -> Outcome:
        """The ``lambda`` executor's attempt: AWS Lambda's ``Invoke``, signed with SigV4."""
        spec = context.spec.executor
        assert isinstance(spec, LambdaSpec)
        endpoint = (spec.endpoint or f"https://lambda.{spec.region}.amazonaws.com").rstrip("/")
        url = f"{endpoint}/2015-03-31/functions/{quote(spec.function, safe='')}/invocations"
        if spec.qualifier is not None:
            url += f"?Qualifier={quote(spec.qualifier, safe='')}"
        refusal = self._refusal(url)
        if refusal is not None:
            return _denied(context, "EgressDenied", refusal)
        body = json.dumps(context.job.payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Amz-Invocation-Type": spec.invocation_type,
        }
        unsigned = self._sign(spec.signing, "POST", url, headers, body, context)
        if unsigned is not None:
            return unsigned
        sent = await self._send("POST", url, headers, body, spec.max_response_bytes, context)
        if isinstance(sent, Outcome):
            return sent
        expected = "202" if spec.invocation_type == "Event" else "200"
        judged = HttpSpec(
            url=url, expect_status=(expected,), max_response_bytes=spec.max_response_bytes
        )
        outcome = _judge(judged, sent, context)
        error = sent.response.headers.get("x-amz-function-error")
        if outcome.kind is OutcomeKind.SUCCEEDED and error:
            detail = outcome.result["body"] if isinstance(outcome.result, dict) else None
            message = detail.get("errorMessage") if isinstance(detail, dict) else None
            return Outcome.failed(
                reason=f"Function error: {error}",
                status_reason=f"Lambda {spec.function} failed ({error}): {message or detail}",
            )
        return outcome

    def _refusal(self, url: str) -> str | None:
        if self.allowed_hosts is None:
            return None
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return f"{url} has no valid port"
        for pattern in self.allowed_hosts:
            name, _, wanted_port = pattern.partition(":")
            if fnmatch.fnmatch(host, name.lower()) and (
                not wanted_port or wanted_port == str(port)
            ):
                return None
        return f"{host}:{port} is not in DOCKYARD_HTTP_ALLOWED_HOSTS"


def _header_refusal(headers: Mapping[str, str]) -> str | None:
    """Why a definition's headers cannot be sent (one registered before the rule), or None."""
    try:
        check_header_names(headers, "headers")
    except ValidationError as error:
        return str(error)
    return None


def _expected(spec: HttpSpec, status: int) -> bool:
    for pattern in spec.expect_status:
        if pattern.endswith("xx"):
            if status // 100 == int(pattern[0]):
                return True
        elif "-" in pattern:
            low, high = pattern.split("-")
            if int(low) <= status <= int(high):
                return True
        elif status == int(pattern):
            return True
    return False


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _judge(spec: HttpSpec, answer: _Answer, context: ExecutionContext) -> Outcome:
    response, body = answer.response, answer.body
    head = [f"< {response.http_version} {response.status_code} {response.reason_phrase}"]
    head += [f"< {name}: {value}" for name, value in response.headers.items()]
    context.log.write(("\n".join(head) + "\n\n").encode() + body + (b"\n" if body else b""))
    if answer.truncated:
        context.log.write(f"[dockyard: body cut at {spec.max_response_bytes} bytes]\n".encode())
    text = body.decode("utf-8", "replace")
    try:
        parsed: Any = (
            json.loads(text) if "json" in response.headers.get("content-type", "") else text
        )
    except ValueError:
        parsed = text
    result = {
        "status": response.status_code,
        "headers": dict(response.headers.items()),
        "body": parsed,
        "truncated": answer.truncated,
    }
    status = response.status_code
    if _expected(spec, status):
        return Outcome.succeeded(exit_code=None, result=result)
    retryable = status >= 500 or status == 429
    outcome = Outcome.failed(
        reason=f"HTTP {status}",
        status_reason=f"HTTP {status} {response.reason_phrase} from {response.url.host}",
    )
    return outcome.with_retry(retryable, _retry_after(response.headers.get("retry-after")))


class LambdaExecutor:
    """The ``lambda`` executor: shares the HTTP executor's connections and egress rules."""

    starts_at_once = True  # nothing to prepare: claimed RUNNING (executors/port.py)

    def __init__(self, http: HttpExecutor) -> None:
        self._http = http

    async def run(self, context: ExecutionContext) -> Outcome:
        return await self._http.invoke(context)
