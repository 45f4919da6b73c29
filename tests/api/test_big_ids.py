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
