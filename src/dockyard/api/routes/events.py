"""The ``/v1/events`` and ``/v1/rules`` routes: the event bus and the rules that route it.

Events arrive as a PutEvents request, as one envelope posted as another service emitted it, or
as a registry's notification (``/webhooks/registry``); all of them, or none, are put on the bus.
Rules are created, changed, enabled and disabled here, and their dead invocations retried.
``/rules/test-pattern`` is declared before ``/rules/{name}``, so that it is never read as a name.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from dockyard.api.auth import allowed
from dockyard.api.problems import problem
from dockyard.api.routes.dependencies import App
from dockyard.api.rule_schemas import (
    EventOut,
    InvocationOut,
    PatternTestIn,
    PatternTestOut,
    PutEventsOut,
    RegistryNotificationOut,
    RetryIn,
    RetryOut,
    RuleIn,
    RuleOut,
    RulePatch,
)
from dockyard.app import Events, Rules
from dockyard.domain.documents import iso
from dockyard.domain.registry import MEDIA_TYPES as REGISTRY_MEDIA_TYPES
from dockyard.domain.rules import InvocationState, invocation_document, rule_document
from dockyard.errors import ValidationError

__all__ = ["router"]

router = APIRouter()

# -- events -------------------------------------------------------------------------------------

#: ``POST /v1/events`` takes a PutEvents request or one event as another service emitted it.
_EVENTS_BODY = Body(
    description='`{"entries": [...]}` (or AWS\'s `Entries`) with 1-10 entries, each in'
    " PutEvents form (`Source`, `DetailType`, `Detail` as JSON text, `Resources`, `Time`) or as an"
    " envelope (`source`, `detail-type`, `detail` as an object, `resources`, `time`, `account`,"
    " `region`); or one envelope alone, e.g. an ECR `ECR Image Action` event posted as it is."
    " Sources beginning `dockyard.` are Dockyard's own and refused.",
    openapi_examples={
        "put-events": {
            "summary": "PutEvents entries",
            "value": {
                "entries": [
                    {"Source": "ci", "DetailType": "Build Done", "Detail": '{"commit": "abc1"}'}
                ]
            },
        },
        "envelope": {
            "summary": "One event as another service emitted it",
            "value": {"source": "aws.ecr", "detail-type": "ECR Image Action", "detail": {}},
        },
    },
)
_REQUEST_KEYS = ("entries", "Entries")
#: The registry posts its envelope with its own media types, which FastAPI would not parse.
_REGISTRY_ENVELOPE_SCHEMA = {
    "type": "object",
    "properties": {"events": {"type": "array", "items": {"type": "object"}}},
    "required": ["events"],
}
_REGISTRY_BODY = {
    "requestBody": {
        "required": True,
        "description": "A Docker Distribution notification envelope (its `notifications`"
        " endpoint), sent with the token in the endpoint's `headers`",
        "content": {
            media_type: {"schema": _REGISTRY_ENVELOPE_SCHEMA}
            for media_type in sorted(REGISTRY_MEDIA_TYPES)
        },
    }
}


def _entries(body: dict[str, Any]) -> object:
    """The entries of a PutEvents request; a body without ``entries`` is one event."""
    given = [key for key in _REQUEST_KEYS if key in body]
    if not given:
        return body
    for key in body:
        if key not in _REQUEST_KEYS:
            raise ValidationError(key, "is not a field of a PutEvents request (entries)")
    if len(given) > 1:
        raise ValidationError("Entries", "give entries or Entries, not both")
    return body[given[0]]


@router.post("/events", response_model=PutEventsOut, dependencies=[allowed(Events.put)])
async def put_events(body: Annotated[dict[str, Any], _EVENTS_BODY], app: App) -> dict[str, Any]:
    """Put events on the bus (PutEvents): all of them, or none when one is invalid (422)."""
    events = await app.events.put(_entries(body))
    return {"entries": [{"event_id": event.id} for event in events], "failed_entry_count": 0}


@router.get("/events", response_model=list[EventOut], dependencies=[allowed(Events.recent)])
async def list_events(
    app: App,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """Events on the bus, newest first. The bus keeps events only while a rule is enabled."""
    return [
        {"seq": stored.seq, "received_at": iso(stored.received_at), "event": dict(stored.envelope)}
        for stored in await app.events.recent(limit, source)
    ]


@router.post(
    "/webhooks/registry",
    response_model=RegistryNotificationOut,
    openapi_extra=_REGISTRY_BODY,
    dependencies=[allowed(Events.registry_notification)],
)
async def registry_notification(request: Request, app: App) -> JSONResponse | dict[str, Any]:
    """A registry's notification: each tagged manifest push becomes an ``Image Pushed`` event
    of source ``dockyard.registry``; pulls, deletes and layer pushes make none."""
    body = await request.body()
    try:
        json.loads(body)
    except ValueError:  # as for every other body: malformed JSON is 400
        return problem(400, "Malformed request", "the body is not valid JSON")
    events = await app.events.registry_notification(body, request.headers.get("content-type"))
    return {"events": [event.envelope() for event in events]}


# -- rules --------------------------------------------------------------------------------------


@router.post(
    "/rules", status_code=201, response_model=RuleOut, dependencies=[allowed(Rules.create)]
)
async def create_rule(body: RuleIn, app: App) -> dict[str, Any]:
    """Create a rule: an event pattern and the targets it invokes. 409 if the name is taken."""
    document = body.model_dump(exclude_unset=True)
    return rule_document(await app.rules.create(document, name=body.name))


@router.get("/rules", response_model=list[RuleOut], dependencies=[allowed(Rules.list)])
async def list_rules(app: App) -> list[dict[str, Any]]:
    return [rule_document(rule) for rule in await app.rules.list()]


@router.post(
    "/rules/test-pattern",
    response_model=PatternTestOut,
    dependencies=[allowed(Events.test_pattern)],
)
async def test_pattern(body: PatternTestIn, app: App) -> dict[str, Any]:
    """TestEventPattern: whether the event matches; an invalid pattern is 422 with AWS's reason."""
    return {"result": await app.events.test_pattern(body.pattern, body.event)}


@router.get("/rules/{name}", response_model=RuleOut, dependencies=[allowed(Rules.get)])
async def get_rule(name: str, app: App) -> dict[str, Any]:
    return rule_document(await app.rules.get(name))


@router.patch("/rules/{name}", response_model=RuleOut, dependencies=[allowed(Rules.update)])
async def update_rule(name: str, body: RulePatch, app: App) -> dict[str, Any]:
    """Change the fields given; the others keep their values, and ``targets`` is replaced whole."""
    return rule_document(await app.rules.update(name, body.model_dump(exclude_unset=True)))


@router.delete("/rules/{name}", response_model=RuleOut, dependencies=[allowed(Rules.delete)])
async def delete_rule(name: str, app: App) -> dict[str, Any]:
    """Delete a rule and its invocations; the answer is what was deleted."""
    return rule_document(await app.rules.delete(name))


@router.post(
    "/rules/{name}/enable", response_model=RuleOut, dependencies=[allowed(Rules.set_enabled)]
)
async def enable_rule(name: str, app: App) -> dict[str, Any]:
    """Match events again."""
    return rule_document(await app.rules.set_enabled(name, True))


@router.post(
    "/rules/{name}/disable", response_model=RuleOut, dependencies=[allowed(Rules.set_enabled)]
)
async def disable_rule(name: str, app: App) -> dict[str, Any]:
    """Match no event while disabled; invocations already made are still delivered."""
    return rule_document(await app.rules.set_enabled(name, False))


@router.get(
    "/rules/{name}/history",
    response_model=list[InvocationOut],
    dependencies=[allowed(Rules.history)],
)
async def rule_history(
    name: str,
    app: App,
    state: InvocationState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """The rule's invocations, newest first; ``?state=DEAD`` is its dead list."""
    return [invocation_document(i) for i in await app.rules.history(name, state, limit)]


@router.post(
    "/rules/{name}/retry", response_model=RetryOut, dependencies=[allowed(Rules.retry_invocations)]
)
async def retry_invocations(name: str, app: App, body: RetryIn | None = None) -> dict[str, Any]:
    """Deliver dead invocations again (these ``ids``, or the whole dead list)."""
    return {"retried": await app.rules.retry_invocations(name, body.ids if body else None)}
