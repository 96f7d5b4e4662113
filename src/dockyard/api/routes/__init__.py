"""The ``/v1`` routes, one module per resource; each parses its input, calls the facade and
renders a document.

The resource routers are included in a fixed order, which is the order of the operations in the
OpenAPI document; within a resource, a literal path (``/rules/test-pattern``) is declared before
the parameterised one it would otherwise match (``/rules/{name}``).
"""

from __future__ import annotations

from fastapi import APIRouter

from dockyard.api.problems import PROBLEM_RESPONSES
from dockyard.api.routes import audit, definitions, events, jobs, queues, schedules, tokens

__all__ = ["router"]

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)
for resource in (definitions, jobs, schedules, events, queues, tokens, audit):
    router.include_router(resource.router)
