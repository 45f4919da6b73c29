"""API keys over HTTP (VAST-WIRE §15): many per user, shown once, stored hashed, deleted keys
refused at once; permission documents enforced route by route (a table-driven test over every
entry of the permission table), constraints, and no key broader than its creator."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import text

from gpuyard.api.app import create_app
from gpuyard.services.accounts import permissions as perms
from gpuyard.services.accounts.users import hash_key
from gpuyard.settings import Settings
from gpuyard.store.db import transaction
from gpuyard.store.models import ApiKey
from serving import serving

NOWHERE = 999_999
HASH = "0" * 32

#: For every route of the permission table: a request whose body and query pass validation (so
#: the permission check is reached) and which changes nothing that matters when it is let in.
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL7qTofUYt/d2n4WBlPwfP2rJrKiC8Vk6Suj+8immJoY perm@test"
SAMPLES: dict[str, tuple[str, str, dict | None, dict | None]] = {
    "api.billing.invoices": ("GET", "/api/v0/users/me/invoices", {"owner": "me"}, None),
    "api.billing.invoices_v1": ("GET", "/api/v1/invoices/", None, None),
    "api.billing.charges": ("GET", "/api/v0/charges/", None, None),
    "api.billing.contracts": ("POST", "/api/v0/contracts/fetch/", None, {"label": "x", "contract_ids": []}),
    "api.billing.usage": ("GET", "/api/v0/usage/", None, None),
    "api.machine.list": ("GET", "/api/v0/machines", {"owner": "me"}, None),
    "api.machine.maintenances": ("GET", "/api/v0/machines/maintenances", {"owner": "me"}, None),
    "api.machine.show": ("GET", f"/api/v0/machines/{NOWHERE}", {"owner": "me"}, None),
    "api.machine.list_asks": ("PUT", "/api/v0/machines/create_asks/", None, {"machine": NOWHERE}),
    "api.machine.unlist": ("DELETE", f"/api/v0/machines/{NOWHERE}/asks/", None, {}),
    "api.machine.schedule_maint": ("PUT", f"/api/v0/machines/{NOWHERE}/dnotify/", None,
                                   {"client_id": "me", "sdate": 4000000000, "duration": 1}),
    "api.machine.cancel_maint": ("PUT", f"/api/v0/machines/{NOWHERE}/cancel_maint/", None,
                                 {"client_id": "me", "machine_id": NOWHERE}),
    "api.instance.list": ("GET", "/api/v1/instances/", None, None),
    "api.instance.list_all": ("GET", "/api/v0/instances/", None, None),
    "api.instance.filters": ("GET", "/api/v0/instances/filters/", None, None),
    "api.instance.show": ("GET", f"/api/v0/instances/{NOWHERE}/", None, None),
    "api.instance.request_logs": ("PUT", f"/api/v0/instances/request_logs/{NOWHERE}/", None, {}),
    "api.volume.list": ("GET", "/api/v0/volumes", None, None),
    "api.instance.create": ("PUT", f"/api/v0/asks/{NOWHERE}/", None, {"image": "busybox"}),
    "api.instance.create_many": ("POST", "/api/v0/asks/bulk/", None, {"ids": [NOWHERE], "image": "busybox"}),
    "api.instance.launch": ("PUT", "/api/v0/launch_instance/", None,
                            {"image": "busybox", "q": {"num_gpus": {"eq": 64}}}),
    "api.instance.manage": ("PUT", f"/api/v0/instances/{NOWHERE}/", None, {"state": "stopped"}),
    "api.instance.manage_many": ("PUT", "/api/v0/instances/", None, {"state": "stopped", "ids": [NOWHERE]}),
    "api.instance.reboot": ("PUT", f"/api/v0/instances/reboot/{NOWHERE}/", None, {}),
    "api.instance.recycle": ("PUT", f"/api/v0/instances/recycle/{NOWHERE}/", None, {}),
    "api.instance.update": ("PUT", f"/api/v0/instances/update_template/{NOWHERE}/", None, {}),
    "api.instance.change_bid": ("PUT", f"/api/v0/instances/bid_price/{NOWHERE}/", None, {"price": 0.5}),
    "api.instance.destroy": ("DELETE", f"/api/v0/instances/{NOWHERE}/", None, {}),
    "api.instance.destroy_many": ("DELETE", "/api/v0/instances/", None, {"instance_ids": [NOWHERE]}),
    "api.instance.ssh_attach": ("POST", f"/api/v0/instances/{NOWHERE}/ssh/", None, {"ssh_key": SSH_KEY}),
    "api.instance.ssh_detach": ("DELETE", f"/api/v0/instances/{NOWHERE}/ssh/{NOWHERE}/", None, {}),
    "api.instance.execute": ("PUT", f"/api/v0/instances/command/{NOWHERE}/", None, {"command": "ls /"}),
    "api.instance.copy": ("PUT", "/api/v0/commands/copy_direct/", None,
                          {"client_id": "me", "src_id": "1", "dst_id": "2", "src_path": "/",
                           "dst_path": "/"}),
    "api.instance.copy_rsync": ("PUT", "/api/v0/commands/rsync/", None,
                                {"client_id": "me", "src_id": None, "dst_id": "2", "src_path": "d",
                                 "dst_path": "/"}),
    "api.volume.create": ("PUT", "/api/v0/volumes/", None, {"id": NOWHERE, "size": 10}),
    "api.volume.delete": ("DELETE", "/api/v0/volumes/", {"id": NOWHERE}, {}),
    "api.user.show": ("GET", "/api/v0/users/current", None, None),
    "api.template.search": ("GET", "/api/v0/template/", None, None),
    "api.template.versions": ("GET", f"/api/v0/template/{NOWHERE}/versions/", None, None),
    "api.template.show": ("GET", f"/api/v0/template/hash/{HASH}/", None, None),
    "api.secret.list": ("GET", "/api/v0/secrets/", None, None),
    "api.ssh_key.list": ("GET", "/api/v0/ssh/", None, None),
    "api.apikey.list": ("GET", "/api/v0/auth/apikeys/", None, None),
    "api.apikey.show": ("GET", f"/api/v0/auth/apikeys/{NOWHERE}/", None, None),
    "api.template.create": ("POST", "/api/v0/template/", None, {"image": "busybox", "name": "perm"}),
    "api.template.edit": ("PUT", "/api/v0/template/", None, {"hash_id": HASH, "name": "x"}),
    "api.template.update": ("PUT", "/api/v1/template/", None, {"id": NOWHERE, "hash_id": HASH}),
    "api.template.delete": ("DELETE", "/api/v0/template/", None, {"template_id": NOWHERE}),
    "api.secret.create": ("POST", "/api/v0/secrets/", None, {"key": "PERM_TEST", "value": "v"}),
    "api.secret.update": ("PUT", "/api/v0/secrets/", None, {"key": "NOT_THERE", "value": "v"}),
    "api.secret.delete": ("DELETE", "/api/v0/secrets/", None, {"key": "NOT_THERE"}),
    "api.ssh_key.create": ("POST", "/api/v0/ssh/", None, {"ssh_key": SSH_KEY}),
    "api.ssh_key.update": ("PUT", f"/api/v0/ssh/{NOWHERE}/", None, {"id": NOWHERE, "ssh_key": SSH_KEY}),
    "api.ssh_key.delete": ("DELETE", f"/api/v0/ssh/{NOWHERE}/", None, {}),
    "api.apikey.create": ("POST", "/api/v0/auth/apikeys/", None, {"name": "child"}),  # permissions added
    "api.apikey.delete": ("DELETE", f"/api/v0/auth/apikeys/{NOWHERE}/", None, {}),
    "api.apikey.reset": ("PUT", "/api/v0/commands/reset_apikey/", None, {"client_id": "me"}),
    "api.offer.search": ("POST", "/api/v0/bundles/", None, {}),
    "api.offer.search_asks": ("PUT", "/api/v0/search/asks/", None, {}),
    "api.volume.search_offers": ("POST", "/api/v0/volumes/search/", None, {}),
}


def create_key(api: httpx.Client, permissions: dict | None = None, name: str = "k", **extra) -> dict:
    body = {"name": name, **extra}
    if permissions is not None:
        body["permissions"] = permissions
    r = api.post("/api/v0/auth/apikeys/", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def client(account, key: str) -> httpx.Client:
    return httpx.Client(base_url=account.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def send(c: httpx.Client, name: str, category: str | None = None) -> httpx.Response:
    method, path, query, body = SAMPLES[name]
    if name == "api.apikey.create" and category is not None:
        body = {**body, "permissions": {"api": {category: {}}}}
    return c.request(method, path, params=query, json=body)


def test_samples_cover_the_whole_table():
    assert set(SAMPLES) == set(perms.BY_NAME)


def test_create_list_show_delete_and_the_key_is_shown_once(app, alice, api):
    made = create_key(api, {"api": {"misc": {}, "user_read": {}}}, name="ci", key_params='{"instance_id": 5}')
    assert made["success"] is True and len(made["key"]) == 64 and made["name"] == "ci"
    assert made["permissions"] == {"api": {"misc": {}, "user_read": {}}}
    assert made["summary"] == "user_read; misc" and made["key_params"] == '{"instance_id": 5}'
    with transaction(app.state.sessions, write=False) as session:  # only the digest is kept
        stored = session.get(ApiKey, made["id"])
        assert stored.key_hash == hash_key(made["key"])
    with app.state.engine.connect() as conn:
        dump = " ".join(str(row) for row in conn.execute(text("SELECT * FROM api_keys")))
    assert made["key"] not in dump

    listed = api.get("/api/v0/auth/apikeys/").json()["apikeys"]
    assert [k["id"] for k in listed] == sorted(k["id"] for k in listed) and len(listed) == 2
    mine, ci = listed
    assert mine["current"] is True and mine["permissions"] is None and mine["summary"] == "full access"
    assert ci == {"id": made["id"], "name": "ci", "created_at": made["created_at"], "last_used": None,
                  "permissions": made["permissions"], "summary": "user_read; misc",
                  "key_params": '{"instance_id": 5}', "revoked_at": None, "current": False}
    assert made["key"] not in api.get("/api/v0/auth/apikeys/").text

    with client(alice, made["key"]) as ci_client:
        shown = ci_client.get(f"/api/v0/auth/apikeys/{made['id']}/").json()
        assert shown["apikey"]["id"] == made["id"] and shown["apikey"]["current"] is True
        assert ci_client.get("/api/v0/users/current").status_code == 200
        r = api.request("DELETE", f"/api/v0/auth/apikeys/{made['id']}/", json={})
        assert r.status_code == 200 and "refused from now on" in r.json()["msg"]
        r = ci_client.get("/api/v0/users/current")  # at once
        assert r.status_code == 401 and r.json()["error"] == "invalid_api_key"
    r = api.get(f"/api/v0/auth/apikeys/{made['id']}/")
    assert r.status_code == 404 and "not found among your keys" in r.json()["msg"]


def test_a_deleted_key_is_refused_by_every_server_process(app, alice, api, db_url, data_dir):
    made = create_key(api, {"api": {"user_read": {}}})
    other = create_app(Settings.build(db_url=db_url, data_dir=data_dir, sim_boot_seconds=0))
    try:
        with serving(other) as url, httpx.Client(base_url=url, headers={
                "Authorization": f"Bearer {made['key']}"}, timeout=30) as elsewhere:
            assert elsewhere.get("/api/v0/users/current").status_code == 200
            assert api.request("DELETE", f"/api/v0/auth/apikeys/{made['id']}/", json={}).status_code == 200
            assert elsewhere.get("/api/v0/users/current").status_code == 401
    finally:
        other.state.engine.dispose()


def test_other_users_keys_are_not_found(alice, bob, api):
    with bob.http() as bob_api:
        bob_key = bob_api.get("/api/v0/auth/apikeys/").json()["apikeys"][0]["id"]
        assert len(bob_api.get("/api/v0/auth/apikeys/").json()["apikeys"]) == 1
    for method in ("GET", "DELETE"):
        r = api.request(method, f"/api/v0/auth/apikeys/{bob_key}/", json={} if method == "DELETE" else None)
        assert r.status_code == 404
    assert len(api.get("/api/v0/auth/apikeys/").json()["apikeys"]) == 1


def test_reset_replaces_the_calling_key(alice, api):
    made = create_key(api, {"api": {"user_read": {}, "user_write": {}}}, name="rotating")
    with client(alice, made["key"]) as c:
        r = c.put("/api/v0/commands/reset_apikey/", json={"client_id": "me"})
        assert r.status_code == 200
        answer = r.json()
        assert answer["success"] is True and len(answer["new_api_key"]) == 64 and answer["msg"]
        assert c.get("/api/v0/users/current").status_code == 401  # the old text
    with client(alice, answer["new_api_key"]) as c:
        row = c.get(f"/api/v0/auth/apikeys/{made['id']}/").json()["apikey"]
    assert row["name"] == "rotating" and row["permissions"] == made["permissions"]  # same key, new text
    assert api.get("/api/v0/users/current").status_code == 200  # other keys unaffected


def test_last_used_is_written_off_the_request_path_at_most_once_a_minute(app, alice, api):
    usage = app.state.key_usage
    usage._noted.clear()  # ids of earlier tests' keys come back once the tables are emptied
    made = create_key(api, {"api": {"user_read": {}}})
    key_id = made["id"]

    def stored() -> float | None:
        usage.flush()
        with transaction(app.state.sessions, write=False) as session:
            return session.get(ApiKey, key_id).last_used_at

    def set_stored(value: float) -> None:
        with transaction(app.state.sessions) as session:
            session.get(ApiKey, key_id).last_used_at = value

    assert stored() is None
    with client(alice, made["key"]) as c:
        before = time.time()
        assert c.get("/api/v0/users/current").status_code == 200
        first = stored()
        assert first is not None and before - 1 <= first <= time.time()
        for _ in range(5):
            c.get("/api/v0/users/current")
        assert stored() == first  # noted once a minute, not per request
        set_stored(time.time() - 3600)  # an hour ago, yet this process wrote it just now
        c.get("/api/v0/users/current")
        assert stored() < time.time() - 3500
        usage._noted.clear()  # as in another process: the stored time decides
        set_stored(time.time() - 30)
        c.get("/api/v0/users/current")
        assert time.time() - 31 < stored() < time.time() - 29
        set_stored(time.time() - 120)
        c.get("/api/v0/users/current")
        assert stored() > time.time() - 5
    row = next(k for k in api.get("/api/v0/auth/apikeys/").json()["apikeys"] if k["id"] == key_id)
    assert row["last_used"] == stored()


@pytest.mark.parametrize("category", list(perms.CATEGORIES))
def test_a_key_with_one_category_calls_its_routes_and_no_other(alice, api, fleet, category):
    key = create_key(api, {"api": {category: {}}}, name=category)["key"]
    mine = [r for r in perms.RULES if r.category == category]
    rules = sorted(perms.RULES, key=lambda r: r.name == "api.apikey.reset")  # reset last: it changes the key
    with client(alice, key) as c:
        for rule in rules:
            r = send(c, rule.name, category)
            body = r.json()
            body = body if isinstance(body, dict) else {"answer": body}  # show maints: a bare list
            if rule.category == category:
                assert body.get("error") != "permission_denied", (rule.name, r.status_code, body)
                assert r.status_code < 500, (rule.name, body)
            else:
                assert r.status_code == 403 and body["error"] == "permission_denied", (rule.name, body)
                assert rule.name in body["msg"] and f"category {rule.category}" in body["msg"]
                assert f"lacks the permission {rule.category}" in body["msg"]
    assert len(mine) == len({r.name for r in mine})


def test_a_full_key_calls_every_route(alice, api, fleet):
    rules = sorted(perms.RULES, key=lambda r: r.name == "api.apikey.reset")
    for rule in rules:
        r = send(api, rule.name)
        assert r.status_code < 500 and "permission_denied" not in r.text, (rule.name, r.text)


def rent(api: httpx.Client, **body) -> int:
    offers = api.post("/api/v0/bundles/", json={"order": [["id", "asc"]]}).json()["offers"]
    r = api.put(f"/api/v0/asks/{offers[0]['id']}/", json={"client_id": "me", "image": "busybox", "disk": 10,
                                                          **body})
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


def test_a_constraint_limits_a_key_to_one_instance(alice, api, fleet):
    mine, other = rent(api), rent(api)
    made = create_key(api, {"api": {"misc": {}, "instance_read": {
        "api.instance.request_logs": {"constraints": {"id": {"eq": mine}}},
        "api.instance.show": {"constraints": {"id": {"in": [mine]}}}}}})
    with client(alice, made["key"]) as c:
        assert c.put(f"/api/v0/instances/request_logs/{mine}/", json={}).status_code == 200
        assert c.get(f"/api/v0/instances/{mine}/", params={"owner": "me"}).json()["instances"]["id"] == mine
        r = c.put(f"/api/v0/instances/request_logs/{other}/", json={})
        assert r.status_code == 403
        assert f"only with id eq {mine}, and the call has id {other}" in r.json()["msg"]
        assert c.get(f"/api/v0/instances/{other}/").status_code == 403
        r = c.get("/api/v1/instances/")  # the list is not granted
        assert r.status_code == 403
        assert "grants only api.instance.request_logs, api.instance.show" in r.json()["msg"]
        assert c.post("/api/v0/bundles/", json={}).status_code == 200


def test_constraints_on_body_values_and_bulk_lists(alice, api, fleet):
    first, second = rent(api), rent(api)
    made = create_key(api, {"api": {"misc": {}, "instance_write": {
        "api.instance.create": {"constraints": {"price": {"lte": 0.5}}},
        "api.instance.destroy_many": {"constraints": {"id": {"in": [first]}}},
        "api.instance.manage": {"constraints": {"state": {"eq": "stopped"}}}}}})
    offers = api.post("/api/v0/bundles/", json={"type": "bid", "order": [["id", "asc"]]}).json()["offers"]
    free = offers[-1]["id"]
    with client(alice, made["key"]) as c:
        r = c.put(f"/api/v0/asks/{free}/", json={"image": "busybox", "disk": 10})  # on-demand: no price
        assert r.status_code == 403 and "the call gives none" in r.json()["msg"]
        r = c.put(f"/api/v0/asks/{free}/", json={"image": "busybox", "disk": 10, "price": "0.9"})
        assert r.status_code == 403 and "price lte 0.5, and the call has price '0.9'" in r.json()["msg"]
        r = c.put(f"/api/v0/asks/{free}/", json={"image": "busybox", "disk": 10, "price": 0.3})
        assert r.status_code == 200, r.text
        assert c.put(f"/api/v0/instances/{first}/", json={"state": "running"}).status_code == 403
        assert c.put(f"/api/v0/instances/{first}/", json={"label": "x"}).status_code == 403  # no state
        assert c.put(f"/api/v0/instances/{first}/", json={"state": "stopped"}).status_code == 200
        r = c.request("DELETE", "/api/v0/instances/", json={"instance_ids": [first, second]})
        assert r.status_code == 403
        assert c.request("DELETE", "/api/v0/instances/", json={"instance_ids": [first]}).status_code == 200


def test_no_key_broader_than_its_creator(alice, api):
    made = create_key(api, {"api": {"user_read": {}, "user_write": {}, "instance_read": {
        "api.instance.show": {"constraints": {"id": {"in": [5, 6]}}}}}})
    with client(alice, made["key"]) as c:
        narrower = {"api": {"instance_read": {"api.instance.show": {"constraints": {"id": {"eq": 5}}}}}}
        assert c.post("/api/v0/auth/apikeys/", json={"name": "n", "permissions": narrower}).status_code == 200
        for broader, added in (
            (None, "full access"),
            ({"api": {"misc": {}}}, "misc"),
            ({"api": {"instance_read": {}}}, "all of instance_read"),
            ({"api": {"instance_read": {"api.instance.show": {}}}},
             "api.instance.show without the constraint id in [5, 6]"),
        ):
            r = c.post("/api/v0/auth/apikeys/", json={"name": "b", "permissions": broader})
            assert r.status_code == 403, r.text
            assert r.json()["error"] == "permission_denied" and added in r.json()["msg"]
            assert "cannot create a key broader than itself" in r.json()["msg"]
        # nor delete one that can do more than it can (alice's full key)
        full = next(k for k in c.get("/api/v0/auth/apikeys/").json()["apikeys"] if k["permissions"] is None)
        r = c.request("DELETE", f"/api/v0/auth/apikeys/{full['id']}/", json={})
        assert r.status_code == 403 and "can do more than it can" in r.json()["msg"]


def test_the_last_full_key_cannot_be_deleted(alice, api):
    full = api.get("/api/v0/auth/apikeys/").json()["apikeys"][0]
    r = api.request("DELETE", f"/api/v0/auth/apikeys/{full['id']}/", json={})
    assert r.status_code == 409 and r.json()["error"] == "last_full_key"
    second = create_key(api, None, name="spare")
    assert second["permissions"] is None and second["summary"] == "full access"
    r = api.request("DELETE", f"/api/v0/auth/apikeys/{full['id']}/", json={})  # its own key: allowed now
    assert r.status_code == 200 and "the key this request came with" in r.json()["msg"]
    assert api.get("/api/v0/users/current").status_code == 401


@pytest.mark.parametrize(("body", "words"), [
    ({"name": "x", "permissions": {"api": {"nope": {}}}}, "unknown category nope"),
    ({"name": "x", "permissions": "misc"}, "the document must be a JSON object"),
    ({"name": "x", "permission": {}}, "unknown create-api-key key(s): permission"),
    ({"name": "x" * 201}, "name is 201 characters long; the limit is 200"),
    ({"name": "x", "key_params": "p" * 5000}, "key_params is 5002 bytes as JSON; the limit is 4096"),
])
def test_bad_create_bodies_are_400s_that_say_why(api, body, words):
    r = api.post("/api/v0/auth/apikeys/", json=body)
    assert r.status_code == 400 and words in r.json()["msg"], r.text
