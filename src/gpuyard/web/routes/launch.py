"""Launch: a template's offers (its filters, editable), the overrides, a preview of the merged
configuration (the service's dry run) and the launch itself (docs/console.md, "Launch").

Every rule lives in the services: offers come from ``search_offers``, the preview is
``create_instance(..., {"dry_run": True})`` and the launch the same call without it. This module
only turns the form into the create-instance body and puts the service's errors next to the field
they concern.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gpuyard.errors import GpuyardError, InvalidInput
from gpuyard.query import OFFER_FIELDS, describe_query, parse_query, split_query
from gpuyard.query.text import describe_clauses
from gpuyard.services.catalog.templates import resolve_hash
from gpuyard.services.market.allocation import GPU
from gpuyard.services.market.offers import get_ask, search_offers, search_volume_offers
from gpuyard.services.rentals import launch as merge_rules
from gpuyard.services.rentals.settle import rent_offer, settle_launch
from gpuyard.services.rentals.volumes import list_volumes
from gpuyard.web.deps import run
from gpuyard.web.pages import TEMPLATES, page
from gpuyard.web.session import check_csrf, csrf_token
from gpuyard.wire.base import parse
from gpuyard.wire.instances import LaunchRequest
from gpuyard.wire.offers import OfferSearch, VolumeSearch
from gpuyard.wire.types import to_id

router = APIRouter(include_in_schema=False)

OFFER_LIMIT = 100
#: The list's order, and so the offer picked for you (the first): the fewest GPUs the filters
#: allow, then the lowest price, then the best score (docs/console.md, "Launch").
OFFER_ORDER = [["num_gpus", "asc"], ["dph_total", "asc"], ["score", "desc"]]
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
    "volume_not_found": "volume",
    "volume_offer_expected": "volume",
    "not_enough_disk": "volume",
    "template_not_found": "template",
    "template_id_expected": "offer",
    "id_expected": "offer",
    "id_out_of_range": "offer",
    "too_long": None,  # by its first word (label, …)
}
#: Otherwise the first word of the message that names a field (checked in this order).
FIELD_OF_WORD = (
    ("volume_info.mount_path", "mount_path"), ("volume_info.size", "volume_size"),
    ("volume_info.name", "volume_name"), ("volume", "volume"), ("mount_path", "mount_path"),
    ("extra_filters", "filters"), ("image", "image"), ("env", "env"), ("disk", "disk"),
    ("price", "price"), ("bid", "price"), ("label", "label"), ("offer", "offer"),
    ("template", "template"),
)
#: The API's names in messages → the form's words (its labels), for a message shown on the form.
FORM_WORDS = (
    ("volume_info.mount_path", "Mount path"), ("volume_info.size", "Volume size"),
    ("volume_info.name", "Volume name"), ("volume_info", "Volume"),
    ("extra_filters", "Machine filters"), ("mount_path", "Mount path"),
)
#: A message that starts with one of these API names starts with the form's label instead
#: (others, such as disk, image, label, only get a capital letter).
LEADING_WORDS = {"price": "Bid price", "env": "Environment"}


def field_of(exc: GpuyardError, form: dict[str, str] | None = None) -> str | None:
    """Which form field a service error is about (None: the form as a whole). A volume error
    goes next to what was chosen: the volume offer (a new volume) or my volume (a link)."""
    field = FIELD_OF_CODE.get(exc.code)
    if field is None:
        field = _field_of_words(exc.msg.lower())
    mode = (form or {}).get("volume_mode")
    if field == "volume" and mode in ("create", "link"):
        if exc.code == "not_enough_disk" and mode == "create":
            return "volume_size"
        return "volume_offer" if mode == "create" else "volume_id"
    return field


def _field_of_words(msg: str) -> str | None:
    if msg.startswith("volume_info.volume_id"):
        return "volume"
    for word, field in FIELD_OF_WORD:
        if msg.startswith(word):
            return field
    for word, field in FIELD_OF_WORD:
        if word in msg:
            return field
    return None


def in_form_words(msg: str, form: dict[str, str]) -> str:
    """A service message in the form's words: its labels instead of the API's field names
    (``volume_info.mount_path is required`` → ``Mount path is required``)."""
    chosen = "Volume offer" if form.get("volume_mode") == "create" else "My volume"
    msg = msg.replace("volume_info.volume_id", chosen)
    for name, words in FORM_WORDS:
        msg = re.sub(rf"(?<![\w.]){re.escape(name)}(?![\w])", words, msg)
    first = re.match(r"[a-z_]+", msg)
    if first and first.group(0) in LEADING_WORDS and msg[first.end():first.end() + 1] in (" ", ":"):
        msg = LEADING_WORDS[first.group(0)] + msg[first.end():]
    return msg[:1].upper() + msg[1:]


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


#: What a field holds when the form did not send it (a disabled field is not sent).
FIELD_DEFAULTS = {"mount_path": "/data"}


def read_form(values: Any) -> dict[str, str]:
    """The form as typed; a field the form did not send gets its default."""
    return {k: str(values.get(k) or "") if k in values else FIELD_DEFAULTS.get(k, "")
            for k in FIELDS}


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
    """Filters as people read them: the query language, and the clauses it cannot write apart
    (docs/query-language.md, "Writing a query back as text")."""
    return describe_query(query, OFFER_FIELDS)


def load(session, user, form: dict[str, str], filters_given: bool,
         pick_first: bool = False) -> dict[str, Any]:
    """Everything the launch page shows, in one transaction. The chosen offer stays chosen
    (a submitted one the service then judges); ``pick_first``: unless the list lacks it."""
    ctx: dict[str, Any] = {"template": None, "template_error": None, "filters_error": None,
                           "offers": [], "parsed_filters": None, "fixed_filters": ""}
    if form["template"].strip():
        try:
            ctx["template"] = resolve_hash(session, form["template"].strip())
        except GpuyardError as exc:
            ctx["template_error"] = exc.msg
    template = ctx["template"]
    # The box holds the template's filters as query text; a field the text cannot write stays
    # out of it, and still narrows the list while the box does not name it (the launch merges
    # the template's filters by field, so it applies there too).
    box_text, unwritable = split_query((template or {}).get("extra_filters") or {}, OFFER_FIELDS)
    if not filters_given:
        form["filters"] = box_text
    try:
        parsed = parse_query(form["filters"], OFFER_FIELDS)
        fixed = {k: v for k, v in unwritable.items() if k not in parsed}
        ctx["fixed_filters"] = describe_clauses(fixed)
        search = {**fixed, **parsed, "limit": OFFER_LIMIT, "order": OFFER_ORDER,
                  "allocated_storage": _disk_for_search(form, template)}
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
    machines = {str(o["id"]): o["machine_id"] for o in ctx["offers"]}
    ctx.update(volume_choices(session, user, form["offer"], machines.get(form["offer"].strip())))
    return ctx


def volume_offers_query(machine_id: int | None = None):
    """Volume offers (of one machine), the largest free disk first."""
    body: dict[str, Any] = {"limit": OFFER_LIMIT}
    if machine_id is not None:
        body.update(machine_id={"eq": machine_id}, order=[["disk_space", "desc"]])
    return parse(VolumeSearch, body).checked(default_limit=OFFER_LIMIT, max_limit=OFFER_LIMIT)


def volume_choices(session, user, offer: str, machine_id: int | None = None) -> dict[str, Any]:
    """The volume offers and my available volumes of the machine of ``offer`` (a volume lives on
    its machine, and an instance mounts only those of its own)."""
    if machine_id is None and offer.strip():
        try:
            machine_id = get_ask(session, offer.strip(), GPU)[1].id
        except GpuyardError:
            machine_id = None
    if machine_id is None:
        return {"volume_machine": None, "volume_offers": [], "volumes": []}
    volumes = [v for v in list_volumes(session, user)
               if v["status"] == "available" and v["machine_id"] == machine_id]
    return {"volume_machine": machine_id, "volumes": volumes,
            "volume_offers": search_volume_offers(session, user, volume_offers_query(machine_id))}


async def rent(request: Request, form: dict[str, str], filters: dict[str, Any] | None, dry_run: bool):
    """The launch the form stands for: the form checked first, then rented as the API rents
    (settle.rent_offer)."""
    mode = form["volume_mode"]
    if mode == "link" and not form["volume_id"].strip():
        raise InvalidInput("My volume: choose one of your volumes; those on the chosen offer's "
                           "machine are listed (an instance mounts only volumes of its machine)")
    if mode == "create" and not form["volume_offer"].strip():
        raise InvalidInput("Volume offer: choose where the new volume goes; the volume offers of "
                           "the chosen offer's machine are listed")
    body = parse(LaunchRequest, body_of(form, filters, dry_run=dry_run))
    ask_id = to_id(form["offer"].strip(), "offer")

    def run_as_user(fn: Any, *args: Any, write: bool, then: Any = None, **kwargs: Any) -> Any:
        return run(request, fn, *args, write=write, then=then, **kwargs)

    return await rent_offer(run_as_user, request.app.state.reconciler, body, ask_id,
                            request.app.state.settings.runtime)


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


@router.get("/launch/volumes")
async def launch_volumes(request: Request):
    """The volume choices of one offer's machine alone (the page's script asks for them when the
    chosen offer changes)."""
    form = read_form(request.query_params)
    ctx = await run(request, volume_choices, form["offer"])
    return TEMPLATES.TemplateResponse(request, "launch_volumes.html",
                                      {"form": form, "field_errors": {}, **ctx})


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
    try:  # a launch the machine refuses at once is undone, as through the API
        await settle_launch(request.app.state.sessions, request.app.state.reconciler, outcome)
    except GpuyardError as exc:
        return _failed(request, form, ctx, exc)
    request.session["flash"] = outcome.msg
    return RedirectResponse(f"/instances/{outcome.instance_id}", status_code=303)


def _failed(request: Request, form: dict[str, str], ctx: dict[str, Any], exc: GpuyardError) -> HTMLResponse:
    field = field_of(exc, form)
    msg = in_form_words(exc.msg, form)
    if field is None:
        return render(request, form, ctx, status=exc.status, error=msg)
    return render(request, form, ctx, status=exc.status, errors={field: msg})
