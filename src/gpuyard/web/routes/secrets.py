"""Secrets (account env vars): the list with values hidden until revealed one row at a time,
create, change a value, delete (docs/console.md, "Secrets"). The rules are
gpuyard.services.accounts.secrets'; no page or redirect carries a value but the answer to a reveal."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import select

from gpuyard.errors import GpuyardError, NotFound
from gpuyard.services.accounts import secrets as svc
from gpuyard.store.models import Secret
from gpuyard.web.deps import run
from gpuyard.web.pages import page
from gpuyard.web.session import check_csrf
from gpuyard.wire.base import parse
from gpuyard.wire.secrets import MAX_NAME, MAX_VALUE, SecretDelete, SecretWrite

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}


def _rows(session, user) -> list[dict[str, Any]]:
    rows = session.execute(select(Secret.name, Secret.created_at, Secret.updated_at)
                           .where(Secret.user_id == user.id).order_by(Secret.name))
    return [{"name": n, "created_at": c, "updated_at": u} for n, c, u in rows]


def _reveal(session, user, name: str) -> str:
    value = svc.list_secrets(session, user).get(name)
    if value is None:
        raise NotFound(f"you have no secret named {name}", "secret_not_found")
    return value


async def _render(request: Request, *, status: int = 200, form: dict[str, str] | None = None,
                  field_errors: dict[str, str] | None = None, row_errors: dict[str, str] | None = None,
                  revealed: dict[str, str] | None = None, error: str | None = None) -> HTMLResponse:
    rows = await run(request, _rows)
    response = page(request, "secrets.html", "Secrets", status_code=status, section="secrets",
                    flash=request.session.pop("flash", None), rows=rows, form=form or {},
                    field_errors=field_errors or {}, row_errors=row_errors or {}, revealed=revealed or {},
                    error=error, max_name=MAX_NAME, max_value=MAX_VALUE)
    response.headers.update(NO_STORE)
    return response


@router.get("/secrets")
async def secrets_page(request: Request):
    return await _render(request)


def _field(exc: GpuyardError) -> str:
    return "value" if exc.msg.startswith("value") else "name"


@router.post("/secrets")
async def create(request: Request):
    raw = dict(await request.form())
    check_csrf(request, raw)
    form = {"name": str(raw.get("name") or "").strip()}
    try:
        body = parse(SecretWrite, {"key": form["name"], "value": str(raw.get("value") or "")})
        await run(request, svc.create_secret, body, write=True)
    except GpuyardError as exc:  # the value is not sent back: type it again
        return await _render(request, status=exc.status, form=form, field_errors={_field(exc): exc.msg})
    request.session["flash"] = f"Secret {form['name']} created: new instances get it in their env"
    return RedirectResponse("/secrets", status_code=303)


@router.post("/secrets/update")
async def update(request: Request):
    raw = dict(await request.form())
    check_csrf(request, raw)
    name = str(raw.get("name") or "")
    try:
        body = parse(SecretWrite, {"key": name, "value": str(raw.get("value") or "")})
        await run(request, svc.update_secret, body, write=True)
    except GpuyardError as exc:
        return await _render(request, status=exc.status, row_errors={name: exc.msg})
    request.session["flash"] = f"Secret {name} updated: containers created from now on get the new value"
    return RedirectResponse("/secrets", status_code=303)


@router.post("/secrets/delete")
async def delete(request: Request):
    raw = dict(await request.form())
    check_csrf(request, raw)
    name = str(raw.get("name") or "")
    try:
        await run(request, svc.delete_secret, parse(SecretDelete, {"key": name}), write=True)
    except GpuyardError as exc:
        return await _render(request, status=exc.status, row_errors={name: exc.msg})
    request.session["flash"] = f"Secret {name} deleted"
    return RedirectResponse("/secrets", status_code=303)


@router.post("/secrets/reveal")
async def reveal(request: Request):
    """One secret's value: JSON for the page's script (``Accept: application/json``), else the
    page with that row shown. A POST, so that no URL, history entry or cache holds it."""
    raw = dict(await request.form())
    check_csrf(request, raw)
    name = str(raw.get("name") or "")
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        value = await run(request, _reveal, name)
    except GpuyardError as exc:
        if wants_json:
            return JSONResponse({"ok": False, "msg": exc.msg}, status_code=exc.status, headers=NO_STORE)
        return await _render(request, status=exc.status, row_errors={name: exc.msg})
    if wants_json:
        return JSONResponse({"ok": True, "name": name, "value": value}, headers=NO_STORE)
    return await _render(request, revealed={name: value})
