"""Signing in and out of the console, the session cookie, and CSRF protection."""

from __future__ import annotations

import httpx


def test_pages_need_a_sign_in_and_come_back_after_it(anonymous, alice):
    r = anonymous.get("/templates")
    assert r.url.path == "/login" and "API key" in r.text
    assert "<title>Sign in · gpuyard</title>" in r.text
    r = anonymous.post("/login", {"api_key": alice.key, "next": "/templates"})
    assert r.url.path == "/templates" and "alice" in r.text


def test_a_wrong_key_is_refused_next_to_the_field(anonymous):
    r = anonymous.post("/login", {"api_key": "nope"})
    assert r.status_code == 401
    assert 'id="api_key-error"' in r.text and "not valid" in r.text


def test_forms_without_the_csrf_token_are_refused(live_server, alice):
    with httpx.Client(base_url=live_server, timeout=30) as client:
        client.get("/login")
        r = client.post("/login", data={"api_key": alice.key})
        assert r.status_code == 403 and "did not come from this console" in r.text
        assert "gpuyard_session" not in client.cookies or "Sign out" not in client.get("/templates").text


def test_sign_out_ends_the_session(console):
    r = console.post("/logout")
    assert r.url.path == "/login"
    assert console.get("/templates").url.path == "/login"


def test_the_session_cookie_is_httponly_and_holds_no_key(live_server, alice):
    with httpx.Client(base_url=live_server, timeout=30) as client:
        page = client.get("/login").text
        token = page.split('name="csrf-token" content="')[1].split('"')[0]
        r = client.post("/login", data={"api_key": alice.key, "csrf_token": token})
        cookie = r.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
        assert alice.key not in cookie


def test_next_only_goes_to_pages_of_this_site(anonymous, alice):
    r = anonymous.post("/login", {"api_key": alice.key, "next": "//evil.example/x"})
    assert r.url.host == "127.0.0.1"


def test_unknown_pages_are_an_html_404_and_api_paths_stay_json(console):
    r = console.get("/no/such/page")
    assert r.status_code == 404 and "<title>Not found · gpuyard</title>" in r.text
    api = console.client.get("/api/v0/no/such/endpoint")
    assert api.status_code == 404 and api.json()["error"] == "not_supported"


def test_a_wrong_key_is_shown_once_next_to_the_field(anonymous):
    r = anonymous.post("/login", {"api_key": "nope"})
    assert r.text.count("not valid") == 1 and 'id="page-error"' not in r.text


def test_every_console_form_refuses_a_post_without_the_csrf_token(console, fleet):
    import importlib

    from gpuyard.web.wiring import CONSOLE_MODULES

    posts = sorted({
        route.path
        for name in (*CONSOLE_MODULES, "auth")
        for route in importlib.import_module(f"gpuyard.web.routes.{name}").router.routes
        if "POST" in route.methods
    })
    assert len(posts) >= 10, posts
    for path in posts:
        url = path.replace("{instance_id}", "1").replace("{volume_id}", "1").replace("{ref}", "1")
        r = console.client.post(url, data={"name": "x"})  # the session cookie, but no token
        assert r.status_code == 403, (path, r.status_code)
