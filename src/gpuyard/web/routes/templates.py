"""Template pages: list and search, create and edit (with a live env preview), one template with
its version history, a side-by-side diff of two versions, a hash's read-only page, publish and
delete.

Every rule lives in the services (``gpuyard.services.catalog.templates``), the env parser
(``gpuyard.envspec``) and the query parser (``gpuyard.query``); these pages only turn form fields
into the same payloads the API takes and show the services' answers and errors.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.orm import Session

from gpuyard.envspec import parse_env
from gpuyard.errors import GpuyardError, InvalidInput, NotFound, QueryError
from gpuyard.query import OFFER_FIELDS, TEMPLATE_FIELDS, describe_query, format_query, parse_query
from gpuyard.services.catalog import templates as svc
from gpuyard.services.catalog.template_content import CONTENT_FIELDS, RUNTYPES
from gpuyard.services.identifiers import looks_like_hash, require_id
from gpuyard.services.market.fleet import direct_port_ranges
from gpuyard.store.models import User
from gpuyard.web.deps import run
from gpuyard.web.pages import page
from gpuyard.web.session import check_csrf
from gpuyard.wire.base import parse
from gpuyard.wire.templates import TemplateCreate, TemplateDelete, TemplateEditById, TemplateSearch

router = APIRouter(include_in_schema=False)

FLASH = "templates_flash"
LIST_LIMIT = 500
SCOPES = ("all", "mine", "public")
# Column headings that sort, in table order: (field, label).
SORT_COLUMNS = (
    ("name", "Name"),
    ("image", "Image"),
    ("created_at", "Created"),
    ("count_created", "Launches"),
    ("recent_create_date", "Last launch"),
    ("id", "Id"),
)
DEFAULT_SORT = ("created_at", "desc")
BOOL_FIELDS = ("readme_visible", "use_ssh", "ssh_direct", "jup_direct", "use_jupyter_lab", "private")
TEXT_FIELDS = tuple(f for f in CONTENT_FIELDS if f not in BOOL_FIELDS and f != "runtype")
LABELS = {
    "name": "Name",
    "image": "Image",
    "tag": "Tag",
    "desc": "Description",
    "readme": "Readme",
    "readme_visible": "Show the readme to others",
    "env": "Env (variables and ports)",
    "onstart": "On-start script",
    "runtype": "Run type",
    "args_str": "Arguments (args_str)",
    "use_ssh": "Use SSH",
    "ssh_direct": "Direct SSH",
    "jup_direct": "Direct Jupyter",
    "jupyter_dir": "Jupyter directory",
    "use_jupyter_lab": "Use JupyterLab",
    "docker_login_repo": "Docker login registry",
    "extra_filters": "Machine filters (extra_filters)",
    "recommended_disk_space": "Recommended disk (GB)",
    "href": "Link (href)",
    "repo": "Source repository (repo)",
    "private": "Private",
}


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


async def signed_in(request: Request) -> None:
    """Make sure the page knows its user (a service call that failed early may not have run)."""
    if getattr(request.state, "user", None) is None:
        await run(request, lambda _s, _u: None)


def take_flash(request: Request) -> str | None:
    return request.session.pop(FLASH, None)


def set_flash(request: Request, text: str) -> None:
    request.session[FLASH] = text


async def error_page(request: Request, exc: GpuyardError) -> Any:
    await signed_in(request)
    titles = {404: "Template not found", 403: "Not allowed", 400: "That did not work"}
    return page(request, "error.html", titles.get(exc.status, "Something went wrong"),
                status_code=exc.status, section="templates", error=exc.msg)


def show_field(key: str, value: Any) -> str:
    if key == "extra_filters":
        return describe_query(value, OFFER_FIELDS) if isinstance(value, dict) else show_value(value)
    return show_value(value)


def show_value(value: Any) -> str:
    """One content value as text for the detail and diff pages."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False) if value else ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def filters_text(filters: Any) -> str:
    """Stored offer filters as the edit form's box takes them: the query language, or JSON (which
    the box takes too) when a value has no text form, so that saving keeps every filter."""
    if not filters:
        return ""
    try:
        return format_query(filters, OFFER_FIELDS)
    except QueryError:
        return json.dumps(filters, sort_keys=True, ensure_ascii=False)


def form_from_content(content: dict[str, Any]) -> dict[str, Any]:
    form: dict[str, Any] = {k: show_value(content.get(k)) for k in TEXT_FIELDS}
    form["extra_filters"] = filters_text(content.get("extra_filters"))
    form["runtype"] = content.get("runtype") or "args"
    for k in BOOL_FIELDS:
        form[k] = bool(content.get(k))
    return form


def empty_form() -> dict[str, Any]:
    form: dict[str, Any] = {k: "" for k in TEXT_FIELDS}
    form.update(runtype="args", readme_visible=True, private=True)
    for k in ("use_ssh", "ssh_direct", "jup_direct", "use_jupyter_lab"):
        form[k] = False
    return form


def form_from_post(data: dict[str, Any]) -> dict[str, Any]:
    """What the user typed, kept as typed (checkboxes are present when ticked)."""
    form: dict[str, Any] = {k: str(data.get(k, "")) for k in TEXT_FIELDS}
    form["runtype"] = str(data.get("runtype", "args"))
    for k in BOOL_FIELDS:
        form[k] = k in data
    return form


def payload_from_form(form: dict[str, Any]) -> dict[str, Any]:
    """The API payload for a form: every field given, blank text as "" (the service stores it as
    no value), extra_filters as query text or, when it starts with "{", a JSON object."""
    payload: dict[str, Any] = {k: form[k] for k in TEXT_FIELDS}
    payload["runtype"] = form["runtype"]
    for k in BOOL_FIELDS:
        payload[k] = bool(form[k])
    text = form["extra_filters"].strip()
    if text.startswith("{"):
        try:
            payload["extra_filters"] = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(
                f"extra_filters: not a valid JSON object ({exc}); write offer query text such as "
                "'gpu_ram>=24 num_gpus=1' or a JSON object"
            ) from None
    return payload


def field_of(msg: str) -> str | None:
    """The form field an error message is about (it names the field first), or None."""
    if msg.startswith("env") or "env:" in msg:
        return "env"
    for name in sorted(CONTENT_FIELDS, key=len, reverse=True):
        if msg.startswith(name) and msg[len(name):len(name) + 1] in (" ", ":", ""):
            return name
    return None


def env_preview(text: str, port_ranges: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """What an env sets. ``published`` says which host port a launch gives each ``-p`` port:
    the service takes it from the machine's direct port range (docs/merge-rules.md), so a
    ``HOST:`` outside every machine's range is never used (``port_ranges``: the fleet's)."""
    try:
        spec = parse_env(text)
    except InvalidInput as exc:
        return {"ok": False, "msg": exc.msg}
    return {
        "ok": True,
        "variables": [[k, v] for k, v in spec.variables.items()],
        "ports": [
            {"spec": p.spec(), "container": p.container, "host": p.host, "proto": p.proto,
             "published": published_port(p.host, port_ranges or [])}
            for p in spec.ports.values()
        ],
        "options": [[flag, value] for flag, value in spec.options],
    }


def published_port(host: int | None, ranges: list[tuple[int, int]]) -> str:
    """The host port a launch really uses for ``-p [HOST:]CONTAINER``, in words."""
    if host is None:
        return "assigned at launch"
    shown = ", ".join(f"{first}-{last}" for first, last in ranges[:4]) + (", …" if len(ranges) > 4 else "")
    if not any(first <= host <= last for first, last in ranges):
        if not ranges:
            return f"assigned at launch ({host} if the machine's direct ports include it and it is free)"
        return f"assigned at launch ({host} is outside the machines' direct ports ({shown}))"
    return f"{host} where free in the machine's direct ports ({shown}); else assigned at launch"


def share_link(request: Request, hash_id: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/templates/hash/{hash_id}"


def template_id_of(ref: str) -> int:
    return require_id(ref, "template page")


def _one(session: Session, user: User, template_id: int) -> dict[str, Any]:
    """The template as a search shows it (yours, or public), or a 404."""
    rows = svc.search_templates(session, user, TemplateSearch.parse({"id": {"eq": template_id}}, limit=1))
    if not rows:
        raise NotFound(f"template {template_id} not found", "template_not_found")
    return rows[0]


def _owned(session: Session, user: User, template_id: int) -> dict[str, Any]:
    """The template if the user may change it; the service's 404/403 otherwise."""
    svc.editable_template(session, user, template_id)
    return _one(session, user, template_id)


# --------------------------------------------------------------------------------------------
# List and search
# --------------------------------------------------------------------------------------------


def _search(session: Session, user: User, text: str, scope: str, order: list) -> list[dict]:
    filters = parse_query(text, TEMPLATE_FIELDS)
    field, value = {"mine": ("creator_id", user.id), "public": ("private", False)}.get(scope, (None, None))
    if field is not None:
        filters.setdefault(field, {}).setdefault("eq", value)
    rows = svc.search_templates(session, user, TemplateSearch.parse(filters, order, LIST_LIMIT))
    if field is not None:  # the query may have set its own condition on the field: both apply
        rows = [r for r in rows if r[field] == value]
    return rows


@router.get("/templates")
async def templates_page(request: Request, q: str = "", scope: str = "all", sort: str = "",
                         dir: str = ""):
    scope = scope if scope in SCOPES else "all"
    sortable = dict(SORT_COLUMNS)
    sort_field = sort if sort in sortable else DEFAULT_SORT[0]
    direction = dir if dir in ("asc", "desc") else (DEFAULT_SORT[1] if not sort else "asc")
    q_error = None
    try:
        rows = await run(request, _search, q, scope, [[sort_field, direction]])
    except InvalidInput as exc:  # a query that does not parse or does not fit the fields
        q_error, rows = exc.msg, []
        await signed_in(request)
    return page(
        request, "templates_list.html", "Templates", status_code=400 if q_error else 200,
        section="templates", rows=rows, q=q, q_error=q_error, scope=scope, sort=sort_field,
        dir=direction, columns=SORT_COLUMNS, limit=LIST_LIMIT, flash=take_flash(request),
        me=request.state.user["id"],
    )


# --------------------------------------------------------------------------------------------
# Env preview (JSON, for the editor's script)
# --------------------------------------------------------------------------------------------


@router.post("/templates/env-preview")
async def env_preview_json(request: Request):
    data = dict(await request.form())
    check_csrf(request, data)
    ranges = await run(request, lambda session, _user: direct_port_ranges(session))
    return JSONResponse(env_preview(str(data.get("env", "")), ranges))


# --------------------------------------------------------------------------------------------
# Create and edit
# --------------------------------------------------------------------------------------------


async def form_page(request: Request, *, title: str, action: str, form: dict[str, Any],
                    status: int = 200, error: str | None = None, template: dict | None = None):
    field_errors: dict[str, str] = {}
    top_error = None
    if error:
        field = field_of(error)
        if field is not None:
            field_errors[field] = error
        else:
            top_error = error
    preview = None
    if form["env"].strip():
        ranges = await run(request, lambda session, _user: direct_port_ranges(session))
        preview = env_preview(form["env"], ranges)
    return page(
        request, "templates_form.html", title, status_code=status, section="templates", form=form,
        action=action, field_errors=field_errors, error=top_error, template=template,
        labels=LABELS, runtypes=RUNTYPES, preview=preview, first_error=next(iter(field_errors), None),
    )


@router.get("/templates/new")
async def new_template_form(request: Request):
    await signed_in(request)
    return await form_page(request, title="New template", action="/templates/new", form=empty_form())


@router.post("/templates/new")
async def create_template(request: Request):
    data = dict(await request.form())
    check_csrf(request, data)
    form = form_from_post(data)
    try:
        body = parse(TemplateCreate, payload_from_form(form))
        row, created = await run(request, svc.create_template, body, write=True)
    except InvalidInput as exc:
        await signed_in(request)
        return await form_page(request, title="New template", action="/templates/new", form=form,
                         status=exc.status, error=exc.msg)
    set_flash(request, f"Template {row['id']} created, hash_id {row['hash_id']}" if created else
              f"You already have this exact template: id {row['id']}, hash_id {row['hash_id']}")
    return RedirectResponse(f"/templates/{row['id']}", status_code=303)


@router.get("/templates/{ref}/edit")
async def edit_template_form(request: Request, ref: str):
    try:
        template_id = template_id_of(ref)
        row = await run(request, _owned, template_id)
    except GpuyardError as exc:
        return await error_page(request, exc)
    return await form_page(request, title=f"Edit {row['name'] or 'template'}",
                     action=f"/templates/{row['id']}/edit", form=form_from_content(row), template=row)


@router.post("/templates/{ref}/edit")
async def edit_template(request: Request, ref: str):
    data = dict(await request.form())
    check_csrf(request, data)
    form = form_from_post(data)
    try:
        template_id = template_id_of(ref)
        row = await run(request, _owned, template_id)
    except GpuyardError as exc:
        return await error_page(request, exc)
    try:
        body = parse(TemplateEditById, {"id": template_id,
                                        "hash_id": str(data.get("hash_id") or row["hash_id"]),
                                        **payload_from_form(form)})
        row, changed = await run(request, svc.edit_by_id, body, write=True)
    except InvalidInput as exc:
        return await form_page(request, title=f"Edit {row['name'] or 'template'}",
                         action=f"/templates/{template_id}/edit", form=form, status=exc.status,
                         error=exc.msg, template=row)
    except GpuyardError as exc:
        return await error_page(request, exc)
    set_flash(request, f"Template {row['id']} updated; its new hash_id is {row['hash_id']}" if changed
              else f"Nothing changed: template {row['id']} keeps hash_id {row['hash_id']}")
    return RedirectResponse(f"/templates/{template_id}", status_code=303)


# --------------------------------------------------------------------------------------------
# Sharing by hash
# --------------------------------------------------------------------------------------------


@router.get("/templates/hash/{hash_id}")
async def template_by_hash(request: Request, hash_id: str):
    try:
        content = await run(request, lambda s, _u, h: svc.resolve_hash(s, h), hash_id)
    except GpuyardError as exc:
        return await error_page(request, exc)
    fields = [(k, LABELS[k], show_field(k, content.get(k))) for k in CONTENT_FIELDS]
    return page(request, "templates_hash.html", f"Template version {content['hash_id']}",
                section="templates", content=content, fields=fields,
                share=share_link(request, content["hash_id"]))


# --------------------------------------------------------------------------------------------
# One template: detail, history, diff, publish, delete
# --------------------------------------------------------------------------------------------


def _detail(session: Session, user: User, template_id: int) -> tuple[dict, list[dict]]:
    return _one(session, user, template_id), svc.list_versions(session, user, template_id)


@router.get("/templates/{ref}")
async def template_page(request: Request, ref: str):
    if looks_like_hash(ref):
        return RedirectResponse(f"/templates/hash/{ref.strip().lower()}", status_code=303)
    try:
        row, versions = await run(request, _detail, template_id_of(ref))
    except GpuyardError as exc:
        return await error_page(request, exc)
    mine = row["creator_id"] == request.state.user["id"]
    fields = [(k, LABELS[k], show_field(k, row.get(k))) for k in CONTENT_FIELDS if k != "readme"]
    return page(
        request, "templates_detail.html", row["name"] or f"Template {row['id']}",
        section="templates", t=row, mine=mine, fields=fields, versions=versions,
        share=share_link(request, row["hash_id"]), flash=take_flash(request),
        show_readme=bool(row["readme"]) and (mine or row["readme_visible"]),
    )


@router.get("/templates/{ref}/diff")
async def template_diff(request: Request, ref: str, a: str = "", b: str = ""):
    try:
        row, versions = await run(request, _detail, template_id_of(ref))
    except GpuyardError as exc:
        return await error_page(request, exc)
    by_hash = {v["hash_id"]: v for v in versions}
    a = a.strip().lower() or (versions[1]["hash_id"] if len(versions) > 1 else versions[0]["hash_id"])
    b = b.strip().lower() or versions[0]["hash_id"]
    missing = [h for h in (a, b) if h not in by_hash]
    title = f"Compare versions of {row['name'] or 'template ' + str(row['id'])}"
    if missing:
        return page(
            request, "templates_diff.html", title, status_code=404, section="templates", t=row,
            versions=versions, a=a, b=b, rows=[], left=None, right=None,
            compare_error=f"{missing[0]!r} is not a hash of one of the versions of template {row['id']}; "
            "choose two versions from the lists",
        )
    left, right = by_hash[a], by_hash[b]
    rows = []
    for k in CONTENT_FIELDS:
        lv, rv = left["content"].get(k), right["content"].get(k)
        rows.append({"field": k, "label": LABELS[k], "a": show_field(k, lv), "b": show_field(k, rv),
                     "changed": lv != rv})
    return page(request, "templates_diff.html", title, section="templates", t=row, versions=versions,
                a=a, b=b, rows=rows, left=left, right=right, compare_error=None,
                changed=sum(r["changed"] for r in rows))


@router.post("/templates/{ref}/visibility")
async def set_visibility(request: Request, ref: str):
    data = dict(await request.form())
    check_csrf(request, data)
    private = str(data.get("private", "")).lower() == "true"
    try:
        template_id = template_id_of(ref)
        body = parse(TemplateEditById, {"id": template_id, "private": private})
        row, changed = await run(request, svc.edit_by_id, body, write=True)
    except GpuyardError as exc:
        return await error_page(request, exc)
    what = "private" if private else "public"
    set_flash(request, f"Template {row['id']} is now {what}; its new hash_id is {row['hash_id']}"
              if changed else f"Template {row['id']} was already {what}")
    return RedirectResponse(f"/templates/{template_id}", status_code=303)


@router.post("/templates/{ref}/delete")
async def delete_template(request: Request, ref: str):
    data = dict(await request.form())
    check_csrf(request, data)
    try:
        body = parse(TemplateDelete, {"template_id": template_id_of(ref)})
        gone = await run(request, svc.delete_template, body, write=True)
    except GpuyardError as exc:
        return await error_page(request, exc)
    set_flash(request, f"Template {gone['id']} deleted. Its versions stay: hash {gone['hash_id']} "
              "still launches and instances made from it keep running.")
    return RedirectResponse("/templates", status_code=303)

