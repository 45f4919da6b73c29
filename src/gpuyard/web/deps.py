"""Running service calls for console pages: one transaction on a worker thread, as the API does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from gpuyard.services.accounts import console_sessions
from gpuyard.store.db import transaction
from gpuyard.web.session import signed_in
from gpuyard.workers import run_db

T = TypeVar("T")


class SignInRequired(Exception):
    """Raised for pages that need a user; answered with a redirect to the sign-in page."""


async def run(request: Request, fn: Callable[..., T], *args: Any, write: bool = False,
              then: Callable[[T], Any] | None = None, **kwargs: Any) -> T:
    """``fn(session, user, *args)`` for the signed-in user, in one transaction; ``then(result)``
    after it commits, on the same worker thread."""
    factory = request.app.state.sessions

    def work() -> T:
        with transaction(factory, write=write) as session:
            found = signed_in(request, session)
            if found is None:
                raise SignInRequired()
            console_session, user = found
            touch = console_sessions.needs_touch(console_session)
            if touch and write:
                console_sessions.touch(session, console_session.id)
                touch = False
            request.state.user = {"id": user.id, "username": user.username,
                                  "api_key_id": console_session.api_key_id}
            result = fn(session, user, *args, **kwargs)
        if touch:  # a read-only page: note the visit in a short write of its own
            with transaction(factory) as session:
                console_sessions.touch(session, console_session.id)
        if then is not None:
            then(result)
        return result

    return await run_db(request.app, work, write=write)


async def run_public(request: Request, fn: Callable[..., T], *args: Any, write: bool = False) -> T:
    factory = request.app.state.sessions

    def work() -> T:
        with transaction(factory, write=write) as session:
            return fn(session, *args)

    return await run_db(request.app, work, write=write)
