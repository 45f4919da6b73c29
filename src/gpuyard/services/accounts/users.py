"""Users and API keys. Keys are random, shown once, and stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gpuyard.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
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


def utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


#: Built once (every request runs it; building a statement costs more than running it).
KEY_HOLDER = (select(ApiKey, User).join(User, User.id == ApiKey.user_id)
              .where(ApiKey.key_hash == bindparam("digest")))


def key_holder(session: Session, digest: str) -> tuple[ApiKey, User]:
    """The key with SHA-256 digest ``digest`` and its user, read from the database on every
    call (a revocation or a disabled account counts at once, in every process): 401 for an
    unknown or revoked key, 403 for a disabled account."""
    found = session.execute(KEY_HOLDER, {"digest": digest}).first()
    if found is None:
        raise Unauthorized(
            "invalid API key: check the key your client sends, or ask the server's operator "
            "for a new one",
            "invalid_api_key",
        )
    api_key, user = found
    if api_key.revoked_at is not None:
        raise Unauthorized(
            f"this API key was revoked on {utc(api_key.revoked_at)}; ask the server's operator "
            "for a new one",
            "api_key_revoked",
        )
    if user.disabled_at is not None:
        raise Forbidden(
            f"the account {user.username!r} is disabled (since {utc(user.disabled_at)}); "
            "contact the server's operator",
            "account_disabled",
        )
    return api_key, user


def authenticate(session: Session, key: str | None) -> User:
    return authenticate_key(session, key)[1]


def authenticate_key(session: Session, key: str | None) -> tuple[ApiKey, User]:
    """The key a request sent and its user (401 without one, or for a wrong one)."""
    if not key:
        raise Unauthorized(
            "missing API key: send the header 'Authorization: Bearer <key>' "
            "(the server's operator creates keys)",
            "auth_required",
        )
    return key_holder(session, hash_key(key))


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(
            f"there is no user named {username!r} ('gpuyard admin list-keys' lists users and "
            "their keys)",
            "user_not_found",
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
