"""The SigV4 signer against every case of the public suite (aws-c-auth's v4 test suite, in
tests/vectors/sigv4/aws-c-auth-v4, see tests/vectors/README.md): canonical request, string
to sign and signature."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from dockyard.executors.sigv4 import Credentials, sign_v4

SUITE = Path(__file__).resolve().parent / "vectors" / "sigv4" / "aws-c-auth-v4"
CASES = sorted(path.name for path in SUITE.iterdir()) if SUITE.is_dir() else []


def parse_request(text: str) -> tuple[str, str, str, list[tuple[str, str]], bytes]:
    head, _, body = text.partition("\n\n")
    first, *lines = head.split("\n")
    method, _, rest = first.partition(" ")
    target = rest.rsplit(" ", 1)[0]
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = []
    for line in lines:
        if not line:
            continue
        if line[:1] in (" ", "\t") and headers:  # a folded value continues the header above
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
        else:
            name, _, value = line.partition(":")
            headers.append((name, value))
    return method, path, query, headers, body.encode()


def test_the_suite_is_there() -> None:
    assert len(CASES) >= 30, f"expected the SigV4 suite at {SUITE}"


@pytest.mark.parametrize("case", CASES)
def test_signer_matches_the_suite(case: str) -> None:
    folder = SUITE / case
    context = json.loads((folder / "context.json").read_text())
    method, path, query, headers, body = parse_request((folder / "request.txt").read_text())
    creds = context["credentials"]
    signed = sign_v4(
        method=method,
        path=path,
        query=query,
        headers=headers,
        body=body,
        credentials=Credentials(
            creds["access_key_id"], creds["secret_access_key"], creds.get("token")
        ),
        region=context["region"],
        service=context["service"],
        when=datetime.fromisoformat(context["timestamp"].replace("Z", "+00:00")),
        normalize=context["normalize"],
        sign_body=context["sign_body"],
        sign_token=not context.get("omit_session_token", False),
    )
    assert signed.canonical_request == (folder / "header-canonical-request.txt").read_text()
    assert signed.string_to_sign == (folder / "header-string-to-sign.txt").read_text()
    assert signed.signature == (folder / "header-signature.txt").read_text().strip()
