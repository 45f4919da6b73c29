"""Instances: the live list, one instance's page, its actions and its logs (docs/console.md,
"Instances"). Every action is the service the API calls, followed by the same settling of the
runtime (gpuyard.services.rentals.settle)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from gpuyard.errors import GpuyardError, NotFound
from gpuyard.query import OFFER_FIELDS, describe_query
from gpuyard.services.rentals import instance_logs
from gpuyard.services.rentals import instance_rows as rows
from gpuyard.services.rentals import instances as svc
from gpuyard.services.rentals.settle import settle
from gpuyard.web.deps import run
from gpuyard.web.pages import page
from gpuyard.web.routes.launch import env_table
from gpuyard.web.session import check_csrf
from gpuyard.wire.base import parse
from gpuyard.wire.instances import MAX_PAGE, InstanceEdit, InstanceListQuery

router = APIRouter(include_in_schema=False)

DEFAULT_TAIL = 200


def ports_text(row: dict[str, Any]) -> list[str]:
    """Published ports as ``10.0.0.5:40001 → 8000/tcp``."""
    out = []
    for key, hosts in sorted((row.get("ports") or {}).items()):
        for host in hosts:
            out.append(f"{row.get('public_ipaddr')}:{host.get('HostPort')} → {key}")
    return out


def age_text(start: Any, now: float | None = None) -> str:
    if not isinstance(start, int | float):
        return "-"
    seconds = max(0, int((now or time.time()) - start))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def view(row: dict[str, Any]) -> dict[str, Any]:
    """What the list shows of an instance row (also the JSON of GET /instances/rows)."""
    return {
        "id": row["id"],
        "label": row.get("label") or "",
        "status": row.get("actual_status") or "",
        "intended_status": row.get("intended_status") or "",
        "status_msg": row.get("status_msg") or "",
        "gpus": f"{row['num_gpus']}× {row['gpu_name']}",
        "image": row.get("image_uuid") or "",
        "price": f"${row['dph_total']:.3f}",
        "is_bid": bool(row.get("is_bid")),
        "ports": ports_text(row),
        "age": age_text(row.get("start_date")),
        "jupyter_url": row.get("jupyter_url") or "",
    }


def _list(session, user, instance_id: str | None = None) -> list[dict[str, Any]]:
    filters = {"id": {"eq": instance_id}} if instance_id is not None else None
    query = InstanceListQuery.parse(filters, limit=MAX_PAGE)
    return rows.list_instances(session, user, query)["instances"]


def _flash(request: Request) -> str | None:
    return request.session.pop("flash", None)


@router.get("/instances")
async def instances_page(request: Request):
    listed = await run(request, _list)
    return page(request, "instances.html", "Instances", section="instances", flash=_flash(request),
                rows=[view(r) for r in listed])


@router.get("/instances/rows")
async def instance_rows(request: Request, id: str | None = None):  # noqa: A002 - the query's name
    """The list's rows as JSON, for the pages' live status (polled every 2 s)."""
    if id is not None and not (id.isascii() and id.isdigit()):
        return JSONResponse({"success": False, "error": "invalid_input",
                             "msg": "id must be an instance id"}, status_code=400)
    listed = await run(request, _list, id)
    return {"success": True, "instances": [view(r) for r in listed], "at": time.time()}


def _row_or_404(session, user, instance_id: str) -> dict[str, Any]:
    row = rows.get_instance(session, user, instance_id)
    if row is None:
        raise NotFound(f"instance {instance_id} not found among your instances", "instance_not_found")
    return row


def _filters_text(query: Any) -> str:
    return describe_query(query, OFFER_FIELDS) if isinstance(query, dict) else ""


def _instance_page(request: Request, row: dict[str, Any], *, status: int = 200,
                   field_errors: dict[str, str] | None = None, error: str | None = None,
                   label_value: str | None = None) -> HTMLResponse:
    title = f"Instance {row['id']}" + (f" · {row['label']}" if row.get("label") else "")
    return page(request, "instance.html", title, status_code=status, section="instances",
                flash=_flash(request), inst=row, v=view(row), env=env_table(row.get("extra_env")),
                filters_text=_filters_text(row.get("extra_filters")), field_errors=field_errors or {},
                error=error, label_value=row.get("label") or "" if label_value is None else label_value,
                tail=DEFAULT_TAIL, host_key=_host_key(request))


def _host_key(request: Request) -> str | None:
    """The SSH gateway's host key fingerprint (its public key file in the data directory)."""
    from gpuyard.gateway.hostkey import stored_fingerprint

    gateway = getattr(request.app.state, "gateway", None)
    if gateway is not None:
        return gateway.fingerprint
    return stored_fingerprint(request.app.state.settings.data_dir)


@router.get("/instances/{instance_id}")
async def instance_page(request: Request, instance_id: str):
    row = await run(request, _row_or_404, instance_id)
    return _instance_page(request, row)


async def _act(request: Request, instance_id: str, fn, *args: Any, back: str | None = None):
    form = dict(await request.form())
    check_csrf(request, form)
    outcome = await run(request, fn, *args, write=True)
    await settle(request.app.state.reconciler, outcome)
    request.session["flash"] = outcome.msg[:1].upper() + outcome.msg[1:]
    return RedirectResponse(back or f"/instances/{instance_id}", status_code=303)


@router.post("/instances/{instance_id}/stop")
async def stop(request: Request, instance_id: str):
    return await _act(request, instance_id, svc.set_state, [instance_id], "stopped")


@router.post("/instances/{instance_id}/start")
async def start(request: Request, instance_id: str):
    return await _act(request, instance_id, svc.set_state, [instance_id], "running")


@router.post("/instances/{instance_id}/reboot")
async def reboot(request: Request, instance_id: str):
    return await _act(request, instance_id, svc.reboot, instance_id)


@router.post("/instances/{instance_id}/destroy")
async def destroy(request: Request, instance_id: str):
    return await _act(request, instance_id, svc.destroy, [instance_id], back="/instances")


@router.post("/instances/{instance_id}/label")
async def label(request: Request, instance_id: str):
    form = dict(await request.form())
    check_csrf(request, form)
    text = str(form.get("label") or "")
    try:
        edit = parse(InstanceEdit, {"label": text})
        outcome = await run(request, svc.label, instance_id, edit.label, write=True)
    except GpuyardError as exc:
        if exc.status == 404:
            raise
        row = await run(request, _row_or_404, instance_id)
        return _instance_page(request, row, status=exc.status, field_errors={"label": exc.msg},
                              label_value=text)
    await settle(request.app.state.reconciler, outcome)
    request.session["flash"] = "Label saved" if text else "Label removed"
    return RedirectResponse(f"/instances/{instance_id}", status_code=303)


async def _logs(request: Request, instance_id: str, tail: Any, daemon: bool) -> str:
    """The request_logs flow of the API, answered directly instead of through a result URL."""
    lines_wanted = instance_logs.parse_tail(tail)
    target = await run(request, instance_logs.log_target, instance_id, daemon)
    lines = await run_in_threadpool(instance_logs.read_lines, request.app.state.reconciler, target)
    return instance_logs.pick(lines, tail=lines_wanted)


@router.get("/instances/{instance_id}/logs")
async def logs_page(request: Request, instance_id: str, tail: str | None = None, daemon: str | None = None,
                    format: str | None = None):  # noqa: A002 - the query's name
    daemon_on = (daemon or "").lower() in ("1", "true", "on", "yes")
    tail_value = str(DEFAULT_TAIL) if tail is None else tail
    if format == "text":
        try:
            text = await _logs(request, instance_id, tail_value, daemon_on)
        except GpuyardError as exc:
            return PlainTextResponse(exc.msg, status_code=exc.status)
        return PlainTextResponse(text)
    row = await run(request, _row_or_404, instance_id)
    field_errors: dict[str, str] = {}
    text = ""
    try:
        text = await _logs(request, instance_id, tail_value, daemon_on)
    except GpuyardError as exc:
        if exc.status == 404:
            raise
        field_errors["tail"] = exc.msg
    return page(request, "instance_logs.html", f"Logs of instance {row['id']}", section="instances",
                status_code=400 if field_errors else 200, inst=row, v=view(row), logs=text,
                tail=tail_value, daemon=daemon_on, field_errors=field_errors)
