"""Signing the requests of http jobs, Lambda invocations and webhooks, with the worker's credentials.

Signing with ``hmac-sha256``: the request carries ``X-Dockyard-Timestamp: <unix seconds>`` and
``X-Dockyard-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>``; a
receiver recomputes it and refuses timestamps more than five minutes away
(:func:`verify_signature`). ``aws-sigv4`` signs with :mod:`dockyard.executors.sigv4`.

A definition names its secrets by worker variable (``secret_env``, ``access_key_env``…), and a
definition is whatever an operator registered: so a name is looked up only among
:class:`Credentials` — the worker variables its owner's ``credential_env`` patterns allow,
never ``DOCKYARD_*`` or ``PG*`` (:mod:`dockyard.executors.environment`) — and never in the
process's environment.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from dockyard.domain.records import HmacSigning, Signing, SigV4Signing
from dockyard.executors import sigv4
from dockyard.executors.environment import credential_environment
from dockyard.policy import POLICY_ENVIRONMENT, SIGNING_CREDENTIAL_ENV

__all__ = [
    "REPLAY_WINDOW_SECONDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "CredentialRefused",
    "Credentials",
    "sign",
    "sign_request",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Dockyard-Signature"
TIMESTAMP_HEADER = "X-Dockyard-Timestamp"
REPLAY_WINDOW_SECONDS = 300
_SETTING = POLICY_ENVIRONMENT["credential_env"]
_AWS_SESSION_TOKEN = "AWS_SESSION_TOKEN"  # what SigV4Signing names when a definition does not


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


class CredentialRefused(Exception):
    """A definition named a worker variable the worker does not allow as a credential."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} is not a credential this worker allows: its owner lists the variables"
            f" definitions may name in {_SETTING} (credential_env)"
        )
        self.name = name


@dataclass(frozen=True, slots=True)
class Credentials:
    """The worker variables definitions may name, already filtered by the policy, and the
    patterns that filtered them (to tell a refused name from an unset one)."""

    values: Mapping[str, str] = field(default_factory=dict)
    patterns: tuple[str, ...] = ()

    def allowed(self, name: str, *, signing: bool = False) -> bool:
        """Whether a definition may name ``name``; ``signing``: for a SigV4 signature, which
        may also use :data:`~dockyard.policy.SIGNING_CREDENTIAL_ENV`."""
        patterns = self.patterns + SIGNING_CREDENTIAL_ENV if signing else self.patterns
        return bool(credential_environment({name: ""}, patterns))

    def get(self, name: str, *, signing: bool = False) -> str | None:
        """The value of ``name``; None when it is allowed but unset on this worker.

        Raises :class:`CredentialRefused` when the policy does not allow ``name``."""
        if not self.allowed(name, signing=signing):
            raise CredentialRefused(name)
        return self.values.get(name)


def sign_request(
    signing: Signing,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    credentials: Credentials,
) -> str | None:
    """Add the signature headers; say what is missing when the worker lacks the secret.

    Raises :class:`CredentialRefused` for a name the worker does not allow."""
    if isinstance(signing, HmacSigning):
        secret = credentials.get(signing.secret_env)
        if secret is None:
            return f"the signing secret {signing.secret_env} is not set on this worker"
        stamp = int(time.time())
        headers[TIMESTAMP_HEADER] = str(stamp)
        headers[SIGNATURE_HEADER] = sign(secret.encode(), stamp, body)
        return None
    access = credentials.get(signing.access_key_env, signing=True)
    secret = credentials.get(signing.secret_key_env, signing=True)
    if not access or not secret:
        return (
            f"AWS credentials {signing.access_key_env} and {signing.secret_key_env}"
            " are not set on this worker"
        )
    parts = urlsplit(url)
    headers["Host"] = parts.netloc
    signed = sigv4.sign_v4(
        method=method,
        path=parts.path or "/",
        query=parts.query,
        headers=list(headers.items()),
        body=body,
        credentials=sigv4.Credentials(access, secret, _session_token(signing, credentials)),
        region=signing.region,
        service=signing.service,
        when=datetime.now(UTC),
        sign_body=True,
    )
    headers.update(signed.headers)
    return None


def _session_token(signing: SigV4Signing, credentials: Credentials) -> str | None:
    """The session token, when there is one. A token is optional, so AWS's own name is simply
    absent where the policy does not allow it; a name the definition chose must be allowed."""
    name = signing.session_token_env
    if name == _AWS_SESSION_TOKEN:
        return credentials.values.get(name)
    return credentials.get(name, signing=True)
