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
from sqlalchemy import select
from sqlalchemy.orm import Session

from gpuyard.errors import Forbidden, Unauthorized
from gpuyard.services.users import hash_key
from gpuyard.store.models import ApiKey, User

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
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    user = session.get(User, row.user_id) if row is not None else None
    if user is None:
        raise Unauthorized("that API key is not valid; check it and try again", "invalid_key")
    request.session.clear()
    request.session["key"] = digest
    csrf_token(request)
    return user


def signed_in_user(request: Request, session: Session) -> User | None:
    digest = request.session.get("key")
    if not digest:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    return session.get(User, row.user_id) if row is not None else None


def sign_out(request: Request) -> None:
    request.session.clear()
