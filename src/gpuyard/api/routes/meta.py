"""Health, readiness and the unauthenticated GPU name list the official CLI fetches at every
start."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from gpuyard.api.deps import PUBLIC, call_public
from gpuyard.api.edge import JSONAnswer
from gpuyard.errors import Unavailable
from gpuyard.services.market.fleet import gpu_names
from gpuyard.store.db import write_check
from gpuyard.wire.common import ErrorBody, GpuNames, Health

router = APIRouter(tags=["meta"], **PUBLIC)


@router.get("/healthz", response_model=Health)
async def healthz(request: Request):
    """The process answers (no database work: cheap enough for a tight liveness probe)."""
    return JSONAnswer({"success": True, "status": "ok", "version": request.app.state.version})


@router.get("/readyz", response_model=Health, responses={503: {"model": ErrorBody,
                                                               "description": "not ready"}})
async def readyz(request: Request):
    """Ready for work: the database takes a write within two seconds (503 otherwise)."""
    problem = await run_in_threadpool(write_check, request.app.state.engine)
    if problem is not None:
        raise Unavailable(f"the database cannot take a write: {problem}", "not_ready")
    return JSONAnswer({"success": True, "status": "ready", "version": request.app.state.version})


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def metrics(request: Request):
    """Prometheus metrics: requests by route and status, launches, instances by status."""
    body = await run_in_threadpool(request.app.state.metrics.render)
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/api/v0/gpu_names/unique", response_model=GpuNames)
async def unique_gpu_names(request: Request):
    """The GPU models of the fleet (the official CLI's ``launch instance -g`` choices)."""
    return JSONAnswer({"gpu_names": await call_public(request, gpu_names)})
