"""Mount the console on the application: session cookies, static files, pages, and HTML error
pages for console paths (API paths keep their JSON errors)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from gpuyard.errors import GpuyardError
from gpuyard.server_secret import ServerSecret
from gpuyard.web.deps import SignInRequired
from gpuyard.web.pages import page
from gpuyard.web.routes import auth
from gpuyard.web.session import COOKIE_PURPOSE

ROUTERS = [auth]
CONSOLE_MODULES = ("templates", "launch", "instances", "volumes", "machines", "secrets", "keys", "usage")


TITLES = {400: "That did not work", 401: "Sign in needed", 403: "Not allowed", 404: "Not found",
          409: "Conflict", 503: "Unavailable"}


def render_error(request: Request, exc: GpuyardError):
    title = TITLES.get(exc.status, "Something went wrong")
    return page(request, "error.html", title, status_code=exc.status, error=exc.msg)


def install_console(app: FastAPI, secret: ServerSecret) -> None:
    app.add_middleware(SessionMiddleware, secret_key=secret.derive(COOKIE_PURPOSE).hex(),
                       session_cookie="gpuyard_session",
                       same_site="lax", https_only=False, max_age=14 * 24 * 3600)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")
    import importlib

    for name in CONSOLE_MODULES:
        try:
            module = importlib.import_module(f"gpuyard.web.routes.{name}")
        except ModuleNotFoundError:
            continue
        app.include_router(module.router)
    for module in ROUTERS:
        app.include_router(module.router)
    app.state.render_error = render_error

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired):
        if request.method == "GET":
            target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
            return RedirectResponse(f"/login?next={target}", status_code=303)
        return RedirectResponse("/login", status_code=303)
