"""Ids and numbers larger than any stored row can hold are 'not found' or simply match nothing,
on every backend (PostgreSQL's INTEGER columns refuse them outright)."""

from __future__ import annotations

import json

BIG = 10**12


def test_huge_ids_in_paths_are_not_found(api, fleet):
    for method, path, body in [
        ("PUT", f"/api/v0/asks/{BIG}/", {"image": "busybox"}),
        ("GET", f"/api/v0/template/{BIG}/versions/", None),
        ("PUT", f"/api/v0/instances/{BIG}/", {"state": "stopped"}),
        ("DELETE", f"/api/v0/instances/{BIG}/", {}),
        ("PUT", f"/api/v0/instances/request_logs/{BIG}/", {}),
    ]:
        r = api.request(method, path, json=body)
        assert r.status_code == 404, (path, r.text)
    assert api.get(f"/api/v0/instances/{BIG}/", params={"owner": "me"}).json()["instances"] is None
    r = api.request("DELETE", "/api/v0/volumes/", params={"id": BIG}, json={})
    assert r.status_code in (400, 404) and str(BIG) in r.json()["msg"], r.text


def test_huge_numbers_in_filters_match_nothing(api, fleet):
    huge = {"id": {"eq": BIG}, "machine_id": {"in": [BIG, 2**62]}}
    assert api.post("/api/v0/bundles/", json=huge).json()["offers"] == []
    r = api.get("/api/v0/template/", params={"select_filters": json.dumps({"id": {"gt": BIG}})})
    assert r.status_code == 200 and r.json()["templates"] == []
    r = api.get("/api/v1/instances/", params={"select_filters": json.dumps({"id": {"eq": BIG}})})
    assert r.status_code == 200 and r.json()["instances"] == []
    assert api.post("/api/v0/volumes/search/", json={"id": {"eq": BIG}}).json()["offers"] == []


def test_huge_numbers_beside_null_in_an_instance_list_filter_match_nothing(api, fleet):
    """``in``/``notin`` lists holding null (the official CLI's ``--label '' x``) take their own
    way to SQL; a huge number there (or a numeric string, padded as the schema fuzz sent it)
    matches nothing too, instead of PostgreSQL's "integer out of range"."""
    offer = api.post("/api/v0/bundles/", json={"num_gpus": {"eq": 1}}).json()["offers"][0]["id"]
    iid = api.put(f"/api/v0/asks/{offer}/", json={"image": "busybox"}).json()["new_contract"]
    for field, op, values, expected in [
        ("id", "in", [BIG, None], []),
        ("id", "notin", [None, f"\r\f{BIG}\t"], [iid]),
        ("id", "in", [str(BIG), None, iid], [iid]),
        ("template_id", "in", [BIG, None], [iid]),  # (launched from an image: no template)
        ("template_id", "notin", [f" {BIG} ", None], []),
    ]:
        r = api.get("/api/v1/instances/", params={"select_filters": json.dumps(
            {field: {op: values}}), "select_cols": json.dumps(["id"])})
        assert r.status_code == 200, r.text
        assert [row["id"] for row in r.json()["instances"]] == expected, (field, op, values)


def test_huge_ids_on_keys_machines_and_attached_keys_are_not_found(api, fleet):
    """Every route that looks a row up by an id from the path or the body: a number that fits the
    wire (below 2^63) but no INTEGER column is a 404 on both backends, never a 500."""
    listing = {"machine": BIG, "price_gpu": 1.0, "min_chunk": 1}
    for method, path, body in [
        ("DELETE", f"/api/v0/ssh/{BIG}/", None),
        ("PUT", f"/api/v0/ssh/{BIG}/", {"ssh_key": "ssh-ed25519 AAAA"}),
        ("DELETE", f"/api/v0/instances/{BIG}/ssh/{BIG}/", {}),
        ("GET", f"/api/v0/auth/apikeys/{BIG}/", None),
        ("DELETE", f"/api/v0/auth/apikeys/{BIG}/", None),
        ("GET", f"/api/v0/machines/{BIG}/", None),
        ("DELETE", f"/api/v0/machines/{BIG}/asks/", {}),
        ("PUT", f"/api/v0/machines/{BIG}/dnotify/", {"sdate": 2e9, "duration": 2}),
        ("PUT", "/api/v0/machines/create_asks/", listing),
    ]:
        r = api.request(method, path, json=body)
        assert r.status_code in (400, 404), (method, path, r.text)
        assert r.json()["success"] is False and r.json()["msg"], (path, r.text)
    r = api.get("/api/v0/machines/maintenances/", params={"machine_ids": json.dumps([BIG, 2**62])})
    assert r.status_code == 200 and r.json() == [], r.text
