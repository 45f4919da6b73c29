"""Volumes endpoints (VAST-WIRE §7): create from a volume offer, list, delete."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gpuyard.api.deps import call
from gpuyard.api.wire import json_body, query_args
from gpuyard.errors import InvalidInput
from gpuyard.services import volumes as svc

router = APIRouter()


@router.put("/api/v0/volumes")
async def create_volume(request: Request):
    body = await json_body(request)
    row = await call(request, svc.create_volume, body)
    msg = f"Volume {row['id']} created: {row['disk_space']:g} GB on machine {row['machine_id']}"
    return {"success": True, "msg": msg, "volume_id": row["id"], "volume": row}


@router.get("/api/v0/volumes")
async def list_volumes(request: Request):
    args = query_args(request)
    owner = args.get("owner", "me")

    def own_volumes(session, user, kind):
        if owner != "me":
            raise InvalidInput(f"owner must be 'me' (you can list only your own volumes), not {owner!r}")
        return svc.list_volumes(session, user, kind)

    rows = await call(request, own_volumes, args.get("type", "all_volume"))
    return {"success": True, "volumes": rows}


@router.delete("/api/v0/volumes")
async def delete_volume(request: Request):
    body = await json_body(request)
    args = query_args(request)
    if "id" not in args and "id" in body:
        raise InvalidInput("pass the volume id in the query string: DELETE /api/v0/volumes/?id=N")
    row = await call(request, svc.delete_volume, args.get("id"))
    return {
        "success": True,
        "msg": f"Volume {row['id']} deleted; its {row['disk_space']:g} GB on machine "
        f"{row['machine_id']} are free again",
        "volume_id": row["id"],
    }
