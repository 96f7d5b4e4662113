"""The FastAPI application: the ``/v1`` router, problem responses and the open health checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from dockyard.api.problems import install_problem_handlers, problem
from dockyard.api.routes import router
from dockyard.app import Dockyard

__all__ = ["create_app"]


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
    install_problem_handlers(app)
    app.include_router(router)

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
