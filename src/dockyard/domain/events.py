"""Events in the EventBridge envelope: what ``PutEvents`` accepts and what the bus carries.

An event is ``{version, id, detail-type, source, account, time, region, resources, detail}``.
``POST /v1/events`` and ``dockyard events put`` take up to ten entries at once, each either as
``PutEvents`` writes it (``Source``, ``DetailType``, ``Detail`` as a JSON string, ``Resources``,
``Time``) or as an envelope (``source``, ``detail-type``, ``detail`` as an object, …), so that an
event another service emitted (ECR's ``ECR Image Action``, say) can be put as it is.

Sources beginning with ``dockyard.`` are Dockyard's own (job state changes, definitions
registered, schedules fired, images pushed to a registry): they cannot be put, so a rule on them
only ever sees what really happened.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard.domain.fields import check_depth, check_text_depth
from dockyard.errors import ValidationError

__all__ = [
    "MAX_ENTRIES",
    "MAX_ENTRY_BYTES",
    "RESERVED_PREFIX",
    "Event",
    "event_from_envelope",
    "iso_time",
    "parse_entries",
]

#: Entries in one ``PutEvents`` request, as in EventBridge.
MAX_ENTRIES = 10
#: The largest entry, as in EventBridge (256 KB).
MAX_ENTRY_BYTES = 256 * 1024
#: Sources Dockyard emits, which nobody else may put.
RESERVED_PREFIX = "dockyard."

_PUT_EVENTS_KEYS = frozenset(
    {"Source", "DetailType", "Detail", "Resources", "Time", "EventBusName"}
)
_ENVELOPE_KEYS = frozenset(
    {"version", "id", "source", "detail-type", "detail", "resources", "time", "account", "region"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    id: str
    source: str
    detail_type: str
    #: ISO 8601 in UTC, to the second (``2026-12-01T10:00:00Z``), as EventBridge writes it.
    time: str
    detail: Mapping[str, Any]
    resources: tuple[str, ...] = ()
    account: str = ""
    region: str = ""

    def envelope(self) -> dict[str, Any]:
        """The event as rules match it and targets receive it."""
        return {
            "version": "0",
            "id": self.id,
            "detail-type": self.detail_type,
            "source": self.source,
            "account": self.account,
            "time": self.time,
            "region": self.region,
            "resources": list(self.resources),
            "detail": dict(self.detail),
        }

    @classmethod
    def new(
        cls,
        source: str,
        detail_type: str,
        detail: Mapping[str, Any],
        *,
        now: datetime,
        resources: Sequence[str] = (),
    ) -> Event:
        return cls(
            id=str(uuid.uuid4()),
            source=source,
            detail_type=detail_type,
            time=iso_time(now),
            detail=detail,
            resources=tuple(resources),
        )


def iso_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_entries(entries: object, *, now: datetime) -> list[Event]:
    """Validate a ``PutEvents`` request's entries: all of them, or an error naming the first bad one."""
    if isinstance(entries, Mapping):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise ValidationError("entries", "must be a list of 1 to 10 events")
    if len(entries) > MAX_ENTRIES:
        raise ValidationError("entries", f"at most {MAX_ENTRIES} events per request (PutEvents)")
    return [_parse_entry(entry, f"entries[{index}]", now) for index, entry in enumerate(entries)]


def _parse_entry(entry: object, where: str, now: datetime) -> Event:
    if not isinstance(entry, Mapping):
        raise ValidationError(where, "must be an object")
    for key, value in entry.items():  # before json.dumps recurses into the entry
        check_depth(value, f"{where}.{key}")
    try:
        size = len(json.dumps(entry).encode())
    except (TypeError, ValueError) as error:
        raise ValidationError(where, f"must be JSON ({error})") from None
    if size > MAX_ENTRY_BYTES:
        raise ValidationError(where, "must be at most 256 KB")
    if "Source" in entry or "DetailType" in entry:
        _known(entry, _PUT_EVENTS_KEYS, where, "a PutEvents entry")
        detail_text = entry.get("Detail", "{}")
        if not isinstance(detail_text, str):
            raise ValidationError(f"{where}.Detail", "must be a string holding a JSON object")
        try:
            detail = json.loads(check_text_depth(detail_text, f"{where}.Detail"))
        except json.JSONDecodeError as error:
            raise ValidationError(f"{where}.Detail", f"is not valid JSON ({error.msg})") from None
        return _event(
            where,
            source=entry.get("Source"),
            detail_type=entry.get("DetailType"),
            detail=detail,
            resources=entry.get("Resources", []),
            time=entry.get("Time"),
            names=("Source", "DetailType", "Detail", "Resources", "Time"),
            now=now,
        )
    _known(entry, _ENVELOPE_KEYS, where, "an event")
    for key in ("account", "region"):
        if not isinstance(entry.get(key, ""), str):
            raise ValidationError(f"{where}.{key}", "must be a string")
    event = _event(
        where,
        source=entry.get("source"),
        detail_type=entry.get("detail-type"),
        detail=entry.get("detail", {}),
        resources=entry.get("resources", []),
        time=entry.get("time"),
        names=("source", "detail-type", "detail", "resources", "time"),
        now=now,
    )
    return Event(
        id=event.id,
        source=event.source,
        detail_type=event.detail_type,
        time=event.time,
        detail=event.detail,
        resources=event.resources,
        account=entry.get("account", ""),
        region=entry.get("region", ""),
    )


def _known(entry: Mapping[str, Any], keys: frozenset[str], where: str, what: str) -> None:
    for key in entry:
        if key not in keys:
            raise ValidationError(f"{where}.{key}", f"is not a field of {what}")


def _event(
    where: str,
    *,
    source: object,
    detail_type: object,
    detail: object,
    resources: object,
    time: object,
    names: tuple[str, str, str, str, str],
    now: datetime,
) -> Event:
    source_name, type_name, detail_name, resources_name, time_name = names
    if not isinstance(source, str) or not 1 <= len(source) <= 256:
        raise ValidationError(f"{where}.{source_name}", "is required: 1-256 characters")
    if source.startswith(RESERVED_PREFIX):
        raise ValidationError(
            f"{where}.{source_name}", f"sources beginning with {RESERVED_PREFIX} are Dockyard's own"
        )
    if not isinstance(detail_type, str) or not 1 <= len(detail_type) <= 256:
        raise ValidationError(f"{where}.{type_name}", "is required: 1-256 characters")
    if not isinstance(detail, Mapping):
        raise ValidationError(f"{where}.{detail_name}", "must be a JSON object")
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise ValidationError(f"{where}.{resources_name}", "must be a list of strings")
    return Event(
        id=str(uuid.uuid4()),
        source=source,
        detail_type=detail_type,
        time=iso_time(now) if time is None else iso_time(_moment(time, f"{where}.{time_name}")),
        detail=dict(detail),
        resources=tuple(resources),
    )


def _moment(value: object, where: str) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    raise ValidationError(where, "must be an ISO 8601 time, e.g. 2026-12-01T10:00:00Z")


def event_from_envelope(envelope: Mapping[str, Any]) -> Event:
    """Read back :meth:`Event.envelope` (what the store keeps and the HTTP client receives)."""
    return Event(
        id=str(envelope["id"]),
        source=str(envelope["source"]),
        detail_type=str(envelope["detail-type"]),
        time=str(envelope["time"]),
        detail=dict(envelope.get("detail") or {}),
        resources=tuple(envelope.get("resources") or ()),
        account=str(envelope.get("account") or ""),
        region=str(envelope.get("region") or ""),
    )
