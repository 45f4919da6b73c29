"""Signing in, the session cookie and CSRF protection.

Signing in takes an API key; the session (a cookie signed with a key derived from the server
secret, see ``gpuyard.server_secret``; HttpOnly, SameSite=Lax) then holds the key's SHA-256
digest, never the key, so deleting a key signs its sessions out. Every POST must carry the
session's CSRF token, as the ``csrf_token`` form field or the ``X-CSRF-Token`` header (the
pages' scripts send the header).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from gpuyard.errors import Forbidden, GpuyardError, Unauthorized
from gpuyard.services.users import hash_key, key_holder
from gpuyard.store.models import User

COOKIE_PURPOSE = "console session cookies v1"  # the label of the cookie-signing key


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
    digest = hash_key(key)
    try:
        _api_key, user = key_holder(session, digest)
    except Unauthorized as exc:
        if exc.code != "invalid_api_key":
            raise
        raise Unauthorized("that API key is not valid; check it and try again", "invalid_key") from None
    request.session.clear()
    request.session["key"] = digest
    csrf_token(request)
    return user


def signed_in_user(request: Request, session: Session) -> User | None:
    digest = request.session.get("key")
    if not digest:
        return None
    try:
        return key_holder(session, digest)[1]
    except GpuyardError:  # revoked, deleted, or the account disabled: signed out
        return None


def sign_out(request: Request) -> None:
    request.session.clear()
