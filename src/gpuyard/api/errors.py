"""Every error answers ``{"success": false, "error": code, "msg": text}`` with a proper status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gpuyard.api.edge import error_response, is_api_path
from gpuyard.api.paths import allowed_methods, explain
from gpuyard.errors import GpuyardError, NotFound
from gpuyard.wire.base import as_error

log = logging.getLogger("gpuyard.api")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GpuyardError)
    async def _domain(request: Request, exc: GpuyardError):
        render = getattr(request.app.state, "render_error", None)
        wants_json = "application/json" in request.headers.get("accept", "")
        if render is not None and not wants_json and not is_api_path(request.url.path):
            return render(request, exc)  # a console page: an HTML page that says what went wrong
        return error_response(exc.status, exc.code, exc.msg)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        err = as_error(list(exc.errors()))
        return error_response(err.status, err.code, err.msg)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        render = getattr(request.app.state, "render_error", None)
        console = render is not None and not (is_api_path(request.url.path)
                                              or request.url.path.startswith("/static/"))
        if console and exc.status_code == 404 and "application/json" not in request.headers.get("accept", ""):
            return render(request, NotFound(f"there is no page at {request.url.path}", "no_such_page"))
        if exc.status_code == 404:
            if request.url.path.startswith("/api/"):
                err = explain(request.app, request.method, request.url.path)
                return error_response(err.status, err.code, err.msg)
            msg = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
            return error_response(404, "no_such_endpoint", msg)
        if exc.status_code == 405:
            msg = f"{request.method} is not allowed on {request.url.path} (see /docs)"
            response = error_response(405, "method_not_allowed", msg)
            response.headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
            return response
        return error_response(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "internal server error; see the server log")
