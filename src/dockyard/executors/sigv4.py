"""AWS Signature Version 4 for requests in headers (Lambda function URLs, API Gateway IAM routes).

Written here rather than taken from botocore: botocore signs a request already shaped for its own
clients and has no switch for the path normalisation that SigV4 asks of every service but S3, and
each step (canonical request, string to sign, signature) must be visible for the public test
suite (``tests/test_sigv4.py`` runs every case of aws-c-auth's suite). The algorithm follows
https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html.
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

__all__ = ["Credentials", "Signed", "sign_v4"]

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


@dataclass(frozen=True, slots=True)
class Signed:
    canonical_request: str
    string_to_sign: str
    signature: str
    #: Headers to add to the request (Authorization, X-Amz-Date, and the token or body hash).
    headers: dict[str, str]


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _canonical_path(path: str, normalize: bool) -> str:
    path = unquote(path) or "/"
    if normalize:
        trailing = path.endswith("/") and path != "/"
        path = posixpath.normpath("/" + path.lstrip("/"))
        while "//" in path:
            path = path.replace("//", "/")
        if trailing and not path.endswith("/"):
            path += "/"
    return "/".join(_encode(segment) for segment in path.split("/"))


def _canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&") if query else []:
        key, _, value = part.partition("=")
        pairs.append((_encode(unquote(key)), _encode(unquote(value))))
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def _canonical_headers(headers: Sequence[tuple[str, str]]) -> tuple[str, str]:
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.strip().lower(), []).append(" ".join(value.split()))
    names = sorted(merged)
    lines = "".join(f"{name}:{','.join(merged[name])}\n" for name in names)
    return lines, ";".join(names)


def sign_v4(
    *,
    method: str,
    path: str,
    query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    credentials: Credentials,
    region: str,
    service: str,
    when: datetime,
    normalize: bool = True,
    sign_body: bool = False,
    sign_token: bool = True,
) -> Signed:
    """Sign a request: ``headers`` must include Host; the result's headers go on the request.

    ``path`` and ``query`` are as sent (percent-encoded or not); ``normalize`` removes dot
    segments and repeated slashes (every service but S3); ``sign_body`` adds and signs
    ``X-Amz-Content-Sha256``; ``sign_token`` False sends the session token unsigned (as a few
    services want).
    """
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    payload_hash = hashlib.sha256(body).hexdigest()
    added = {"X-Amz-Date": stamp}
    if credentials.session_token is not None and sign_token:
        added["X-Amz-Security-Token"] = credentials.session_token
    if sign_body:
        added["X-Amz-Content-Sha256"] = payload_hash
    header_lines, signed_headers = _canonical_headers([*headers, *added.items()])
    if credentials.session_token is not None and not sign_token:
        added["X-Amz-Security-Token"] = credentials.session_token
    canonical = "\n".join(
        [
            method.upper(),
            _canonical_path(path, normalize),
            _canonical_query(query),
            header_lines,
            signed_headers,
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{credentials.secret_access_key}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    added["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope},"
        f" SignedHeaders={signed_headers}, Signature={signature}"
    )
    return Signed(canonical, string_to_sign, signature, added)
