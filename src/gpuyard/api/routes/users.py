"""``GET /api/v0/users/current`` (VAST-WIRE §8)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gpuyard.api.deps import AUTHENTICATED, call
from gpuyard.api.edge import JSONAnswer
from gpuyard.services.ledger.billing import account_row
from gpuyard.wire.users import UserRow

router = APIRouter(tags=["users"], **AUTHENTICATED)


@router.get("/api/v0/users/current", response_model=UserRow)
async def current_user(request: Request):
    """You: id, name, balance and credit, quota and what counts against it, and the fields the
    official client shows."""
    return JSONAnswer(await call(request, account_row))
