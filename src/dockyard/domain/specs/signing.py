"""Request signing in definition documents: the ``signing`` field of ``http`` and ``lambda``.

Shared by both kinds, so it is parsed and written in one place: the same keys, the same
messages (``signing.kind``, ``signing.secret_env``, …) whichever kind holds it. The variables
named are worker credentials: ``DOCKYARD_*`` and ``PG*`` are refused here, and the worker
reads only those its owner allows (``credential_env``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.domain.fields import check_credential_name, mapping, word
from dockyard.domain.records import HmacSigning, Signing, SigV4Signing
from dockyard.domain.specs.kind import FieldShape
from dockyard.errors import ValidationError

__all__ = ["SIGNING_SHAPE", "parse_signing", "signing_document"]

SIGNING_SHAPE = FieldShape(accepts=dict[str, Any])

_HMAC_KEYS = frozenset({"kind", "secret_env"})
_SIGV4_KEYS = frozenset(
    {"kind", "service", "region", "access_key_env", "secret_key_env", "session_token_env"}
)


def parse_signing(value: object) -> Signing:
    """A ``signing`` mapping: ``hmac-sha256`` with ``secret_env``, or ``aws-sigv4``."""
    kind = value.get("kind") if isinstance(value, Mapping) else None
    if kind == "hmac-sha256":
        doc = mapping(value, "signing", _HMAC_KEYS)
        secret_env = check_credential_name(doc.get("secret_env"), "signing.secret_env")
        return HmacSigning(secret_env=secret_env)
    if kind == "aws-sigv4":
        doc = mapping(value, "signing", _SIGV4_KEYS)
        defaults = SigV4Signing(service="x", region="x")

        def env(key: str, default: str) -> str:
            return check_credential_name(doc.get(key, default), f"signing.{key}")

        return SigV4Signing(
            service=word(doc.get("service"), "signing.service"),
            region=word(doc.get("region"), "signing.region"),
            access_key_env=env("access_key_env", defaults.access_key_env),
            secret_key_env=env("secret_key_env", defaults.secret_key_env),
            session_token_env=env("session_token_env", defaults.session_token_env),
        )
    raise ValidationError("signing.kind", "must be hmac-sha256 or aws-sigv4")


def signing_document(signing: Signing) -> dict[str, Any]:
    if isinstance(signing, HmacSigning):
        return {"kind": signing.kind, "secret_env": signing.secret_env}
    return {
        "kind": signing.kind,
        "service": signing.service,
        "region": signing.region,
        "access_key_env": signing.access_key_env,
        "secret_key_env": signing.secret_key_env,
        "session_token_env": signing.session_token_env,
    }
