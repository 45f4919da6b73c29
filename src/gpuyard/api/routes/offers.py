"""Offer searches (VAST-WIRE §4.1, §4.2, §7): GPU bundles and volume offers."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gpuyard.api.deps import AUTHENTICATED, call_read
from gpuyard.api.edge import JSONAnswer
from gpuyard.services.market import offers as svc
from gpuyard.wire.offers import AsksSearch, OfferList, OfferSearch, VolumeOfferList, VolumeSearch

router = APIRouter(tags=["offers"], **AUTHENTICATED)


def _limits(request: Request) -> dict[str, int]:
    settings = request.app.state.settings
    return {"default_limit": settings.default_search_limit,
            "max_limit": settings.max_search_limit}


@router.post("/api/v0/bundles", response_model=OfferList)
async def search_bundles(request: Request, body: OfferSearch | None = None):
    """Search GPU offers: filters on the offer fields, ``order``, ``type``, ``limit``,
    ``allocated_storage``."""
    search = (body or OfferSearch()).checked(**_limits(request))
    rows = await call_read(request, svc.search_offers, search)
    return JSONAnswer({"success": True, "offers": rows})


@router.put("/api/v0/search/asks", response_model=OfferList)
async def search_asks(request: Request, body: AsksSearch | None = None):
    """The same search as /bundles/, wrapped: ``{"select_cols": ["*"], "q": {…}}``."""
    body = body or AsksSearch()
    search = (body.q or OfferSearch()).checked(**_limits(request))
    rows = await call_read(request, svc.search_asks, search, body.select_cols)
    return JSONAnswer({"success": True, "offers": rows})


@router.post("/api/v0/volumes/search", response_model=VolumeOfferList)
async def search_volumes(request: Request, body: VolumeSearch | None = None):
    """Search volume offers (free disk on machines)."""
    search = (body or VolumeSearch()).checked(**_limits(request))
    rows = await call_read(request, svc.search_volume_offers, search)
    return JSONAnswer({"success": True, "offers": rows})
