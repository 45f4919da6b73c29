"""A user's API keys (VAST-WIRE §15): many per user, each with a name, a permission document
(none: a full key), the time it was made and the time it was last used.

* A key's text is shown once, in the answer that creates it; only its SHA-256 digest is stored
  (``services/accounts/users.py``). Nothing here ever returns it again.
* A key never grants more than the key that creates it: creating a broader one is a 403 that
  names what it would add (``permissions.additions``). For the same reason a key cannot delete a
  key broader than itself.
* Deleting a key removes its row (its console sessions go with it): the very next request with
  it is a 401, in every server process, since every request reads its key from the database.
* ``last_used`` is written at most about once a minute per key, by :class:`KeyUsage` on a thread
  of its own, never inside a request's transaction (it would make requests with one key queue
  on its row).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from gpuyard.errors import Conflict, Forbidden, NotFound
from gpuyard.services.accounts import console_sessions, permissions
from gpuyard.services.accounts.users import hash_key, new_key
from gpuyard.store.db import transaction
from gpuyard.store.models import ApiKey, User
from gpuyard.wire.apikeys import ApiKeyCreate

log = logging.getLogger("gpuyard.apikeys")


def key_row(api_key: ApiKey, caller: ApiKey | None = None) -> dict[str, Any]:
    """A key as the API shows it: never its text nor its digest."""
    return {
        "id": api_key.id,
        "name": api_key.name,
        "created_at": api_key.created_at,
        "last_used": api_key.last_used_at,
        "permissions": api_key.permissions,
        "summary": permissions.summary(api_key.permissions),
        "key_params": api_key.key_params,
        "revoked_at": api_key.revoked_at,
        "current": caller is not None and caller.id == api_key.id,
    }


def list_keys(session: Session, user: User, caller: ApiKey) -> list[dict[str, Any]]:
    rows = session.scalars(select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.id))
    return [key_row(k, caller) for k in rows]


def _own(session: Session, user: User, key_id: int, lock: bool = False) -> ApiKey:
    api_key = session.get(ApiKey, key_id, with_for_update=lock)
    if api_key is None or api_key.user_id != user.id:
        raise NotFound(f"API key {key_id} not found among your keys (see 'show api-keys')",
                       "api_key_not_found")
    return api_key


def show_key(session: Session, user: User, caller: ApiKey, key_id: int) -> dict[str, Any]:
    return key_row(_own(session, user, key_id), caller)


def create_key(session: Session, user: User, caller: ApiKey, body: ApiKeyCreate) -> dict[str, Any]:
    """A new key for ``user``, no broader than ``caller``; the answer carries its text, once."""
    doc = body.permissions.stored() if body.permissions is not None else None
    added = permissions.additions(doc, caller.permissions)
    if added:
        raise Forbidden(
            "a key cannot create a key broader than itself; the new key would add: "
            + "; ".join(added[:10]) + (f" (and {len(added) - 10} more)" if len(added) > 10 else "")
            + ". Leave those out, or create it with a key that has them",
            "permission_denied",
        )
    text = new_key()
    now = time.time()
    api_key = ApiKey(user_id=user.id, key_hash=hash_key(text), created_at=now,
                     name=(body.name or "").strip() or None, permissions=doc, key_params=body.key_params)
    session.add(api_key)
    session.flush()
    row = key_row(api_key)
    return {
        "success": True, "id": api_key.id, "key": text, "name": row["name"], "permissions": doc,
        "summary": row["summary"], "key_params": api_key.key_params, "created_at": now,
        "msg": f"API key {api_key.id} created ({row['summary']}). Save it now: its text is not "
               "shown again",
    }


def _live_full_keys(session: Session, user: User) -> list[int]:
    return list(session.scalars(select(ApiKey.id).where(
        ApiKey.user_id == user.id, ApiKey.permissions.is_(None), ApiKey.revoked_at.is_(None))))


def delete_key(session: Session, user: User, caller: ApiKey, key_id: int) -> dict[str, Any]:
    """Delete one of ``user``'s keys (no broader than ``caller``); refused at once from then on."""
    api_key = _own(session, user, key_id, lock=True)
    added = permissions.additions(api_key.permissions, caller.permissions)
    if added:
        raise Forbidden(f"this key cannot delete key {key_id}, which can do more than it can ("
                        f"{'; '.join(added[:5])}); delete it with a full key", "permission_denied")
    if api_key.permissions is None and api_key.revoked_at is None and _live_full_keys(session, user) == [
            api_key.id]:
        raise Conflict(
            f"key {key_id} is your last full key: without one you could not sign in to the console "
            "or make keys with every permission. Create another full key first (the console's Keys "
            "page, or create_api_key without permissions), then delete this one",
            "last_full_key",
        )
    session.execute(delete(ApiKey).where(ApiKey.id == api_key.id))  # its console sessions cascade
    what = "the key this request came with" if api_key.id == caller.id else f"API key {key_id}"
    return {"success": True, "id": key_id,
            "msg": f"Deleted {what}; it is refused from now on"}


def reset_key(session: Session, user: User, caller: ApiKey) -> dict[str, Any]:
    """Replace the calling key's text with a new one (same id, name and permissions); the old
    text is refused from now on, and console sessions opened with it end."""
    api_key = session.get(ApiKey, caller.id, with_for_update=True)
    if api_key is None:  # deleted meanwhile
        raise NotFound("this API key was deleted meanwhile", "api_key_not_found")
    text = new_key()
    api_key.key_hash = hash_key(text)
    api_key.last_used_at = None
    console_sessions.end_for_keys(session, [api_key.id])
    return {"success": True, "new_api_key": text,
            "msg": f"API key {api_key.id} was replaced: the old text is refused from now on. Save the "
                   "new one now (it is not shown again), e.g. 'vastai set api-key NEW_KEY'"}


class KeyUsage:
    """Records when keys are used, at most once per ``every`` seconds per key, in short write
    transactions on a thread of its own (started when there is something to write, gone when
    there is nothing left). A request only notes the use in memory."""

    def __init__(self, sessions: sessionmaker[Session], every: float = 60.0):
        self.sessions = sessions
        self.every = every
        self._lock = threading.Lock()
        self._noted: dict[int, float] = {}  # key id → when this process last queued a write
        self._pending: dict[int, float] = {}
        self._thread: threading.Thread | None = None

    def note(self, key_id: int, last_used_at: float | None, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if last_used_at is not None and now - last_used_at < self.every:
            return
        with self._lock:
            if now - self._noted.get(key_id, float("-inf")) < self.every:
                return
            self._noted[key_id] = now
            if len(self._noted) > 10_000:  # forget old marks (the database has the truth)
                self._noted = {k: t for k, t in self._noted.items() if now - t < self.every}
            self._pending[key_id] = now
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gpuyard-key-usage", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending, {}
                if not batch:
                    self._thread = None
                    return
            try:
                self.write(batch)
            except Exception:  # the database may be briefly unavailable: the next use notes it
                log.warning("could not record when %d API key(s) were used", len(batch), exc_info=True)
                with self._lock:
                    for key_id in batch:
                        self._noted.pop(key_id, None)

    def write(self, batch: dict[int, float]) -> None:
        with transaction(self.sessions) as session:
            for key_id, when in sorted(batch.items()):
                session.execute(update(ApiKey).where(
                    ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < when)
                ).values(last_used_at=when))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until what was noted is written (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._thread is None:
                    return
            time.sleep(0.01)
