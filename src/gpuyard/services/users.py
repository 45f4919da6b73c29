"""Users and API keys. Keys are random, shown once, and stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpuyard.errors import Conflict, InvalidInput, Unauthorized
from gpuyard.store.models import ApiKey, User

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """64 hex characters, the same shape as a Vast API key."""
    return secrets.token_hex(32)


def create_user(session: Session, username: str, admin: bool = False) -> tuple[User, str]:
    """Create a user with one API key; return the user and the plain key (never stored)."""
    if not USERNAME_RE.match(username or ""):
        raise InvalidInput(
            f"user name {username!r} is not valid: use 1-100 letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists; pick another name", "user_exists")
    user = User(username=username, is_admin=admin, balance=0.0, created_at=time.time())
    session.add(user)
    session.flush()
    return user, add_key(session, user)


def add_key(session: Session, user: User) -> str:
    key = new_key()
    session.add(ApiKey(user_id=user.id, key_hash=hash_key(key), created_at=time.time()))
    session.flush()
    return key


def authenticate(session: Session, key: str | None) -> User:
    if not key:
        raise Unauthorized(
            "missing API key: send the header 'Authorization: Bearer <key>' "
            "(the server's operator creates keys)",
            "auth_required",
        )
    user = session.scalar(
        select(User).join(ApiKey, ApiKey.user_id == User.id).where(ApiKey.key_hash == hash_key(key))
    )
    if user is None:
        raise Unauthorized(
            "invalid API key: check the key your client sends, or ask the server's operator "
            "for a new one",
            "invalid_api_key",
        )
    return user


def user_row(user: User) -> dict[str, Any]:
    """The user object of ``GET /users/current`` (the fields the official client shows)."""
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "fullname": user.username,
        "is_admin": user.is_admin,
        "balance": user.balance,
        "credit": 0.0,
        "can_pay": True,
        "has_billing": False,
        "email_verified": False,
        "host_agreement_accepted": False,
        "created_at": user.created_at,
        "ssh_key": None,
    }
