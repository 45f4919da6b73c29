"""Offer searches (VAST-WIRE §4.1, §4.2, §7): GPU bundles and volume offers."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gpuyard.api.deps import call_read
from gpuyard.api.wire import json_body
from gpuyard.services import offers as svc

router = APIRouter()


def _limits(request: Request) -> dict[str, int]:
    settings = request.app.state.settings
    return {"default_limit": settings.default_search_limit,
            "max_limit": settings.max_search_limit}


@router.post("/api/v0/bundles")
async def search_bundles(request: Request):
    body = await json_body(request)
    rows = await call_read(request, svc.search_offers, body, **_limits(request))
    return {"success": True, "offers": rows}


@router.put("/api/v0/search/asks")
async def search_asks(request: Request):
    body = await json_body(request)
    rows = await call_read(request, svc.search_asks, body, **_limits(request))
    return {"success": True, "offers": rows}


@router.post("/api/v0/volumes/search")
async def search_volumes(request: Request):
    body = await json_body(request)
    rows = await call_read(request, svc.search_volume_offers, body, **_limits(request))
    return {"success": True, "offers": rows}
