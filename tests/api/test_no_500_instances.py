"""Bad input never gets a 500 on the offer and instance endpoints: random JSON gets a proper 4xx
with a msg (or succeeds), and a failed rental rents nothing."""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_no_500 import values

KEYS = [
    "client_id", "image", "env", "price", "disk", "label", "extra", "onstart", "image_login",
    "python_utf8", "lang_utf8", "use_jupyter_lab", "jupyter_dir", "force", "cancel_unavail",
    "template_hash_id", "user", "runtype", "args", "volume_info", "template_id", "extra_filters",
    "dry_run", "state", "ids", "instance_ids", "tail", "filter", "daemon_logs", "q", "id",
]
bodies = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)
FAST = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
OK = {200, 400, 404, 409}


def check(r) -> None:
    assert r.status_code in OK, (r.status_code, r.text)
    assert r.headers["content-type"].startswith(("application/json", "text/plain"))
    if r.status_code != 200:
        body = r.json()
        assert body["success"] is False and body["msg"] and body["error"]


def instance_count(api) -> int:
    return api.get("/api/v1/instances/").json()["total_instances"]


@FAST
@given(body=bodies, ref=st.one_of(st.just("first"), st.integers(-5, 10**12).map(str),
                                  st.text("abc-_.é²x ", max_size=5)))
def test_renting_never_500_and_failures_rent_nothing(api, fleet, body, ref):
    offers = api.post("/api/v0/bundles/", json={}).json()["offers"]
    target = offers[0]["id"] if ref == "first" and offers else ref
    before = instance_count(api)
    r = api.put(f"/api/v0/asks/{quote(str(target))}/", json={"image": "busybox", **body})
    check(r)
    if r.status_code != 200 or r.json().get("dry_run"):
        assert instance_count(api) == before


@FAST
@given(body=bodies, pick=st.integers(0, 3))
def test_instance_actions_never_500(api, fleet, body, pick):
    offers = api.post("/api/v0/bundles/", json={}).json()["offers"]
    if offers and instance_count(api) == 0:
        api.put(f"/api/v0/asks/{offers[0]['id']}/", json={"image": "busybox"})
    rows = api.get("/api/v1/instances/").json()["instances"]
    iid = rows[0]["id"] if rows and pick else "nope"
    for method, path in [
        ("PUT", f"/api/v0/instances/{iid}/"),
        ("PUT", "/api/v0/instances/"),
        ("PUT", f"/api/v0/instances/bid_price/{iid}/"),
        ("PUT", f"/api/v0/instances/request_logs/{iid}/"),
        ("PUT", f"/api/v0/instances/update_template/{iid}/"),
        ("PUT", "/api/v0/launch_instance/"),
        ("POST", "/api/v0/asks/bulk/"),
    ]:
        check(api.request(method, path, json=body))


@FAST
@given(query=st.dictionaries(st.sampled_from(["id", "label", "actual_status", "gpu_name", "start_date",
                                             "is_bid", "dph_total", "x"]),
                             st.one_of(values, st.dictionaries(st.sampled_from(["eq", "in", "gt", "zz"]),
                                                               values, max_size=2)), max_size=3),
       order=values, limit=values, token=st.one_of(st.none(), st.text(max_size=4)))
def test_instance_lists_never_500(api, query, order, limit, token):
    params = {"select_filters": json.dumps(query), "order_by": json.dumps(order), "limit": json.dumps(limit)}
    if token is not None:
        params["after_token"] = token
    check(api.get("/api/v1/instances/", params=params))


@FAST
@given(body=st.dictionaries(st.sampled_from(["num_gpus", "gpu_ram", "dph", "order", "type", "limit",
                                            "allocated_storage", "gpu_name", "score", "x"]),
                            st.one_of(values, st.dictionaries(st.sampled_from(["eq", "in", "gte", "zz"]),
                                                              values, max_size=2)), max_size=4))
def test_offer_searches_never_500(api, fleet, body):
    check(api.post("/api/v0/bundles/", json=body))
    check(api.put("/api/v0/search/asks/", json={"q": body}))
    check(api.post("/api/v0/volumes/search/", json=body))
