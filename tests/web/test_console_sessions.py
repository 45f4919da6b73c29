"""Console sessions live on the server: a copy of the cookie stops working once the session is
signed out, its key is revoked or deleted, or its user is disabled; idle sessions expire."""

from __future__ import annotations

import base64
import hashlib
import html
import importlib
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import delete, select, update

from gpuyard.services.access import operators as access
from gpuyard.store.db import transaction
from gpuyard.store.models import ApiKey, ConsoleSession, Template
from gpuyard.web.wiring import CONSOLE_MODULES

COOKIE = "gpuyard_session"
PARAMS = {"{ref}": "1", "{instance_id}": "1", "{volume_id}": "1", "{hash_id}": "a" * 32}


def console_pages() -> list[str]:
    """Every console page a GET reaches (with made-up ids), but the sign-in page and the door."""
    paths = set()
    for name in CONSOLE_MODULES:
        for route in importlib.import_module(f"gpuyard.web.routes.{name}").router.routes:
            if "GET" in route.methods:
                path = route.path
                for param, value in PARAMS.items():
                    path = path.replace(param, value)
                paths.add(path)
    return sorted(paths)


@pytest.fixture
def replay(live_server) -> Iterator:
    """``replay(cookie)``: a client of its own that sends a copied session cookie."""
    clients: list[httpx.Client] = []

    def make(cookie: str) -> httpx.Client:
        client = httpx.Client(base_url=live_server, cookies={COOKIE: cookie}, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def assert_signed_out(client: httpx.Client) -> None:
    pages = console_pages()
    assert len(pages) >= 12, pages
    for path in pages:
        r = client.get(path)
        assert r.status_code == 303, (path, r.status_code)
        assert r.headers["location"].startswith("/login?next="), (path, r.headers["location"])


def assert_signed_in(client: httpx.Client, username: str) -> None:
    r = client.get("/templates")
    assert r.status_code == 200 and username in r.text and "Sign out" in r.text


def session_token(cookie: str) -> str:
    """The session token inside a console cookie (its payload is base64 JSON, then signed)."""
    payload = cookie.split(".")[0]
    return json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))["sid"]


def test_a_cookie_copied_before_sign_out_is_refused_after_it(console, replay, app, alice):
    cookie = console.client.cookies[COOKIE]
    copy = replay(cookie)
    assert_signed_in(copy, "alice")
    old_csrf = console.csrf

    assert console.post("/logout").url.path == "/login"

    assert_signed_out(copy)
    r = copy.post("/templates/new", data={"csrf_token": old_csrf, "image": "img/x", "runtype": "args"})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    with transaction(app.state.sessions, write=False) as session:
        assert session.scalars(select(Template.id)).all() == []
    assert console.get("/templates").url.path == "/login"


@pytest.mark.parametrize("how", ["revoke the key", "revoke every key of the user", "delete the key",
                                 "disable the user"])
def test_revoking_deleting_or_disabling_ends_the_session(console, replay, app, alice, how):
    copy = replay(console.client.cookies[COOKIE])
    assert_signed_in(copy, "alice")
    with transaction(app.state.sessions) as session:
        (key_id,) = session.scalars(select(ApiKey.id).where(ApiKey.user_id == alice.id)).all()
        if how == "revoke the key":
            access.revoke_key(session, key_id)
        elif how == "revoke every key of the user":
            access.revoke_user_keys(session, "alice")
        elif how == "delete the key":
            session.execute(delete(ApiKey).where(ApiKey.id == key_id))
        else:
            access.disable_user(session, "alice")
    assert_signed_out(copy)
    assert console.get("/templates").url.path == "/login"


def test_enabling_a_user_again_does_not_revive_old_sessions(console, replay, app, alice):
    copy = replay(console.client.cookies[COOKIE])
    with transaction(app.state.sessions) as session:
        access.disable_user(session, "alice")
    r = console.post("/login", {"api_key": alice.key})
    assert r.status_code == 403 and "'alice' is disabled" in html.unescape(r.text)
    assert "contact the server's operator" in html.unescape(r.text)
    with transaction(app.state.sessions) as session:
        access.enable_user(session, "alice")
    assert_signed_out(copy)
    r = console.post("/login", {"api_key": alice.key})
    assert r.status_code == 200 and "Sign out" in r.text


def test_a_revoked_key_cannot_sign_in(anonymous, app, alice):
    with transaction(app.state.sessions) as session:
        access.revoke_user_keys(session, "alice")
    r = anonymous.post("/login", {"api_key": alice.key})
    assert r.status_code == 401 and "this API key was revoked on" in r.text
    assert 'id="api_key-error"' in r.text


def test_the_database_holds_only_a_digest_of_the_session_token(console, app):
    token = session_token(console.client.cookies[COOKIE])
    with transaction(app.state.sessions, write=False) as session:
        stored = session.scalars(select(ConsoleSession.token_hash)).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]


def test_idle_sessions_expire_and_visits_keep_them_alive(console, app):
    def last_seen() -> float:
        with transaction(app.state.sessions, write=False) as session:
            return session.scalar(select(ConsoleSession.last_seen_at))

    def seen_ago(seconds: float) -> None:
        with transaction(app.state.sessions) as session:
            session.execute(update(ConsoleSession).values(last_seen_at=time.time() - seconds))

    seen_ago(600)  # ten minutes ago: this visit is noted
    assert console.get("/templates").url.path == "/templates"
    assert time.time() - last_seen() < 60
    seen_ago(15 * 24 * 3600)  # a fortnight and a day: it has expired
    assert console.get("/templates").url.path == "/login"
