"""Launch: a template's offers (its filters, editable), the overrides, a preview of the merged
configuration (the service's dry run) and the launch itself (docs/console.md, "Launch").

Every rule lives in the services: offers come from ``search_offers``, the preview is
``create_instance(..., {"dry_run": True})`` and the launch the same call without it. This module
only turns the form into the create-instance body and puts the service's errors next to the field
they concern.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gpuyard.errors import GpuyardError, QueryError
from gpuyard.query import OFFER_FIELDS, format_query, parse_query
from gpuyard.services import instances as svc
from gpuyard.services import launch as merge_rules
from gpuyard.services.offers import search_offers, search_volume_offers
from gpuyard.services.settle import check_image, settle, undo_if_failed_fast
from gpuyard.services.templates import resolve_hash
from gpuyard.services.volumes import list_volumes
from gpuyard.web.deps import run
from gpuyard.web.pages import TEMPLATES, page
from gpuyard.web.session import check_csrf, csrf_token
from gpuyard.wire.base import parse
from gpuyard.wire.instances import LaunchRequest
from gpuyard.wire.offers import OfferSearch, VolumeSearch
from gpuyard.wire.types import to_id

router = APIRouter(include_in_schema=False)

OFFER_LIMIT = 100
FIELDS = ("template", "filters", "offer", "image", "env", "disk", "price", "label", "volume_mode",
          "volume_offer", "volume_size", "volume_name", "volume_id", "mount_path")

#: Service error codes → the form field the message belongs next to.
FIELD_OF_CODE = {
    "invalid_env": "env",
    "offer_filters_unmet": "offer",
    "offer_unavailable": "offer",
    "offer_not_found": "offer",
    "wrong_offer_kind": "offer",
    "invalid_offer_id": "offer",
    "no_free_ports": "offer",
    "engine_unavailable": "offer",
    "engine_refused": "offer",
    "bid_too_low": "price",
    "outbid": "price",
    "insufficient_disk": "disk",
    "image_unavailable": "image",
    "invalid_query": "filters",
    "volume_in_use": "volume",
    "not_enough_disk": "volume",
    "template_not_found": "template",
    "template_id_expected": "offer",
    "id_expected": "offer",
    "id_out_of_range": "offer",
}
#: Otherwise the first word of the message that names a field (checked in this order).
FIELD_OF_WORD = (
    ("volume", "volume"), ("mount_path", "volume"), ("extra_filters", "filters"), ("image", "image"),
    ("env", "env"), ("disk", "disk"), ("price", "price"), ("bid", "price"), ("label", "label"),
    ("offer", "offer"), ("template", "template"),
)


def field_of(exc: GpuyardError) -> str | None:
    """Which form field a service error is about (None: the form as a whole)."""
    if exc.code in FIELD_OF_CODE:
        return FIELD_OF_CODE[exc.code]
    msg = exc.msg.lower()
    for word, field in FIELD_OF_WORD:
        if msg.startswith(word):
            return field
    for word, field in FIELD_OF_WORD:
        if word in msg:
            return field
    return None


def form_number(text: str) -> Any:
    """A form value as a JSON number when it reads as one; else the text itself, for the service
    to refuse with its own message."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def read_form(values: Any) -> dict[str, str]:
    return {k: str(values.get(k) or "") for k in FIELDS}


def body_of(form: dict[str, str], filters: dict[str, Any] | None, dry_run: bool) -> dict[str, Any]:
    """The create-instance body (VAST-WIRE §6.1) the form stands for."""
    body: dict[str, Any] = {"client_id": "me"}
    if form["template"].strip():
        body["template_hash_id"] = form["template"].strip()
    for key in ("image", "label"):
        if form[key].strip():
            body[key] = form[key].strip()
    if form["env"].strip():
        body["env"] = form["env"].strip()
    for key in ("disk", "price"):
        if form[key].strip():
            body[key] = form[key].strip()
    if filters:
        body["extra_filters"] = filters
    mode = form["volume_mode"]
    if mode in ("create", "link"):
        info: dict[str, Any] = {"create_new": mode == "create", "mount_path": form["mount_path"].strip()}
        ref = form["volume_offer"] if mode == "create" else form["volume_id"]
        if ref.strip():
            info["volume_id"] = form_number(ref)
        if mode == "create" and form["volume_size"].strip():
            info["size"] = form_number(form["volume_size"])
        if form["volume_name"].strip():
            info["name"] = form["volume_name"].strip()
        body["volume_info"] = info
    if dry_run:
        body["dry_run"] = True
    return body


def _disk_for_search(form: dict[str, str], template: dict[str, Any] | None) -> float:
    """The disk the launch would ask for (offers need that much free disk)."""
    value = form_number(form["disk"]) if form["disk"].strip() else None
    if isinstance(value, int | float) and value > 0:
        return float(value)
    return float((template or {}).get("recommended_disk_space") or merge_rules.DEFAULT_DISK)


def filter_text(query: dict[str, Any] | None) -> str:
    if not query:
        return ""
    try:
        return format_query(query, OFFER_FIELDS)
    except QueryError:
        return json.dumps(query)


def load(session, user, form: dict[str, str], filters_given: bool,
         pick_first: bool = False) -> dict[str, Any]:
    """Everything the launch page shows, in one transaction. The chosen offer stays chosen
    (a submitted one the service then judges); ``pick_first``: unless the list lacks it."""
    ctx: dict[str, Any] = {"template": None, "template_error": None, "filters_error": None,
                           "offers": [], "parsed_filters": None}
    if form["template"].strip():
        try:
            ctx["template"] = resolve_hash(session, form["template"].strip())
        except GpuyardError as exc:
            ctx["template_error"] = exc.msg
    template = ctx["template"]
    if not filters_given:
        form["filters"] = filter_text((template or {}).get("extra_filters"))
    try:
        parsed = parse_query(form["filters"], OFFER_FIELDS)
        search = {**parsed, "limit": OFFER_LIMIT, "allocated_storage": _disk_for_search(form, template)}
        if form["price"].strip():
            search["type"] = "bid"
        query = parse(OfferSearch, search).checked(default_limit=OFFER_LIMIT, max_limit=OFFER_LIMIT)
        ctx["offers"] = search_offers(session, user, query)
        ctx["parsed_filters"] = parsed
    except GpuyardError as exc:
        ctx["filters_error"] = exc.msg
    ids = [str(o["id"]) for o in ctx["offers"]]
    if ids and (not form["offer"] or (pick_first and form["offer"] not in ids)):
        form["offer"] = ids[0]
    ctx["volume_offers"] = search_volume_offers(session, user, volume_offers_query())
    ctx["volumes"] = [v for v in list_volumes(session, user) if v["status"] == "available"]
    return ctx


def volume_offers_query():
    return VolumeSearch(limit=OFFER_LIMIT).checked(default_limit=OFFER_LIMIT, max_limit=OFFER_LIMIT)


async def rent(request: Request, form: dict[str, str], filters: dict[str, Any] | None, dry_run: bool):
    """The launch the form stands for: checked first, merged in a read transaction, rented in a
    write transaction (as the API does)."""
    body = parse(LaunchRequest, body_of(form, filters, dry_run=dry_run))
    ask_id = to_id(form["offer"].strip(), "offer")
    merged = await run(request, svc.prepare_launch, body)
    if not dry_run:  # the machine's verdict on the image, as the API asks it
        await check_image(request.app.state.sessions, request.app.state.reconciler, ask_id, merged,
                          request.app.state.settings.runtime)
    return await run(request, svc.create_instance, ask_id, body, merged,
                     runtime=request.app.state.settings.runtime, write=True)


def env_table(extra_env: list[list[str]] | None) -> dict[str, list[tuple[str, str]]]:
    """The merged env's pairs split into variables, ports and other Docker flags."""
    out: dict[str, list[tuple[str, str]]] = {"variables": [], "ports": [], "flags": []}
    for key, value in extra_env or []:
        if key.startswith("-p "):
            out["ports"].append((key[3:], value))
        elif key.startswith("-"):
            out["flags"].append((key, value))
        else:
            out["variables"].append((key, value))
    return out


def render(request: Request, form: dict[str, str], ctx: dict[str, Any], *, status: int = 200,
           errors: dict[str, str] | None = None, error: str | None = None,
           preview: dict[str, Any] | None = None) -> HTMLResponse:
    errors = dict(errors or {})
    if ctx.get("filters_error") and "filters" not in errors:
        errors["filters"] = ctx["filters_error"]
    if ctx.get("template_error") and "template" not in errors:
        errors["template"] = ctx["template_error"]
    template = ctx.get("template")
    title = f"Launch {template.get('name') or 'template'}" if template else "Launch"
    return page(
        request, "launch.html", title, status_code=status, section="launch", form=form,
        field_errors=errors, error=error, preview=preview,
        preview_env=env_table((preview or {}).get("extra_env")),
        preview_filters=filter_text((preview or {}).get("extra_filters")), **ctx,
    )


@router.get("/launch")
async def launch_page(request: Request):
    form = read_form(request.query_params)
    ctx = await run(request, load, form, "filters" in request.query_params, True)
    return render(request, form, ctx, status=404 if ctx["template_error"] else 200)


@router.get("/launch/offers")
async def launch_offers(request: Request):
    """The offers table alone (the page's script refreshes it as the filter box changes)."""
    form = read_form(request.query_params)
    ctx = await run(request, load, form, True, True)
    return TEMPLATES.TemplateResponse(
        request, "launch_offers.html",
        {"form": form, "field_errors": {"filters": ctx["filters_error"]} if ctx["filters_error"] else {},
         "csrf": csrf_token(request), **ctx},
        status_code=400 if ctx["filters_error"] else 200,
    )


async def _submitted(request: Request) -> tuple[dict[str, str], dict[str, Any]]:
    raw = dict(await request.form())
    check_csrf(request, raw)
    form = read_form(raw)
    ctx = await run(request, load, form, True, raw.get("do") == "search")
    return form, ctx


@router.post("/launch/preview")
async def launch_preview(request: Request):
    form, ctx = await _submitted(request)
    if ctx["filters_error"] or ctx["template_error"]:
        return render(request, form, ctx, status=400)
    raw = await request.form()
    if raw.get("do") == "search":
        return render(request, form, ctx)
    try:
        outcome = await rent(request, form, ctx["parsed_filters"], dry_run=True)
    except GpuyardError as exc:
        return _failed(request, form, ctx, exc)
    return render(request, form, ctx, preview=outcome.launch)


@router.post("/launch")
async def launch(request: Request):
    form, ctx = await _submitted(request)
    if ctx["filters_error"] or ctx["template_error"]:
        return render(request, form, ctx, status=400)
    try:
        outcome = await rent(request, form, ctx["parsed_filters"], dry_run=False)
    except GpuyardError as exc:
        return _failed(request, form, ctx, exc)
    await settle(request.app.state.reconciler, outcome)
    try:  # a launch the machine refuses at once is undone, as through the API
        await undo_if_failed_fast(request.app.state.sessions, request.app.state.reconciler,
                                  request.state.user["id"], outcome.instance_id)
    except GpuyardError as exc:
        return _failed(request, form, ctx, exc)
    request.session["flash"] = outcome.msg
    return RedirectResponse(f"/instances/{outcome.instance_id}", status_code=303)


def _failed(request: Request, form: dict[str, str], ctx: dict[str, Any], exc: GpuyardError) -> HTMLResponse:
    field = field_of(exc)
    if field is None:
        return render(request, form, ctx, status=exc.status, error=exc.msg)
    return render(request, form, ctx, status=exc.status, errors={field: exc.msg})
