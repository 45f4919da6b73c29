"""Signing in and out of the console, and CSRF protection.

Signing in takes an API key and opens a server-side session (``services/accounts/console_sessions.py``);
the browser's cookie (signed with a key derived from the server secret, see
``gpuyard.server_secret``; HttpOnly, SameSite=Lax) holds that session's random token, never the
key. Every console request looks the session up in the database, so signing out, revoking or
deleting the key, or disabling the user signs out every copy of the cookie. Every POST must
carry the session's CSRF token, as the ``csrf_token`` form field or the ``X-CSRF-Token`` header
(the pages' scripts send the header).
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from gpuyard.errors import Forbidden, Unauthorized
from gpuyard.services.accounts import console_sessions
from gpuyard.services.accounts.users import hash_key, key_holder
from gpuyard.store.models import ConsoleSession, User

COOKIE_PURPOSE = "console session cookies v1"  # the label of the cookie-signing key
TOKEN = "sid"  # the cookie's key for the session token


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, form: dict[str, Any] | None = None) -> None:
    expected = request.session.get("csrf") or ""
    given = request.headers.get("x-csrf-token") or (form or {}).get("csrf_token") or ""
    if not expected or not hmac.compare_digest(str(given), expected):
        raise Forbidden("the form has expired or did not come from this console; reload the page and "
                        "try again", "csrf_failed")


def sign_in(request: Request, session: Session, key: str) -> User:
    key = (key or "").strip()
    if not key:
        raise Unauthorized("enter your API key (gpuyard admin create-user prints one)", "key_required")
    try:
        api_key, user = key_holder(session, hash_key(key))
    except Unauthorized as exc:
        if exc.code != "invalid_api_key":
            raise  # revoked: the message says so
        raise Unauthorized("that API key is not valid; check it and try again", "invalid_key") from None
    if api_key.permissions is not None:  # the console's pages are not split by permission
        raise Forbidden(
            "that API key is limited by a permission document; the console needs a full key (one made "
            "without permissions, such as the key 'gpuyard admin create-user' printed)",
            "restricted_key",
        )
    api_key.last_used_at = time.time()  # signing in to the console is a use of the key
    previous = request.session.get(TOKEN)
    if previous:
        console_sessions.end(session, str(previous))
    token = console_sessions.start(session, api_key, user)
    request.session.clear()
    request.session[TOKEN] = token
    csrf_token(request)
    return user


def signed_in(request: Request, session: Session) -> tuple[ConsoleSession, User] | None:
    """The request's live console session and its user, or None (a cookie of a session that
    has ended loses its token, so that the sign-in page starts afresh)."""
    token = request.session.get(TOKEN)
    if not token:
        return None
    found = console_sessions.find(session, str(token))
    if found is None:
        request.session.pop(TOKEN, None)
    return found


def sign_out(request: Request, session: Session) -> None:
    token = request.session.get(TOKEN)
    if token:
        console_sessions.end(session, str(token))
    request.session.clear()
