"""Object keys: one rule for both stores, so that a key valid on a laptop is valid on S3 and
can never name a file outside the local store's folder."""

from __future__ import annotations

from dockyard.errors import ValidationError

__all__ = ["RESERVED_SEGMENT", "validate_key", "validate_prefix"]

#: The local store keeps temporary files and each object's SHA-256 under ``<root>/.dockyard``.
RESERVED_SEGMENT = ".dockyard"
#: S3's limit on a key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024


def validate_key(key: object, field: str = "key") -> str:
    """``key`` when it is a relative ``/``-separated path of non-empty segments, none of them
    ``.``, ``..`` or ``.dockyard``; otherwise :class:`ValidationError` naming ``field``."""
    if not isinstance(key, str) or not key:
        raise ValidationError(field, "must be a non-empty string")
    _check_text(key, field)
    if key.startswith("/"):
        raise ValidationError(field, f"{key!r} must be relative (no leading '/')")
    for segment in key.split("/"):
        _check_segment(segment, key, field)
    return key


def validate_prefix(prefix: object, field: str = "prefix") -> str:
    """A listing prefix: empty, or the start of a valid key (it may end with ``/`` or inside
    a segment)."""
    if not isinstance(prefix, str):
        raise ValidationError(field, "must be a string")
    if not prefix:
        return prefix
    _check_text(prefix, field)
    if prefix.startswith("/"):
        raise ValidationError(field, f"{prefix!r} must be relative (no leading '/')")
    segments = prefix.split("/")
    for segment in segments[:-1]:
        _check_segment(segment, prefix, field)
    if segments[-1] in (".", ".."):
        raise ValidationError(field, f"{prefix!r} must not contain '.' or '..' segments")
    return prefix


def _check_text(key: str, field: str) -> None:
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValidationError(field, f"must be at most {MAX_KEY_BYTES} bytes in UTF-8")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        raise ValidationError(field, f"{key!r} must not contain control characters")
    if "\\" in key:
        raise ValidationError(field, f"{key!r} must use '/' to separate segments, not '\\'")


def _check_segment(segment: str, key: str, field: str) -> None:
    if not segment:
        raise ValidationError(
            field, f"{key!r} must not contain empty segments ('//' or a final '/')"
        )
    if segment in (".", ".."):
        raise ValidationError(field, f"{key!r} must not contain '.' or '..' segments")
    if segment == RESERVED_SEGMENT:
        raise ValidationError(field, f"{key!r} must not contain the reserved segment '.dockyard'")
