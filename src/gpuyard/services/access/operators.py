"""Who may use the server: the operator lists, creates and revokes API keys, and disables and
enables accounts (``gpuyard admin ...``). Every check reads these marks from the database
(``users.key_holder``, ``console_sessions.find``), so a change counts on the next request, in
every server process. Revoking and disabling also end the console sessions concerned, for good:
enabling a user again does not bring them back."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpuyard.errors import InvalidInput, NotFound
from gpuyard.services.accounts import console_sessions
from gpuyard.services.accounts.users import add_key, find_user
from gpuyard.store.models import ApiKey, Instance, User


def key_row(api_key: ApiKey, user: User) -> dict[str, Any]:
    return {
        "id": api_key.id,
        "user": user.username,
        "created_at": api_key.created_at,
        "revoked_at": api_key.revoked_at,
        "user_disabled_at": user.disabled_at,
    }


def list_keys(session: Session, username: str | None = None) -> list[dict[str, Any]]:
    """Every API key (never the key itself: only its id and dates), by user, oldest first."""
    stmt = select(ApiKey, User).join(User, User.id == ApiKey.user_id).order_by(User.username, ApiKey.id)
    if username is not None:
        stmt = stmt.where(ApiKey.user_id == find_user(session, username).id)
    return [key_row(api_key, user) for api_key, user in session.execute(stmt)]


def create_key(session: Session, username: str) -> str:
    """A new API key for an existing user (say, after revoking a leaked one); the plain key."""
    return add_key(session, find_user(session, username))


def _key_id(ref: Any) -> int:
    text = str(ref).strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**31:
        raise InvalidInput(f"an API key id is a number such as 12, not {ref!r} ('gpuyard admin "
                           "list-keys' shows them)", "key_id_expected")
    return int(text)


def revoke_key(session: Session, key_ref: Any) -> tuple[dict[str, Any], bool]:
    """Revoke one key; (its row, whether it was live until now)."""
    key_id = _key_id(key_ref)
    api_key = session.get(ApiKey, key_id, with_for_update=True)
    if api_key is None:
        raise NotFound(f"there is no API key with id {key_id} ('gpuyard admin list-keys' lists "
                       "them)", "key_not_found")
    user = session.get(User, api_key.user_id)
    if api_key.revoked_at is not None:
        return key_row(api_key, user), False
    api_key.revoked_at = time.time()
    console_sessions.end_for_keys(session, [api_key.id])
    return key_row(api_key, user), True


def revoke_user_keys(session: Session, username: str) -> list[int]:
    """Revoke every live key of a user; the ids revoked."""
    user = find_user(session, username)
    live = session.scalars(
        select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.id).with_for_update()
    ).all()
    now = time.time()
    for api_key in live:
        api_key.revoked_at = now
    console_sessions.end_for_keys(session, [k.id for k in live])
    return [k.id for k in live]


@dataclass
class AccountChange:
    username: str
    changed: bool  # False: it already was disabled (or enabled)
    since: float | None = None  # when it was disabled
    stopped: list[int] = field(default_factory=list)  # instances told to stop


def disable_user(session: Session, username: str, stop: bool = False) -> AccountChange:
    """Refuse the user's keys from now on (they stay, for enable_user). ``stop``: also stop
    their running instances, as their own stop request would (disk kept)."""
    from gpuyard.services.rentals.instances import set_state

    user = find_user(session, username)
    session.refresh(user, with_for_update=True)
    change = AccountChange(user.username, changed=user.disabled_at is None)
    if change.changed:
        user.disabled_at = time.time()
    console_sessions.end_for_user(session, user.id)
    change.since = user.disabled_at
    if stop:
        running = session.scalars(
            select(Instance.id).where(Instance.owner_id == user.id, Instance.destroyed_at.is_(None),
                                      Instance.intended_status == "running")
            .order_by(Instance.id)
        ).all()
        if running:
            set_state(session, user, list(running), "stopped")
        change.stopped = list(running)
    return change


def enable_user(session: Session, username: str) -> AccountChange:
    """Accept the user's keys again (revoked keys stay revoked)."""
    user = find_user(session, username)
    session.refresh(user, with_for_update=True)
    change = AccountChange(user.username, changed=user.disabled_at is not None)
    user.disabled_at = None
    return change
