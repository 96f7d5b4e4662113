"""The ``http`` executor: one HTTP request per attempt, on httpx, many at once on the event loop.

The response's status, headers and body (up to ``max_response_bytes``) are the attempt's log and
the job's result. Connection errors, timeouts, 5xx and 429 fail the attempt as retryable, with
the reason ``HTTP 503`` (or ``ConnectError``, ``Timeout``); any other unexpected status fails it
as not retryable, so the job ends unless an ``evaluate_on_exit`` rule says RETRY for that
reason. A ``Retry-After`` header (seconds or an HTTP date) sets the next attempt's delay, within
the backoff's bounds. ``allowed_hosts`` (``DOCKYARD_HTTP_ALLOWED_HOSTS``) limits where requests
may go; a refused host fails the job before anything is sent.

Signing with ``hmac-sha256``: the request carries ``X-Dockyard-Timestamp: <unix seconds>`` and
``X-Dockyard-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>``; a
receiver recomputes it and refuses timestamps more than five minutes away
(:func:`verify_signature`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from dockyard.domain.outcomes import Outcome, OutcomeKind
from dockyard.domain.records import HmacSigning, HttpSpec, LambdaSpec, Signing
from dockyard.executors.port import ExecutionContext
from dockyard.executors.sigv4 import Credentials, sign_v4

__all__ = [
    "REPLAY_WINDOW_SECONDS",
    "HttpExecutor",
    "LambdaExecutor",
    "WebhookError",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Dockyard-Signature"
TIMESTAMP_HEADER = "X-Dockyard-Timestamp"
REPLAY_WINDOW_SECONDS = 300
_PLACEHOLDER = re.compile(r"\$\{(payload(?:\.[A-Za-z0-9_-]+)*|job\.(?:id|name|attempt))\}")


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance: float = REPLAY_WINDOW_SECONDS,
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)


class WebhookError(Exception):
    """A webhook delivery that failed; ``retryable`` when trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class HttpExecutor:
    def __init__(self, allowed_hosts: Sequence[str] | None = None) -> None:
        #: Host patterns (``api.example.com``, ``*.example.com``, ``127.0.0.1:8080``); None: any.
        self.allowed_hosts = None if allowed_hosts is None else tuple(allowed_hosts)
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            self._client = httpx.AsyncClient(limits=limits, follow_redirects=False)
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
        may help) for a refused host, a missing secret, a connection error or a non-2xx status.
        """
        refusal = self._refusal(url)
        if refusal is not None:
            raise WebhookError(refusal, retryable=False)
        sent = {"Content-Type": "application/json", **headers}
        if secret_env is not None:
            secret = os.environ.get(secret_env)
            if secret is None:
                raise WebhookError(f"the environment has no {secret_env}", retryable=False)
            timestamp = int(time.time())
            sent[TIMESTAMP_HEADER] = str(timestamp)
            sent[SIGNATURE_HEADER] = sign(secret.encode(), timestamp, body)
        try:
            response = await self._http().post(url, content=body, headers=sent, timeout=timeout)
        except httpx.HTTPError as error:
            raise WebhookError(
                f"POST {url}: {type(error).__name__}: {error}", retryable=True
            ) from None
        status = f"HTTP {response.status_code}"
        if not response.is_success:
            retryable = response.status_code >= 500 or response.status_code in (408, 429)
            raise WebhookError(status, retryable=retryable)
        return status

    async def run(self, context: ExecutionContext) -> Outcome:
        spec = context.spec.executor
        assert isinstance(spec, HttpSpec)
        values = _values(context)
        url = _fill_text(spec.url, values)
        refusal = self._refusal(url)
        if refusal is not None:
            context.log.write(f"dockyard: {refusal}\n".encode())
            return Outcome.failed(reason="EgressDenied", status_reason=refusal).with_retry(False)
        headers = {name: _fill_text(value, values) for name, value in spec.headers.items()}
        body = _body(spec, context, values, headers)
        if spec.signing is not None:
            missing = _sign(spec.signing, spec.method, url, headers, body or b"")
            if missing is not None:
                context.log.write(f"dockyard: {missing}\n".encode())
                return Outcome.failed(reason="NoSecret", status_reason=missing).with_retry(False)
        sent = await self._send(spec.method, url, headers, body, context)
        if isinstance(sent, Outcome):
            return sent
        return _judge(spec, sent, context)

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        context: ExecutionContext,
    ) -> httpx.Response | Outcome:
        """The response, or the outcome of a request that got none."""
        context.log.write(f"> {method} {url}\n".encode())
        timeout = context.spec.timeout_seconds
        try:
            return await self._http().request(
                method, url, headers=headers, content=body, timeout=timeout or 60.0
            )
        except httpx.TimeoutException as error:
            context.log.write(f"dockyard: timed out: {error!r}\n".encode())
            return Outcome(
                kind=OutcomeKind.TIMED_OUT if timeout else OutcomeKind.FAILED,
                reason="Timeout",
                status_reason=f"No answer from {urlsplit(url).netloc} within {timeout or 60:g} s",
            )
        except httpx.HTTPError as error:
            name = type(error).__name__
            context.log.write(f"dockyard: {name}: {error}\n".encode())
            return Outcome.failed(reason=name, status_reason=f"{name}: {error}")

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
            context.log.write(f"dockyard: {refusal}\n".encode())
            return Outcome.failed(reason="EgressDenied", status_reason=refusal).with_retry(False)
        body = json.dumps(context.job.payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Amz-Invocation-Type": spec.invocation_type,
        }
        missing = _sign(spec.signing, "POST", url, headers, body)
        if missing is not None:
            context.log.write(f"dockyard: {missing}\n".encode())
            return Outcome.failed(reason="NoSecret", status_reason=missing).with_retry(False)
        sent = await self._send("POST", url, headers, body, context)
        if isinstance(sent, Outcome):
            return sent
        expected = "202" if spec.invocation_type == "Event" else "200"
        judged = HttpSpec(
            url=url, expect_status=(expected,), max_response_bytes=spec.max_response_bytes
        )
        outcome = _judge(judged, sent, context)
        error = sent.headers.get("x-amz-function-error")
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
        port = parts.port or (443 if parts.scheme == "https" else 80)
        for pattern in self.allowed_hosts:
            name, _, wanted_port = pattern.partition(":")
            if fnmatch.fnmatch(host, name.lower()) and (
                not wanted_port or wanted_port == str(port)
            ):
                return None
        return f"{host}:{port} is not in DOCKYARD_HTTP_ALLOWED_HOSTS"


def _sign(
    signing: Signing, method: str, url: str, headers: dict[str, str], body: bytes
) -> str | None:
    """Add the signature headers; say what is missing when the worker lacks the secret."""
    if isinstance(signing, HmacSigning):
        secret = os.environ.get(signing.secret_env)
        if secret is None:
            return f"the signing secret {signing.secret_env} is not set on this worker"
        stamp = int(time.time())
        headers[TIMESTAMP_HEADER] = str(stamp)
        headers[SIGNATURE_HEADER] = sign(secret.encode(), stamp, body)
        return None
    access = os.environ.get(signing.access_key_env)
    secret = os.environ.get(signing.secret_key_env)
    if not access or not secret:
        return (
            f"AWS credentials {signing.access_key_env} and {signing.secret_key_env}"
            " are not set on this worker"
        )
    parts = urlsplit(url)
    headers["Host"] = parts.netloc
    signed = sign_v4(
        method=method,
        path=parts.path or "/",
        query=parts.query,
        headers=list(headers.items()),
        body=body,
        credentials=Credentials(access, secret, os.environ.get(signing.session_token_env)),
        region=signing.region,
        service=signing.service,
        when=datetime.now(UTC),
        sign_body=True,
    )
    headers.update(signed.headers)
    return None


def _values(context: ExecutionContext) -> dict[str, Any]:
    return {
        "payload": context.job.payload,
        "job.id": context.job.id,
        "job.name": context.job.name,
        "job.attempt": context.attempt,
    }


def _lookup(key: str, values: Mapping[str, Any]) -> Any:
    if key.startswith("job."):
        return values[key]
    value = values["payload"]
    for part in key.split(".")[1:]:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _fill_text(text: str, values: Mapping[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        value = _lookup(match.group(1), values)
        return value if isinstance(value, str) else json.dumps(value)

    return _PLACEHOLDER.sub(replace, text)


def _fill_json(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        return _lookup(whole.group(1), values) if whole else _fill_text(value, values)
    if isinstance(value, list):
        return [_fill_json(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _fill_json(item, values) for key, item in value.items()}
    return value


def _body(
    spec: HttpSpec, context: ExecutionContext, values: Mapping[str, Any], headers: dict[str, str]
) -> bytes | None:
    lowered = {name.lower() for name in headers}
    if spec.text is not None:
        if "content-type" not in lowered:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return _fill_text(spec.text, values).encode()
    if spec.json is not None:
        document = _fill_json(spec.json, values)
    elif spec.method in ("POST", "PUT", "PATCH"):
        document = context.job.payload
    else:
        return None
    if "content-type" not in lowered:
        headers["Content-Type"] = "application/json"
    return json.dumps(document).encode()


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


def _judge(spec: HttpSpec, response: httpx.Response, context: ExecutionContext) -> Outcome:
    body = response.content[: spec.max_response_bytes]
    truncated = len(response.content) > spec.max_response_bytes
    head = [f"< {response.http_version} {response.status_code} {response.reason_phrase}"]
    head += [f"< {name}: {value}" for name, value in response.headers.items()]
    context.log.write(("\n".join(head) + "\n\n").encode() + body + (b"\n" if body else b""))
    if truncated:
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
        "truncated": truncated,
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

    def __init__(self, http: HttpExecutor) -> None:
        self._http = http

    async def run(self, context: ExecutionContext) -> Outcome:
        return await self._http.invoke(context)
