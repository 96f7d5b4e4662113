"""The FastAPI application: the ``/v1`` router behind the edge's checks, problem responses, and
what is open to anyone.

Open without a token: the health checks (``/healthz``, ``/readyz``) and the API's description
(``/openapi.json`` and the pages that render it, ``/docs`` and ``/redoc``), which describe the
routes and reveal no data. Everything under ``/v1`` needs a token, checked before its body is
read (:mod:`dockyard.api.edge`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from dockyard.api.edge import Authenticate, LimitBody
from dockyard.api.problems import install_problem_handlers, problem
from dockyard.api.routes import router
from dockyard.api.streams import FollowSlots
from dockyard.app import Dockyard

__all__ = ["OPEN_PATHS", "create_app"]

#: The paths anyone may read; every other path is under ``/v1`` and needs a token.
OPEN_PATHS = ("/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")


def create_app(dockyard: Dockyard) -> FastAPI:
    """An API over ``dockyard``; the caller owns the facade and closes it."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(
        title="Dockyard",
        version="0.1.0",
        summary="Durable jobs: definitions, jobs, attempts, logs, queues, workers.",
        lifespan=lifespan,
    )
    app.state.dockyard = dockyard
    app.state.follow_slots = FollowSlots()
    install_problem_handlers(app)
    app.include_router(router)
    # The last added runs first: the token before the body is read, the body before a route.
    app.add_middleware(LimitBody)
    app.add_middleware(Authenticate, dockyard=dockyard)

    @app.get("/healthz", include_in_schema=True)
    async def healthz() -> dict[str, str]:
        """The process is up (no token needed)."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "The store is not reachable"}})
    async def readyz(request: Request) -> Any:
        """The store answers (no token needed)."""
        try:
            await request.app.state.dockyard.check_store()
        except Exception:
            return problem(503, "Not ready", "the store is not reachable")
        return {"status": "ready"}

    return app
