"""The ``/v1/tokens`` routes: create, list and revoke API tokens.

A token's secret is shown once, in the answer that creates it; the store keeps only its hash,
and no other answer carries it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from dockyard.api.auth import allowed
from dockyard.api.routes.dependencies import App
from dockyard.api.schemas import TokenCreated, TokenIn, TokenOut
from dockyard.app import Tokens
from dockyard.domain.documents import token_document

__all__ = ["router"]

router = APIRouter()


@router.post(
    "/tokens", status_code=201, response_model=TokenCreated, dependencies=[allowed(Tokens.create)]
)
async def create_token(body: TokenIn, app: App) -> dict[str, Any]:
    """A new token; its secret is in this answer only."""
    expires_in = (
        None if body.expires_in_seconds is None else timedelta(seconds=body.expires_in_seconds)
    )
    token, secret = await app.tokens.create(
        body.name, body.role, expires_at=body.expires_at, expires_in=expires_in
    )
    return {**token_document(token), "secret": secret}


@router.get("/tokens", response_model=list[TokenOut], dependencies=[allowed(Tokens.list)])
async def list_tokens(app: App) -> list[dict[str, Any]]:
    return [token_document(token) for token in await app.tokens.list()]


@router.delete("/tokens/{token_id}", response_model=TokenOut, dependencies=[allowed(Tokens.revoke)])
async def revoke_token(token_id: str, app: App) -> dict[str, Any]:
    return token_document(await app.tokens.revoke(token_id))
