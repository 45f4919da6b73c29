"""Health and the unauthenticated GPU name list the official CLI fetches at every start."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gpuyard.api.deps import call_public
from gpuyard.services.fleet import gpu_names

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request):
    return {"success": True, "status": "ok", "version": request.app.state.version}


@router.get("/api/v0/gpu_names/unique")
async def unique_gpu_names(request: Request):
    return {"gpu_names": await call_public(request, gpu_names)}
