"""Console fixtures: a signed-in browser-like client (cookies kept) for alice."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


class Console:
    """An httpx client that keeps the session cookie and knows the current CSRF token."""

    def __init__(self, client: httpx.Client):
        self.client = client
        self.csrf = ""

    def get(self, path: str, **kw) -> httpx.Response:
        r = self.client.get(path, **kw)
        if "text/html" in r.headers.get("content-type", "") and CSRF.search(r.text):
            self.csrf = csrf_of(r.text)
        return r

    def post(self, path: str, data: dict | None = None, **kw) -> httpx.Response:
        if not self.csrf:
            self.get("/login")
        r = self.client.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kw)
        if "text/html" in r.headers.get("content-type", "") and CSRF.search(r.text):
            self.csrf = csrf_of(r.text)
        return r


@pytest.fixture
def anonymous(live_server) -> Iterator[Console]:
    with httpx.Client(base_url=live_server, follow_redirects=True, timeout=30) as client:
        yield Console(client)


@pytest.fixture
def console_for(live_server) -> Iterator:
    """``console_for(account)``: a console client of its own, signed in as ``account``."""
    clients: list[httpx.Client] = []

    def sign_in(account) -> Console:
        client = httpx.Client(base_url=live_server, follow_redirects=True, timeout=30)
        clients.append(client)
        signed_in = Console(client)
        r = signed_in.post("/login", {"api_key": account.key})
        assert r.status_code == 200 and "Sign out" in r.text, r.text
        return signed_in

    yield sign_in
    for client in clients:
        client.close()


@pytest.fixture
def console(anonymous, alice) -> Console:
    r = anonymous.post("/login", {"api_key": alice.key})
    assert r.status_code == 200 and "Sign out" in r.text, r.text
    return anonymous
