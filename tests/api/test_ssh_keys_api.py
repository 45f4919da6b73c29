"""SSH keys through the raw API (VAST-WIRE §13.1, §13.2): what the official client sends, what
is refused and how, and who sees what."""

from __future__ import annotations

import asyncssh
import httpx
import pytest


def public(comment: str = "me@laptop") -> str:
    return asyncssh.generate_private_key("ssh-ed25519", comment=comment).export_public_key().decode().strip()


def rent(api: httpx.Client) -> int:
    offers = api.post("/api/v0/bundles/", json={"order": [["id", "asc"]]}).json()["offers"]
    r = api.put(f"/api/v0/asks/{offers[0]['id']}/", json={"client_id": "me", "disk": 10, "image": "busybox"})
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


def test_add_list_update_delete(api):
    key = public()
    r = api.post("/api/v0/ssh/", json={"ssh_key": key + "\n"})
    assert r.status_code == 200, r.text
    made = r.json()["key"]
    assert made["public_key"] == key and made["fingerprint"].startswith("SHA256:")
    assert made["fingerprint"] in r.json()["msg"]
    listed = api.get("/api/v0/ssh/").json()["ssh_keys"]
    assert [k["id"] for k in listed] == [made["id"]] and listed[0]["key_type"] == "ssh-ed25519"
    new = public("other@host")
    r = api.put(f"/api/v0/ssh/{made['id']}/", json={"id": made["id"], "ssh_key": new})
    assert r.status_code == 200, r.text
    assert api.get("/api/v0/ssh/").json()["ssh_keys"][0]["public_key"] == new
    r = api.put(f"/api/v0/ssh/{made['id']}/", json={"id": made["id"] + 1, "ssh_key": new})
    assert r.status_code == 400 and "differs" in r.json()["msg"]
    assert api.request("DELETE", f"/api/v0/ssh/{made['id']}/", json={}).status_code == 200
    assert api.get("/api/v0/ssh/").json()["ssh_keys"] == []
    r = api.request("DELETE", f"/api/v0/ssh/{made['id']}/", json={})
    assert r.status_code == 404 and r.json()["error"] == "ssh_key_not_found"


@pytest.mark.parametrize("sent,words", [
    ("key.pub", "looks like a file name"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----\n",
     "PRIVATE key"),
    ("not a key at all", "not an OpenSSH public key"),
    (None, "required"),
])
def test_what_is_not_a_public_key_is_a_400_that_says_what_to_send(api, sent, words):
    r = api.post("/api/v0/ssh/", json={"ssh_key": sent})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["success"] is False and words in body["msg"]
    assert '"$(cat ~/.ssh/id_ed25519.pub)"' in body["msg"]
    assert api.get("/api/v0/ssh/").json()["ssh_keys"] == []


def test_bad_bodies_are_400s(api):
    for body in ({}, {"ssh_key": 5}, {"ssh_key": public(), "extra": 1}, {"ssh_key": "x" * 20000}):
        r = api.post("/api/v0/ssh/", json=body)
        assert r.status_code == 400, (body, r.text)
    r = api.post("/api/v0/ssh/", content=b"not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_duplicates_are_409_and_others_see_nothing(api, bob):
    key = public()
    assert api.post("/api/v0/ssh/", json={"ssh_key": key}).status_code == 200
    r = api.post("/api/v0/ssh/", json={"ssh_key": key.rsplit(" ", 1)[0] + " renamed"})
    assert r.status_code == 409 and r.json()["error"] == "ssh_key_exists"
    mine = api.get("/api/v0/ssh/").json()["ssh_keys"][0]
    with bob.http() as b:
        assert b.get("/api/v0/ssh/").json()["ssh_keys"] == []
        assert b.request("DELETE", f"/api/v0/ssh/{mine['id']}/", json={}).status_code == 404
        assert b.put(f"/api/v0/ssh/{mine['id']}/", json={"ssh_key": public()}).status_code == 404
        assert b.post("/api/v0/ssh/", json={"ssh_key": key}).status_code == 200  # his own copy


def test_attach_and_detach(api, bob, fleet):
    iid = rent(api)
    key = public("guest@x")
    r = api.post(f"/api/v0/instances/{iid}/ssh/", json={"ssh_key": key})
    assert r.status_code == 200, r.text
    attached = r.json()["key"]
    assert attached["instance_id"] == iid and f"detach ssh {iid} {attached['id']}" in r.json()["msg"]
    assert api.post(f"/api/v0/instances/{iid}/ssh/", json={"ssh_key": key}).status_code == 409
    with bob.http() as b:
        assert b.post(f"/api/v0/instances/{iid}/ssh/", json={"ssh_key": public()}).status_code == 404
        r = b.request("DELETE", f"/api/v0/instances/{iid}/ssh/{attached['id']}/", json={})
        assert r.status_code == 404
    r = api.request("DELETE", f"/api/v0/instances/{iid}/ssh/abc/", json={})
    assert r.status_code == 400 and "numeric id" in r.json()["msg"]
    assert api.request("DELETE", f"/api/v0/instances/{iid}/ssh/{attached['id']}/", json={}).status_code == 200
    r = api.request("DELETE", f"/api/v0/instances/{iid}/ssh/{attached['id']}/", json={})
    assert r.status_code == 404 and "delete ssh-key" in r.json()["msg"]
    assert api.post("/api/v0/instances/999999/ssh/", json={"ssh_key": key}).status_code == 404


def test_keys_need_a_key(live_server):
    with httpx.Client(base_url=live_server) as anon:
        assert anon.get("/api/v0/ssh/").status_code == 401
        assert anon.post("/api/v0/ssh/", json={"ssh_key": public()}).status_code == 401
