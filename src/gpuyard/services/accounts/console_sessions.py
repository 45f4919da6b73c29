"""Web console sessions, kept in the database (``console_sessions``).

Signing in makes a random token; the browser keeps it in its signed cookie and the table keeps
only its SHA-256 digest, with the user and the API key it was opened with. A session counts
while it has not ended, its key is not revoked, its user is not disabled, and it was seen in the
last ``IDLE_LIMIT`` seconds; every console request checks that in the database, so ending it
here (sign-out, revoke-key, disable-user) ends it for every copy of the cookie at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from gpuyard.store.models import ApiKey, ConsoleSession, User

IDLE_LIMIT = 14 * 24 * 3600.0  # the cookie's own lifetime
TOUCH_EVERY = 300.0  # last_seen_at is rewritten at most this often (a write per page is waste)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(session: Session, api_key: ApiKey, user: User) -> str:
    """Open a session for ``user`` signed in with ``api_key``; the token for the cookie."""
    now = time.time()
    # Rows that can never count again go, so that a user's rows are about their live sessions.
    session.execute(delete(ConsoleSession).where(
        ConsoleSession.user_id == user.id,
        or_(ConsoleSession.ended_at.is_not(None), ConsoleSession.last_seen_at < now - IDLE_LIMIT),
    ))
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(token_hash=_digest(token), user_id=user.id, api_key_id=api_key.id,
                               created_at=now, last_seen_at=now))
    session.flush()
    return token


def find(session: Session, token: str) -> tuple[ConsoleSession, User] | None:
    """The live session ``token`` names, and its user; None when it does not count (any more)."""
    found = session.execute(
        select(ConsoleSession, User)
        .join(User, User.id == ConsoleSession.user_id)
        .join(ApiKey, ApiKey.id == ConsoleSession.api_key_id)
        .where(
            ConsoleSession.token_hash == _digest(token),
            ConsoleSession.ended_at.is_(None),
            ConsoleSession.last_seen_at >= time.time() - IDLE_LIMIT,
            ApiKey.revoked_at.is_(None),
            User.disabled_at.is_(None),
        )
    ).first()
    return None if found is None else (found[0], found[1])


def needs_touch(console_session: ConsoleSession) -> bool:
    return time.time() - console_session.last_seen_at >= TOUCH_EVERY


def touch(session: Session, session_id: int) -> None:
    session.execute(update(ConsoleSession).where(ConsoleSession.id == session_id)
                    .values(last_seen_at=time.time()))


def end(session: Session, token: str) -> None:
    _end(session, ConsoleSession.token_hash == _digest(token))


def end_for_keys(session: Session, key_ids: list[int]) -> None:
    if key_ids:
        _end(session, ConsoleSession.api_key_id.in_(key_ids))


def end_for_user(session: Session, user_id: int) -> None:
    _end(session, ConsoleSession.user_id == user_id)


def _end(session: Session, which) -> None:
    session.execute(update(ConsoleSession).where(which, ConsoleSession.ended_at.is_(None))
                    .values(ended_at=time.time()))
