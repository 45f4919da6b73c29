"""Sign in, sign out, and the front door."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from gpuyard.errors import GpuyardError
from gpuyard.web.deps import run_public
from gpuyard.web.pages import page
from gpuyard.web.session import TOKEN, check_csrf, sign_in, sign_out

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only paths on this site (no //host or scheme): an open redirect is a phishing tool."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/templates"


@router.get("/")
async def home(request: Request):
    return RedirectResponse("/templates" if request.session.get(TOKEN) else "/login", status_code=303)


@router.get("/login")
async def login_form(request: Request, next: str | None = None):
    return page(request, "login.html", "Sign in", next=safe_next(next))


@router.post("/login")
async def login(request: Request):
    form = dict(await request.form())
    target = safe_next(form.get("next"))
    try:
        check_csrf(request, form)
        await run_public(request, lambda s: sign_in(request, s, str(form.get("api_key", ""))),
                         write=True)
    except GpuyardError as exc:
        return page(request, "login.html", "Sign in", status_code=exc.status, error=exc.msg, next=target,
                    field_errors=True)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request):
    form = dict(await request.form())
    check_csrf(request, form)
    await run_public(request, lambda s: sign_out(request, s), write=True)
    return RedirectResponse("/login", status_code=303)
