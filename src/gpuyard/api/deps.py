"""Per-request plumbing: the database session, the caller, and running service calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from gpuyard.services.users import authenticate
from gpuyard.store.db import transaction
from gpuyard.store.models import User

T = TypeVar("T")


def bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization") or ""
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def writes(request: Request) -> bool:
    """Whether a request may change data (its transaction then takes SQLite's write lock)."""
    return request.method not in ("GET", "HEAD")


async def call(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Authenticate, then run ``fn(session, user, ...)`` in one transaction on a worker thread."""
    return await _call(request, writes(request), fn, *args, **kwargs)


async def call_read(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """As :func:`call`, for a POST/PUT that only reads (the offer searches): its transaction
    does not take SQLite's write lock."""
    return await _call(request, False, fn, *args, **kwargs)


async def _call(request: Request, write: bool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    factory = request.app.state.sessions
    key = bearer_key(request)

    def work() -> T:
        with transaction(factory, write=write) as session:
            user: User = authenticate(session, key)
            return fn(session, user, *args, **kwargs)

    return await run_in_threadpool(work)


async def call_public(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(session, ...)`` without authentication."""
    factory = request.app.state.sessions

    write = writes(request)

    def work() -> T:
        with transaction(factory, write=write) as session:
            return fn(session, *args, **kwargs)

    return await run_in_threadpool(work)
