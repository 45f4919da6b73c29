"""API keys: my keys (name, created, last used, what they may call), creating one with a
permission picker (its text shown once, in the answer to the form), deleting one
(docs/console.md, "Keys"). The rules are gpuyard.services.accounts.apikeys'."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gpuyard.errors import GpuyardError, InvalidInput
from gpuyard.services.accounts import apikeys
from gpuyard.services.accounts.permissions import CATEGORIES, RULES
from gpuyard.store.models import ApiKey
from gpuyard.web.deps import run
from gpuyard.web.pages import page
from gpuyard.web.session import check_csrf
from gpuyard.wire.apikeys import MAX_NAME, ApiKeyCreate
from gpuyard.wire.base import parse
from gpuyard.wire.json import loads
from gpuyard.wire.types import to_id

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}
ACCESS = ("full", "categories", "document")


def _console_key(session, request: Request) -> ApiKey:
    """The key this console session was opened with (the console takes only full keys)."""
    return session.get(ApiKey, request.state.user["api_key_id"])


def _load(session, user, request: Request) -> dict[str, Any]:
    return {"keys": apikeys.list_keys(session, user, _console_key(session, request))}


def _routes_by_category() -> dict[str, list[str]]:
    return {c: [r.name for r in RULES if r.category == c] for c in CATEGORIES}


async def _render(request: Request, *, status: int = 200, form: dict[str, Any] | None = None,
                  field_errors: dict[str, str] | None = None, row_errors: dict[int, str] | None = None,
                  created: dict[str, Any] | None = None, error: str | None = None) -> HTMLResponse:
    ctx = await run(request, _load, request)
    response = page(request, "keys.html", "API keys", status_code=status, section="keys",
                    flash=request.session.pop("flash", None), form=form or {"access": "categories"},
                    categories=CATEGORIES, routes=_routes_by_category(), field_errors=field_errors or {},
                    row_errors=row_errors or {}, created=created, error=error, max_name=MAX_NAME, **ctx)
    response.headers.update(NO_STORE)
    return response


@router.get("/keys")
async def keys_page(request: Request):
    return await _render(request)


def _permissions(form: dict[str, Any]) -> dict[str, Any] | None:
    if form["access"] == "full":
        return None
    if form["access"] == "document":
        text = form["document"].strip()
        if not text:
            raise InvalidInput('permissions: paste a permission document, e.g. {"api": {"misc": {}}}')
        return loads(text, where="the permission document")
    if not form["categories"]:
        raise InvalidInput("permissions: tick at least one category (or choose full access)")
    return {"api": {c: {} for c in form["categories"]}}


@router.post("/keys")
async def create(request: Request):
    raw = await request.form()
    check_csrf(request, dict(raw))
    form = {
        "name": str(raw.get("name") or "").strip(),
        "access": str(raw.get("access") or "categories"),
        "categories": [str(c) for c in raw.getlist("category") if str(c) in CATEGORIES],
        "document": str(raw.get("document") or ""),
    }
    if form["access"] not in ACCESS:
        form["access"] = "categories"
    try:
        body = parse(ApiKeyCreate, {"name": form["name"] or None, "permissions": _permissions(form)})
        made = await run(request, lambda s, u: apikeys.create_key(s, u, _console_key(s, request), body),
                         write=True)
    except GpuyardError as exc:
        field = "name" if exc.msg.startswith("name") else "permissions"
        return await _render(request, status=exc.status, form=form, field_errors={field: exc.msg})
    return await _render(request, created=made)  # the one page that shows the key's text


@router.post("/keys/{key_id}/delete")
async def delete(request: Request, key_id: str):
    raw = dict(await request.form())
    check_csrf(request, raw)
    number = to_id(key_id, "API key id")
    try:
        made = await run(request, lambda s, u: apikeys.delete_key(s, u, _console_key(s, request), number),
                         write=True)
    except GpuyardError as exc:
        if exc.status == 404:
            raise
        return await _render(request, status=exc.status, row_errors={number: exc.msg})
    request.session["flash"] = made["msg"]
    return RedirectResponse("/keys", status_code=303)
