"""Machines: the machines the signed-in user hosts, with their specs, GPUs and who rents them,
editable prices, list/unlist and maintenance windows (docs/console.md, "Machines"). The rules are
gpuyard.services.machines'; an error is shown on the machine's card."""

from __future__ import annotations

import calendar
import time
from types import SimpleNamespace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gpuyard.errors import GpuyardError
from gpuyard.services.machines import hosting, maintenance
from gpuyard.services.rentals.settle import settle
from gpuyard.web.deps import run
from gpuyard.web.pages import page
from gpuyard.web.routes.launch import form_number
from gpuyard.web.session import check_csrf
from gpuyard.wire.base import parse
from gpuyard.wire.machines import MachineListing, MaintenanceWindow
from gpuyard.wire.types import to_id

router = APIRouter(include_in_schema=False)
PRICE_FIELDS = ("price_gpu", "price_min_bid", "price_disk", "min_chunk")


async def _render(request: Request, *, status: int = 200, errors: dict[int, str] | None = None,
                  forms: dict[int, dict[str, str]] | None = None) -> HTMLResponse:
    machines = await run(request, hosting.list_machines)
    return page(request, "machines.html", "Machines", status_code=status, section="machines",
                flash=request.session.pop("flash", None), machines=machines, errors=errors or {},
                forms=forms or {})


@router.get("/machines")
async def machines_page(request: Request):
    return await _render(request)


def _date(text: str, with_time: bool) -> Any:
    """``2026-12-31`` (UTC midnight) or ``2026-12-31T14:30`` (UTC) as epoch seconds; anything else
    as given, for the wire model to refuse."""
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M") if with_time else ("%Y-%m-%d",):
        try:
            return float(calendar.timegm(time.strptime(text.strip(), fmt)))
        except ValueError:
            continue
    return text


async def _form(request: Request) -> dict[str, str]:
    raw = dict(await request.form())
    check_csrf(request, raw)
    return {k: str(v) for k, v in raw.items() if k != "csrf_token"}


async def _act(request: Request, machine_ref: str, form: dict[str, str], fn, *args: Any):
    machine_id = to_id(machine_ref, "machine id")
    try:
        result = await run(request, fn, machine_id, *args, write=True)
    except GpuyardError as exc:
        if exc.status == 404:
            raise
        return None, await _render(request, status=exc.status, errors={machine_id: exc.msg},
                                   forms={machine_id: form})
    return result, None


@router.post("/machines/{machine_id}/list")
async def list_machine(request: Request, machine_id: str):
    form = await _form(request)
    body: dict[str, Any] = {"machine": machine_id}
    for key in PRICE_FIELDS:
        if form.get(key, "").strip():
            body[key] = form_number(form[key])
    if form.get("end_date", "").strip():
        body["end_date"] = _date(form["end_date"], with_time=False)
    try:
        listing = parse(MachineListing, body)
    except GpuyardError as exc:
        number = to_id(machine_id, "machine id")
        return await _render(request, status=exc.status, errors={number: exc.msg}, forms={number: form})
    result, failed = await _act(request, machine_id, form,
                                lambda s, u, _id, lst: hosting.list_machine(s, u, lst), listing)
    if failed is not None:
        return failed
    request.session["flash"] = f"Machine {listing.machine} listed: {result['msg'].split(',  ')[-1]}"
    return RedirectResponse("/machines", status_code=303)


@router.post("/machines/{machine_id}/unlist")
async def unlist_machine(request: Request, machine_id: str):
    form = await _form(request)
    result, failed = await _act(request, machine_id, form, hosting.unlist_machine)
    if failed is not None:
        return failed
    request.session["flash"] = result["msg"]
    return RedirectResponse("/machines", status_code=303)


@router.post("/machines/{machine_id}/maintenance")
async def schedule_maintenance(request: Request, machine_id: str):
    form = await _form(request)
    sdate, duration = form.get("sdate", "").strip(), form.get("duration", "").strip()
    body: dict[str, Any] = {"sdate": _date(sdate, with_time=True) if sdate else None,
                            "duration": form_number(duration) if duration else None}
    if form.get("category", "").strip():
        body["maintenance_category"] = form["category"].strip()
    try:
        window = parse(MaintenanceWindow, body)
    except GpuyardError as exc:
        number = to_id(machine_id, "machine id")
        return await _render(request, status=exc.status, errors={number: exc.msg}, forms={number: form})
    result, failed = await _act(request, machine_id, form, maintenance.schedule, window)
    if failed is not None:
        return failed
    msg, touched = result
    await settle(request.app.state.reconciler, SimpleNamespace(instance_ids=touched))
    request.session["flash"] = msg[0].upper() + msg[1:]
    return RedirectResponse("/machines", status_code=303)


@router.post("/machines/{machine_id}/maintenance/cancel")
async def cancel_maintenance(request: Request, machine_id: str):
    form = await _form(request)
    result, failed = await _act(request, machine_id, form, maintenance.cancel)
    if failed is not None:
        return failed
    msg, touched = result
    await settle(request.app.state.reconciler, SimpleNamespace(instance_ids=touched))
    request.session["flash"] = msg[0].upper() + msg[1:]
    return RedirectResponse("/machines", status_code=303)
