"""Errors as RFC 9457 ``application/problem+json``, naming the field at fault.

Every error a user can cause maps to its HTTP meaning: malformed JSON 400, no or bad token 401,
a role that does not allow it 403, unknown object 404, a state that forbids it 409, a body too
large 413, a value that breaks a rule 422 (a body nested too deep included), too many log
streams 429. Anything else is a bug, logged, and answered 500 without internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dockyard.errors import (
    AuthenticationError,
    ConflictError,
    DockyardError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)

__all__ = ["PROBLEM_RESPONSES", "install_problem_handlers", "problem", "problem_response"]

log = logging.getLogger("dockyard.api")
MEDIA_TYPE = "application/problem+json"

_STATUS = {
    ValidationError: (422, "Invalid request"),
    NotFoundError: (404, "Not found"),
    ConflictError: (409, "Conflict"),
    AuthenticationError: (401, "Unauthorized"),
    PermissionDeniedError: (403, "Forbidden"),
}

_PROBLEM_SCHEMA = {
    "content": {
        MEDIA_TYPE: {
            "schema": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "field": {"type": "string"},
                    "rule": {"type": "string"},
                },
                "required": ["title", "status", "detail"],
            }
        }
    }
}


def problem_response(description: str) -> dict[str, Any]:
    """An OpenAPI response that is a problem document."""
    return {"description": description, **_PROBLEM_SCHEMA}


#: Documented on every route, so clients (and schemathesis) know the error shape.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: problem_response(title)
    for code, title in (
        (400, "Malformed request"),
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (404, "Not found"),
        (409, "Conflict"),
        (413, "Content too large"),
        (422, "Invalid request"),
    )
}


def problem(status: int, title: str, detail: str, **extra: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_problem_handlers(app: FastAPI) -> None:
    async def dockyard_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, DockyardError)
        for kind, (status, title) in _STATUS.items():
            if isinstance(error, kind):
                if isinstance(error, ValidationError):
                    return problem(status, title, str(error), field=error.field, rule=error.rule)
                return problem(status, title, str(error))
        log.error("unmapped error: %r", error)
        return problem(500, "Internal error", "see the server log")

    async def invalid_request(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        first = error.errors()[0]
        if first.get("type") == "json_invalid":
            return problem(400, "Malformed request", "the body is not valid JSON")
        field = _field(first.get("loc", ()))
        rule = str(first.get("msg", "is invalid"))
        return problem(422, "Invalid request", f"{field}: {rule}", field=field, rule=rule)

    async def http_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        return problem(error.status_code, str(error.detail), str(error.detail))

    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("request failed", exc_info=error)
        return problem(500, "Internal error", "see the server log")

    app.add_exception_handler(DockyardError, dockyard_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
