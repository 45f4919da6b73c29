"""The console's Secrets and Keys pages: values hidden until revealed one row at a time (by a
POST with the CSRF token), API keys made with the category picker and shown once, deletes, and
restricted keys kept out of the console."""

from __future__ import annotations

import html
import re

import httpx

SECRET = "hf_console-value-Zq81"


def create_secret(console, name: str, value: str):
    return console.post("/secrets", {"name": name, "value": value})


def test_the_secrets_page_hides_values_until_one_is_revealed(console, alice):
    r = console.get("/secrets")
    assert r.status_code == 200 and "You have no secrets." in r.text
    assert r.headers["cache-control"] == "no-store"
    assert 'href="/secrets" aria-current="page"' in r.text and 'href="/keys"' in r.text

    r = create_secret(console, "HF_TOKEN", SECRET)
    assert r.status_code == 200 and "Secret HF_TOKEN created" in r.text
    assert 'id="secret-HF_TOKEN"' in r.text and SECRET not in r.text  # listed, value hidden

    r = console.post("/secrets/reveal", {"name": "HF_TOKEN"})  # without JavaScript: the page, that row shown
    assert r.status_code == 200 and SECRET in r.text and r.headers["cache-control"] == "no-store"
    assert 'id="hide-HF_TOKEN"' in r.text
    assert SECRET not in console.get("/secrets").text  # hidden again on the next visit

    r = console.client.post("/secrets/reveal", data={"name": "HF_TOKEN"},  # the page's script
                            headers={"X-CSRF-Token": console.csrf, "Accept": "application/json"})
    assert r.status_code == 200 and r.json() == {"ok": True, "name": "HF_TOKEN", "value": SECRET}
    r = console.client.post("/secrets/reveal", data={"name": "NOPE"},
                            headers={"X-CSRF-Token": console.csrf, "Accept": "application/json"})
    assert r.status_code == 404 and r.json()["ok"] is False
    r = console.client.post("/secrets/reveal", data={"name": "HF_TOKEN"},
                            headers={"Accept": "application/json"})
    assert r.status_code == 403 and SECRET not in r.text  # no CSRF token: nothing revealed


def test_secret_form_errors_update_and_delete(console, alice):
    assert create_secret(console, "HF_TOKEN", SECRET).status_code == 200
    r = create_secret(console, "HF_TOKEN", "other")
    assert r.status_code == 409 and 'id="name-error"' in r.text
    assert "update env-var HF_TOKEN VALUE" in html.unescape(r.text)
    r = create_secret(console, "9LIVES", "x")
    assert r.status_code == 400 and "not an env variable name" in r.text and 'aria-invalid="true"' in r.text
    r = create_secret(console, "BIG", "x" * (32 * 1024 + 1))
    assert r.status_code == 400 and 'id="value-error"' in r.text and "x" * 100 not in r.text

    r = console.post("/secrets/update", {"name": "HF_TOKEN", "value": "hf_new"})
    assert r.status_code == 200 and "Secret HF_TOKEN updated" in r.text
    assert console.post("/secrets/reveal", {"name": "HF_TOKEN"}).text.count("hf_new") == 1
    r = console.post("/secrets/delete", {"name": "HF_TOKEN"})
    assert r.status_code == 200 and "Secret HF_TOKEN deleted" in r.text and "You have no secrets." in r.text
    r = console.post("/secrets/delete", {"name": "HF_TOKEN"})
    assert r.status_code == 404 and "no secret named HF_TOKEN" in r.text


def test_another_users_secrets_stay_theirs(console, console_for, bob):
    assert create_secret(console, "HF_TOKEN", SECRET).status_code == 200
    bobs = console_for(bob)
    assert "You have no secrets." in bobs.get("/secrets").text
    r = bobs.post("/secrets/reveal", {"name": "HF_TOKEN"})
    assert r.status_code == 404 and SECRET not in r.text


KEY = re.compile(r'<code id="new-key" class="mono">([0-9a-f]{64})</code>')
CREATED = re.compile(r"Key (\d+) created")


def key_rows(page: str) -> dict[int, str]:
    return {int(m.group(1)): html.unescape(m.group(2)) for m in
            re.finditer(r'<td id="key-(\d+)-summary">([^<]*)</td>', page)}


def test_keys_page_creates_a_key_with_the_picker_and_shows_it_once(console, alice):
    r = console.get("/keys")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert list(key_rows(r.text).values()) == ["full access"] and "(you signed in with it)" in r.text
    assert "never" not in r.text  # signing in used it
    for category in ("instance_read", "misc", "team_write"):
        assert f'id="category-{category}"' in r.text

    r = console.post("/keys", {"name": "ci reader", "access": "categories",
                               "category": ["misc", "instance_read"]})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    key = KEY.search(r.text).group(1)
    assert CREATED.search(r.text) and "instance_read; misc" in r.text
    assert key not in console.get("/keys").text  # shown once
    with httpx.Client(base_url=alice.url, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.post("/api/v0/bundles/", json={}).status_code == 200
        assert c.get("/api/v0/secrets/").status_code == 403

    r = console.post("/keys", {"name": "logs", "access": "document", "document":
                               '{"api": {"instance_read": {"api.instance.request_logs": '
                               '{"constraints": {"id": {"eq": 1227}}}}}}'})
    assert r.status_code == 200 and KEY.search(r.text)
    r = console.post("/keys", {"name": "spare", "access": "full"})
    assert r.status_code == 200 and "It may call: full access" in r.text
    rows = key_rows(console.get("/keys").text)
    assert sorted(rows.values()) == ["full access", "full access",
                                     "instance_read: api.instance.request_logs (id eq 1227)",
                                     "instance_read; misc"]


def test_keys_form_errors(console):
    r = console.post("/keys", {"name": "x", "access": "categories"})
    assert r.status_code == 400 and "tick at least one category" in r.text
    assert 'id="permissions-error"' in r.text
    r = console.post("/keys", {"name": "x", "access": "document", "document": '{"api": {"nope": {}}}'})
    assert r.status_code == 400 and "unknown category nope" in r.text
    assert "{&#34;api&#34;: {&#34;nope&#34;: {}}}" in r.text  # what was typed stays
    r = console.post("/keys", {"name": "x", "access": "document", "document": "{not json"})
    assert r.status_code == 400 and "the permission document is not valid JSON" in r.text
    r = console.post("/keys", {"name": "n" * 201, "access": "full"})
    assert r.status_code == 400 and 'id="name-error"' in r.text


def test_deleting_keys(console, alice):
    page = console.get("/keys").text
    (own,) = key_rows(page)
    r = console.post(f"/keys/{own}/delete")
    assert r.status_code == 409 and f'id="key-{own}-error"' in r.text and "last full key" in r.text
    made = int(CREATED.search(console.post("/keys", {"access": "categories", "category": ["misc"]}).text)[1])
    r = console.post(f"/keys/{made}/delete")
    assert r.status_code == 200 and f"Deleted API key {made}" in r.text and made not in key_rows(r.text)
    assert console.post("/keys/999999/delete").status_code == 404
    assert console.post("/keys", {"access": "full"}).status_code == 200
    r = console.post(f"/keys/{own}/delete")  # the key this console signed in with: signed out
    assert r.status_code == 200 and r.url.path == "/login"
    with alice.http() as c:
        assert c.get("/api/v0/users/current").status_code == 401


def test_a_restricted_key_cannot_sign_in(anonymous, api):
    made = api.post("/api/v0/auth/apikeys/", json={"name": "r", "permissions": {"api": {"misc": {}}}})
    key = made.json()["key"]
    r = anonymous.post("/login", {"api_key": key})
    assert r.status_code == 403 and "the console needs a full key" in r.text and "Sign out" not in r.text
