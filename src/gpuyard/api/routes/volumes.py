"""Volumes endpoints (VAST-WIRE §7): create from a volume offer, list, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from gpuyard.api.deps import AUTHENTICATED, call
from gpuyard.api.edge import JSONAnswer
from gpuyard.errors import InvalidInput
from gpuyard.services.rentals import volumes as svc
from gpuyard.wire.common import EmptyBody
from gpuyard.wire.types import PathId
from gpuyard.wire.volumes import VolumeCreate, VolumeCreated, VolumeDeleted, VolumeList

router = APIRouter(tags=["volumes"], **AUTHENTICATED)


@router.put("/api/v0/volumes", response_model=VolumeCreated)
async def create_volume(request: Request, body: VolumeCreate | None = None):
    """Create a volume from a volume offer (``{"id": offer, "size": GB, "name"?}``)."""
    row = await call(request, svc.create_volume, body or VolumeCreate.model_validate({}))
    msg = f"Volume {row['id']} created: {row['disk_space']:g} GB on machine {row['machine_id']}"
    return JSONAnswer({"success": True, "msg": msg, "volume_id": row["id"], "volume": row})


@router.get("/api/v0/volumes", response_model=VolumeList)
async def list_volumes(
    request: Request,
    owner: Annotated[str, Query(max_length=20, description='"me": your own volumes')] = "me",
    type: Annotated[str, Query(max_length=40, description="all_volume, local_volume or network_volume")]
    = "all_volume",
):
    """Your volumes."""
    if owner != "me":
        raise InvalidInput(f"owner must be 'me' (you can list only your own volumes), not {owner!r}")
    rows = await call(request, svc.list_volumes, type)
    return JSONAnswer({"success": True, "volumes": rows})


@router.delete("/api/v0/volumes", response_model=VolumeDeleted)
async def delete_volume(
    request: Request,
    id: Annotated[PathId("id (the volume)") | None, Query(description="the volume id")] = None,
    body: dict | None = None,
):
    """Delete one of your volumes: ``DELETE /api/v0/volumes/?id=N`` (the body is ``{}``)."""
    if id is None:
        if body and "id" in body:
            raise InvalidInput("pass the volume id in the query string: DELETE /api/v0/volumes/?id=N")
        raise InvalidInput("id is required in the query string: DELETE /api/v0/volumes/?id=N")
    EmptyBody.model_validate({k: v for k, v in (body or {}).items() if k != "id"})
    row = await call(request, svc.delete_volume, id)
    return JSONAnswer({
        "success": True,
        "msg": f"Volume {row['id']} deleted; its {row['disk_space']:g} GB on machine "
        f"{row['machine_id']} are free again",
        "volume_id": row["id"],
    })
