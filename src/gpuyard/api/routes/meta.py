"""Health, readiness and the unauthenticated GPU name list the official CLI fetches at every
start."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gpuyard.api.deps import PUBLIC, call_public
from gpuyard.api.edge import JSONAnswer
from gpuyard.services.fleet import gpu_names
from gpuyard.wire.common import GpuNames, Health

router = APIRouter(tags=["meta"], **PUBLIC)


@router.get("/healthz", response_model=Health)
async def healthz(request: Request):
    """The process answers (no database work: cheap enough for a tight liveness probe)."""
    return JSONAnswer({"success": True, "status": "ok", "version": request.app.state.version})


@router.get("/api/v0/gpu_names/unique", response_model=GpuNames)
async def unique_gpu_names(request: Request):
    """The GPU models of the fleet (the official CLI's ``launch instance -g`` choices)."""
    return JSONAnswer({"gpu_names": await call_public(request, gpu_names)})
