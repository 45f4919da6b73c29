"""Account endpoints: secrets (env vars, VAST-WIRE §14) and API keys with permissions (§15)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from gpuyard.api.deps import AUTHENTICATED, call, call_with_key
from gpuyard.api.edge import JSONAnswer
from gpuyard.services.accounts import apikeys
from gpuyard.services.accounts import secrets as svc
from gpuyard.wire.apikeys import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyReset, ApiKeyShown
from gpuyard.wire.common import Done, EmptyBody
from gpuyard.wire.secrets import SecretDelete, SecretDone, SecretList, SecretWrite
from gpuyard.wire.types import PathId

router = APIRouter(tags=["account"], **AUTHENTICATED)

KeyId = Annotated[PathId("API key id"), Path(description="an API key id from show api-keys")]


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


# -- API keys ------------------------------------------------------------------------------------
@router.post("/api/v0/auth/apikeys", response_model=ApiKeyCreated)
async def create_api_key(request: Request, body: ApiKeyCreate | None = None):
    """Create a key (``permissions``: Vast's permission document; none: a full key). Its text is
    in this answer only."""
    return JSONAnswer(await call_with_key(request, apikeys.create_key, body or ApiKeyCreate()))


@router.get("/api/v0/auth/apikeys", response_model=ApiKeyList)
async def list_api_keys(request: Request):
    """Your keys: name, dates and permissions (never the keys themselves)."""
    return JSONAnswer({"success": True, "apikeys": await call_with_key(request, apikeys.list_keys)})


@router.get("/api/v0/auth/apikeys/{key_id:int}", response_model=ApiKeyShown)
async def show_api_key(request: Request, key_id: KeyId):
    """One of your keys."""
    return JSONAnswer({"success": True, "apikey": await call_with_key(request, apikeys.show_key, key_id)})


@router.delete("/api/v0/auth/apikeys/{key_id:int}", response_model=Done)
async def delete_api_key(request: Request, key_id: KeyId, body: EmptyBody | None = None):
    """Delete one of your keys: it is refused (401) from the next request on."""
    answer = await call_with_key(request, apikeys.delete_key, key_id)
    return JSONAnswer({"success": True, "msg": answer["msg"]})


@router.put("/api/v0/commands/reset_apikey", response_model=ApiKeyReset)
async def reset_api_key(request: Request, body: EmptyBody | None = None):
    """Replace the key this request came with by a new one (same permissions); the new key is
    in this answer only."""
    return JSONAnswer(await call_with_key(request, apikeys.reset_key))
