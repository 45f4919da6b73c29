"""``GET /api/v0/users/current`` (VAST-WIRE §8)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gpuyard.api.deps import call
from gpuyard.services.users import user_row

router = APIRouter()


@router.get("/api/v0/users/current")
async def current_user(request: Request):
    return await call(request, lambda _session, user: user_row(user))
