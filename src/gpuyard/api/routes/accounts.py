"""Account endpoints: secrets (env vars, VAST-WIRE §14)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gpuyard.api.deps import AUTHENTICATED, call
from gpuyard.api.edge import JSONAnswer
from gpuyard.services import secrets as svc
from gpuyard.wire.secrets import SecretDelete, SecretDone, SecretList, SecretWrite

router = APIRouter(tags=["account"], **AUTHENTICATED)


# -- secrets -------------------------------------------------------------------------------------
@router.get("/api/v0/secrets", response_model=SecretList)
async def list_secrets(request: Request):
    """Your secrets with their values (the official clients mask them unless asked)."""
    return JSONAnswer({"success": True, "secrets": await call(request, svc.list_secrets)})


@router.post("/api/v0/secrets", response_model=SecretDone)
async def create_secret(request: Request, body: SecretWrite | None = None):
    """Create a secret ``{"key": NAME, "value": V}`` (409 if the name exists: update it)."""
    return JSONAnswer(await call(request, svc.create_secret, body or SecretWrite.model_validate({})))


@router.put("/api/v0/secrets", response_model=SecretDone)
async def update_secret(request: Request, body: SecretWrite | None = None):
    """Change a secret's value (404 if there is none by that name)."""
    return JSONAnswer(await call(request, svc.update_secret, body or SecretWrite.model_validate({})))


@router.delete("/api/v0/secrets", response_model=SecretDone)
async def delete_secret(request: Request, body: SecretDelete | None = None):
    """Delete a secret ``{"key": NAME}``."""
    return JSONAnswer(await call(request, svc.delete_secret, body or SecretDelete.model_validate({})))
