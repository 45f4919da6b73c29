"""The edge of the API: limits applied to every request before any other work, JSON in and out.

* :class:`RequestLimits` (outermost middleware): a body over ``max_body`` bytes is refused with
  413 before it is read whole (at once when ``Content-Length`` says so), before authentication
  and parsing; a query string over ``MAX_QUERY`` bytes gets 414; a NUL in the path or the query
  string gets 400.
* :class:`WireRoute`: every API route parses its JSON body with :func:`gpuyard.wire.json.loads`
  (orjson, nesting and NUL limits) before FastAPI validates it against the route's model.
* :class:`JSONAnswer`: answers encoded by orjson, with the exact ``Content-Type:
  application/json`` the official CLI insists on.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpuyard.errors import InvalidInput
from gpuyard.wire import json as wire_json

MAX_QUERY = 16 * 1024
#: Paths outside /api/ that answer JSON (never a console page).
JSON_PATHS = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json")


def is_api_path(path: str) -> bool:
    """Whether ``path`` belongs to the API (JSON answers and errors) rather than the console."""
    return path.startswith("/api/") or path in JSON_PATHS


def error_response(status: int, code: str, msg: str) -> Response:
    """Every error answers ``{"success": false, "error": code, "msg": text}`` with its status."""
    return JSONAnswer({"success": False, "error": code, "msg": msg}, status_code=status)


class JSONAnswer(JSONResponse):
    """A JSON answer encoded by orjson (FastAPI documents it like any JSON response)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return wire_json.dumps(content)


class RequestLimits:
    """Bounds on what a request may make the server read (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_body: int):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string") or b""
        if len(query) > MAX_QUERY:
            msg = (f"the query string is {len(query)} bytes long; the limit is {MAX_QUERY}: send "
                   "long queries in a request body where the call takes one")
            await error_response(414, "uri_too_long", msg)(scope, receive, send)
            return
        if b"%00" in query or "\x00" in scope.get("path", ""):
            msg = "the URL holds a NUL character (%00); remove it"
            await error_response(400, "invalid_text", msg)(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body:
            await self._too_large(scope, receive, send, length)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._too_large(scope, receive, send, None)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, length: int | None) -> None:
        size = f"{length} bytes" if length is not None else f"more than {self.max_body} bytes"
        msg = (f"the request body is {size}; the limit is {self.max_body} bytes "
               f"({self.max_body // 1024} KiB). Send less: keep large files out of templates "
               "and env (a file the onstart script fetches, or a volume)")
        response = error_response(413, "body_too_large", msg)
        response.headers["connection"] = "close"
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _wants_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    main = kind.split(";", 1)[0].strip().lower()
    return main == "application/json" or main.endswith("+json")


class WireRoute(APIRoute):
    """An API route whose JSON body is parsed by :mod:`gpuyard.wire.json` (an
    :class:`~gpuyard.errors.InvalidInput` for bad JSON, too deep a nesting or a NUL), before
    FastAPI validates it against the route's model."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        known = {param.alias for param in self.dependant.query_params}

        async def parse_then_handle(request: Request) -> Response:
            unknown = sorted(set(request.query_params) - known)
            if unknown:
                takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
                raise InvalidInput(f"unknown query argument(s) {', '.join(map(repr, unknown[:5]))}: "
                                   f"{takes} (see /docs)")
            if request.method not in ("GET", "HEAD") and _wants_json(request):
                raw = await request.body()
                if raw.strip():
                    request._json = wire_json.loads(raw)  # read by FastAPI's request.json()
            return await handler(request)

        return parse_then_handle


def json_arg(value: str | None, name: str, example: str | None = None) -> Any:
    """A JSON-valued query argument (VAST-WIRE §1), decoded with the body's limits. Without an
    ``example`` a value that is not JSON is kept as text (``limit=abc`` then gets the limit's own
    message)."""
    if value is None:
        return None
    try:
        return wire_json.loads(value, where=f"query argument {name}")
    except InvalidInput as exc:
        if exc.code != "invalid_input":
            raise  # too deep, or a NUL
        if example is None:
            return value
        raise InvalidInput(f"query argument {name} must be JSON, e.g. {name}={example}") from None
