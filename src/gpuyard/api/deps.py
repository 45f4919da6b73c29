"""Per-request plumbing: the caller, the database session, and running service calls.

Authentication reads the ``Authorization: Bearer <key>`` header inside the call's own
transaction (no cache: a revoked or deleted key is refused by the next request, in every
process). The key's permission document is applied there too, once per call, to the route the
request matched (``services/accounts/permissions.py``): a restricted key gets a 403 naming what it lacks
before the service runs. The ``bearer`` dependency only declares the scheme, so that
``/openapi.json`` shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from gpuyard.api.edge import WireRoute
from gpuyard.services.accounts import permissions
from gpuyard.services.accounts.users import authenticate, authenticate_key
from gpuyard.store.db import transaction
from gpuyard.store.models import ApiKey, User
from gpuyard.wire.common import ErrorBody
from gpuyard.workers import run_db

T = TypeVar("T")

bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer <key>`")


async def authenticated(request: Request, _scheme: Any = Depends(bearer)) -> None:  # noqa: B008
    """A request without a key is a 401 before its body is validated or anything else is done.
    The key itself is checked in the call's own transaction (one database round trip per
    request): a wrong key is a 401 there, before the service runs."""
    if bearer_key(request) is None:
        authenticate(None, None)  # raises the "missing API key" 401


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    words = {400: "bad input: msg says which field and how to fix it",
             401: "missing, invalid or revoked API key", 403: "not allowed for this key or user",
             404: "no such object (or not yours)", 409: "conflicts with the current state",
             413: "request body over the size limit", 414: "query string too long"}
    return {code: {"model": ErrorBody, "description": words[code]} for code in codes}


#: Router settings of authenticated endpoints: the Bearer scheme and the errors they can give.
AUTHENTICATED: dict[str, Any] = {
    "dependencies": [Depends(authenticated)],
    "responses": _errors(400, 401, 403, 404, 409, 413, 414),
    "route_class": WireRoute,
}
#: Router settings of public endpoints.
PUBLIC: dict[str, Any] = {"responses": _errors(400, 404, 413, 414), "route_class": WireRoute}


def bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization") or ""
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def writes(request: Request) -> bool:
    """Whether a request may change data (its transaction then takes SQLite's write lock)."""
    return request.method not in ("GET", "HEAD")


async def call(request: Request, fn: Callable[..., T], *args: Any,
               then: Callable[[T], Any] | None = None, **kwargs: Any) -> T:
    """Authenticate, then run ``fn(session, user, ...)`` in one transaction on a worker thread.
    The arguments are already validated (the wire models): nothing is parsed under the lock.
    ``then(result)`` runs on the same thread once the transaction has committed (no second
    hop to a worker thread)."""
    return await _call(request, writes(request), False, fn, *args, then=then, **kwargs)


async def call_read(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """As :func:`call`, for a POST/PUT that only reads (the offer searches): its transaction
    does not take SQLite's write lock."""
    return await _call(request, False, False, fn, *args, **kwargs)


async def call_with_key(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """As :func:`call`, for services about the key itself: ``fn(session, user, api_key, ...)``."""
    return await _call(request, writes(request), True, fn, *args, **kwargs)


def _values(request: Request) -> Callable[[permissions.Param], Any]:
    """The call's raw parameter values, for the constraints of a permission document: path
    parameters (ids already numbers), query arguments and the JSON body (already validated by
    the route's model)."""
    body = getattr(request, "_json", None)

    def value(param: permissions.Param) -> Any:
        if param.source == "path":
            return request.path_params.get(param.field)
        if param.source == "query":
            return request.query_params.get(param.field)
        return body.get(param.field) if isinstance(body, dict) else None

    return value


def authorize(request: Request, api_key: ApiKey) -> None:
    """403 unless ``api_key`` may call the route this request matched."""
    if api_key.permissions is None:
        return  # a full key
    route = request.scope.get("route")
    permissions.authorize(api_key.permissions, request.method, getattr(route, "path", None),
                          _values(request))


async def _call(request: Request, write: bool, with_key: bool, fn: Callable[..., T], *args: Any,
                then: Callable[[T], Any] | None = None, **kwargs: Any) -> T:
    factory = request.app.state.sessions
    key = bearer_key(request)
    usage = getattr(request.app.state, "key_usage", None)

    def work() -> T:
        with transaction(factory, write=write) as session:
            api_key, user = authenticate_key(session, key)
            if usage is not None:
                usage.note(api_key.id, api_key.last_used_at)  # in memory; written elsewhere
            authorize(request, api_key)
            if with_key:
                result = fn(session, user, api_key, *args, **kwargs)
            else:
                result = fn(session, user, *args, **kwargs)
        if then is not None:
            then(result)
        return result

    return await run_db(request.app, work, write=write)


async def caller(request: Request) -> User:
    """The authenticated user, in a read transaction of its own (for calls that must know who
    asks before doing any work, e.g. a bulk create)."""
    return await _call(request, False, False, lambda _session, user: user)


async def call_public(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(session, ...)`` without authentication."""
    factory = request.app.state.sessions

    write = writes(request)

    def work() -> T:
        with transaction(factory, write=write) as session:
            return fn(session, *args, **kwargs)

    return await run_db(request.app, work, write=write)
