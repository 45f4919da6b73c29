"""Volumes: my volumes, creating one from a volume offer, deleting one (docs/console.md,
"Volumes"). The rules are gpuyard.services.rentals.volumes'; errors are shown next to their field or row."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gpuyard.errors import GpuyardError
from gpuyard.services.market.offers import search_volume_offers
from gpuyard.services.rentals.volumes import create_volume, delete_volume, list_volumes
from gpuyard.web.deps import run
from gpuyard.web.pages import page
from gpuyard.web.routes.launch import form_number, volume_offers_query
from gpuyard.web.session import check_csrf
from gpuyard.wire.base import parse
from gpuyard.wire.types import to_id
from gpuyard.wire.volumes import DEFAULT_SIZE, VolumeCreate

router = APIRouter(include_in_schema=False)

def _load(session, user) -> dict[str, Any]:
    return {"volumes": list_volumes(session, user),
            "offers": search_volume_offers(session, user, volume_offers_query())}


async def _render(request: Request, *, status: int = 200, form: dict[str, str] | None = None,
                  field_errors: dict[str, str] | None = None, row_errors: dict[int, str] | None = None,
                  error: str | None = None) -> HTMLResponse:
    ctx = await run(request, _load)
    return page(request, "volumes.html", "Volumes", status_code=status, section="volumes",
                flash=request.session.pop("flash", None), form=form or {},
                default_size=DEFAULT_SIZE,
                field_errors=field_errors or {}, row_errors=row_errors or {}, error=error, **ctx)


@router.get("/volumes")
async def volumes_page(request: Request):
    return await _render(request)


def _field_of(exc: GpuyardError) -> str:
    msg = exc.msg.lower()
    if msg.startswith("size") or "size" in msg.split(":")[0]:
        return "size"
    if msg.startswith("name"):
        return "name"
    return "offer"


@router.post("/volumes")
async def create(request: Request):
    raw = dict(await request.form())
    check_csrf(request, raw)
    form = {k: str(raw.get(k) or "") for k in ("offer", "size", "name")}
    body: dict[str, Any] = {}
    if form["offer"].strip():
        body["id"] = form_number(form["offer"])
    if form["size"].strip():
        body["size"] = form_number(form["size"])
    if form["name"].strip():
        body["name"] = form["name"]
    try:
        row = await run(request, create_volume, parse(VolumeCreate, body), write=True)
    except GpuyardError as exc:
        return await _render(request, status=exc.status, form=form, field_errors={_field_of(exc): exc.msg})
    request.session["flash"] = (f"Volume {row['id']} created: {row['disk_space']:g} GB on machine "
                                f"{row['machine_id']}")
    return RedirectResponse("/volumes", status_code=303)


@router.post("/volumes/{volume_id}/delete")
async def delete(request: Request, volume_id: str):
    raw = dict(await request.form())
    check_csrf(request, raw)
    try:
        row = await run(request, delete_volume, to_id(volume_id, "volume id"), write=True)
    except GpuyardError as exc:
        if exc.status == 404:
            raise
        number = form_number(volume_id)
        if isinstance(number, int):
            return await _render(request, status=exc.status, row_errors={number: exc.msg})
        return await _render(request, status=exc.status, error=exc.msg)
    request.session["flash"] = f"Volume {row['id']} deleted"
    return RedirectResponse("/volumes", status_code=303)
