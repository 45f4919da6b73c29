"""Instances through the raw API: renting with the merge rules, bids and preemption, the
lifecycle on the simulated runtime, logs, lists, and who may see what."""

from __future__ import annotations

import json

import httpx
import pytest

from instance_reads import show, wait_status

BODY = {
    "client_id": "me", "image": None, "env": {}, "price": None, "disk": 10, "label": None,
    "extra": None, "onstart": None, "image_login": None, "python_utf8": False, "lang_utf8": False,
    "use_jupyter_lab": False, "jupyter_dir": None, "force": False, "cancel_unavail": False,
    "template_hash_id": None, "user": None,
}


wait_for = wait_status


def offers(client: httpx.Client, **filters) -> list[dict]:
    r = client.post("/api/v0/bundles/", json={**filters, "order": [["id", "asc"]]})
    assert r.status_code == 200, r.text
    return r.json()["offers"]


def offer(client: httpx.Client, gpu: str = "RTX 4090", n: int = 1) -> dict:
    return next(o for o in offers(client) if o["gpu_name"] == gpu and o["num_gpus"] == n)


def rent(client: httpx.Client, offer_id: int, **body) -> httpx.Response:
    return client.put(f"/api/v0/asks/{offer_id}/", json={**BODY, **body})


def rented(client: httpx.Client, offer_id: int, **body) -> int:
    r = rent(client, offer_id, **body)
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True
    return r.json()["new_contract"]


@pytest.fixture
def template(api) -> dict:
    r = api.post("/api/v0/template/", json={
        "name": "vllm", "image": "vllm/vllm-openai", "tag": "v0.6",
        "env": "-e MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Llama-8B -e MAX_TOKENS=4096 -p 8000:8000",
        "onstart": "echo serving $MODEL_ID", "runtype": "ssh", "recommended_disk_space": 30,
        "extra_filters": {"gpu_ram": {"gte": 20000}},
    })
    assert r.status_code == 200, r.text
    return r.json()["template"]


def test_create_from_template_merges_and_returns_every_key(api, fleet, template, stored):
    iid = rented(api, offer(api)["id"], template_hash_id=template["hash_id"],
                 env={"MODEL_ID": "mistralai/Mistral-7B-v0.1", "HF_TOKEN": "hf_xxx"}, disk=20)
    row = wait_for(api, iid, "running")
    assert row["actual_status"] == "running" and row["intended_status"] == "running"
    assert row["image_uuid"] == "vllm/vllm-openai:v0.6"
    assert row["disk_space"] == 20.0
    assert dict(row["extra_env"]) == {
        "MODEL_ID": "mistralai/Mistral-7B-v0.1", "MAX_TOKENS": "4096", "HF_TOKEN": "hf_xxx",
        "-p 8000:8000": "1",
    }
    assert row["onstart"] == "echo serving $MODEL_ID"
    assert row["image_runtype"] == "ssh"
    assert row["template_id"] == template["id"] and row["template_hash_id"] == template["hash_id"]
    assert row["is_bid"] is False and row["machine_id"] == fleet.machine_ids["box-4090"]
    assert isinstance(row["start_date"], float)
    host_port = row["ports"]["8000/tcp"][0]["HostPort"]
    assert row["ports"]["8000/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": host_port}]
    assert 40000 <= int(host_port) < 40020
    assert "22/tcp" not in row["ports"]  # runtype ssh (not direct): nothing published for SSH
    after = stored(api, template["id"])
    assert after["count_created"] == 1 and after["recent_create_date"] >= row["start_date"] - 1


def test_an_old_hash_launches_the_old_version(api, fleet, template):
    r = api.put("/api/v0/template/", json={"hash_id": template["hash_id"], "image": "other/image"})
    assert r.status_code == 200 and r.json()["template"]["hash_id"] != template["hash_id"]
    iid = rented(api, offer(api)["id"], template_hash_id=template["hash_id"])
    assert show(api, iid)["image_uuid"] == "vllm/vllm-openai:v0.6"


def test_anyone_with_the_hash_may_launch_a_private_template(api, bob, fleet, template):
    with bob.http() as b:
        iid = rented(b, offer(b)["id"], template_hash_id=template["hash_id"])
        assert show(b, iid)["template_hash_id"] == template["hash_id"]


def test_offer_that_fails_the_merged_filters_is_refused_unless_forced(api, fleet, template):
    o = offer(api)
    r = rent(api, o["id"], template_hash_id=template["hash_id"],
             extra_filters={"gpu_name": {"eq": "RTX 3090"}})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "offer_filters_unmet" and "gpu_name" in r.json()["msg"]
    assert offers(api)[0]["id"] == o["id"]  # nothing rented
    iid = rented(api, o["id"], template_hash_id=template["hash_id"], force=True,
                 extra_filters={"gpu_name": {"eq": "RTX 3090"}})
    assert show(api, iid)["extra_filters"]["gpu_name"] == {"eq": "RTX 3090"}


def test_dry_run_shows_the_merge_and_rents_nothing(api, fleet, template):
    before = offers(api)
    r = rent(api, offer(api)["id"], template_hash_id=template["hash_id"], dry_run=True,
             env="-e MAX_TOKENS=1 -p 9000:9000", image="nvidia/cuda:12.1-devel-ubuntu22.04")
    assert r.status_code == 200, r.text
    launch = r.json()["launch"]
    assert "new_contract" not in r.json()
    assert launch["image_uuid"] == "nvidia/cuda:12.1-devel-ubuntu22.04"
    assert dict(launch["extra_env"])["MAX_TOKENS"] == "1"
    assert "-p 9000:9000" in dict(launch["extra_env"])
    assert [o["id"] for o in offers(api)] == [o["id"] for o in before]
    assert api.get("/api/v1/instances/").json()["instances"] == []


def test_renting_takes_the_gpus_out_of_the_offers(api, fleet):
    o = offer(api, n=2)
    rented(api, o["id"], image="busybox")
    assert all(x["machine_id"] != o["machine_id"] for x in offers(api))
    r = rent(api, o["id"], image="busybox")
    assert r.status_code == 409 and "no longer available" in r.json()["msg"]
    one = [x for x in offers(api, rented={"eq": False}) if x["gpu_name"] == "RTX 4090"]
    assert one == []


def test_unknown_offer_and_bad_bodies(api, fleet):
    assert rent(api, 999999, image="busybox").status_code == 404
    o = offer(api)
    for body, status in [({"env": "MODEL=x"}, 400), ({"price": 0.01}, 400), ({"disk": 100000}, 400),
                         ({"template_hash_id": "123"}, 400), ({"template_hash_id": "f" * 32}, 404),
                         ({"volume_info": {"create_new": False, "volume_id": 5}}, 400)]:
        r = rent(api, o["id"], image="busybox", **body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["msg"]
    assert offer(api)["id"] == o["id"]


def test_users_see_and_act_on_their_own_instances_only(api, bob, fleet):
    iid = rented(api, offer(api)["id"], image="busybox")
    with bob.http() as b:
        assert b.get(f"/api/v0/instances/{iid}/", params={"owner": "me"}).json()["instances"] is None
        assert b.get("/api/v1/instances/").json()["instances"] == []
        for method, path, body in [
            ("PUT", f"/api/v0/instances/{iid}/", {"state": "stopped"}),
            ("PUT", f"/api/v0/instances/{iid}/", {"label": "mine"}),
            ("PUT", f"/api/v0/instances/reboot/{iid}/", {}),
            ("DELETE", f"/api/v0/instances/{iid}/", {}),
            ("PUT", f"/api/v0/instances/request_logs/{iid}/", {}),
            ("PUT", f"/api/v0/instances/bid_price/{iid}/", {"client_id": "me", "price": 1}),
            ("PUT", f"/api/v0/instances/update_template/{iid}/", {"id": iid, "image": "x"}),
            ("PUT", "/api/v0/instances/", {"state": "stopped", "ids": [iid]}),
            ("DELETE", "/api/v0/instances/", {"instance_ids": [iid]}),
        ]:
            r = b.request(method, path, json=body)
            assert r.status_code == 404, (path, r.text)
    assert show(api, iid)["actual_status"] == "running"


def test_stop_start_reboot_label_destroy(api, fleet):
    iid = rented(api, offer(api)["id"], image="busybox", onstart="echo booted")
    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"}).json()["success"]
    row = show(api, iid)
    assert [row["intended_status"], row["actual_status"], row["cur_state"]] == ["stopped"] * 3
    assert row["ports"] == {}
    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "running"}).json()["success"]
    assert wait_for(api, iid, "running")["intended_status"] == "running"
    assert api.put(f"/api/v0/instances/reboot/{iid}/", json={}).json()["success"]
    assert wait_for(api, iid, "running")["actual_status"] == "running"
    assert api.put(f"/api/v0/instances/{iid}/", json={"label": "my label"}).json()["success"]
    assert show(api, iid)["label"] == "my label"
    assert api.request("DELETE", f"/api/v0/instances/{iid}/", json={}).json()["success"]
    assert api.get(f"/api/v0/instances/{iid}/", params={"owner": "me"}).json()["instances"] is None
    assert any(o["machine_id"] == fleet.machine_ids["box-4090"] and o["num_gpus"] == 2 for o in offers(api))


def test_bulk_start_stop_destroy(api, fleet):
    a = rented(api, offer(api)["id"], image="busybox")
    b = rented(api, offer(api)["id"], image="busybox")
    assert api.put("/api/v0/instances/", json={"state": "stopped", "ids": [a, b]}).json()["success"]
    assert {show(api, i)["actual_status"] for i in (a, b)} == {"stopped"}
    assert api.put("/api/v0/instances/", json={"state": "running", "ids": [a, b]}).json()["success"]
    assert {wait_for(api, i, "running")["actual_status"] for i in (a, b)} == {"running"}
    r = api.request("DELETE", "/api/v0/instances/", json={"instance_ids": [a, b]})
    assert r.json()["success"]
    assert api.get("/api/v1/instances/").json()["instances"] == []
    bad = api.put("/api/v0/instances/", json={"state": "paused", "ids": [a]})
    assert bad.status_code in (400, 404)


def test_logs_follow_the_result_url_flow(api, fleet):
    iid = rented(api, offer(api)["id"], image="busybox", env={"WHO": "world"},
                 onstart="echo hello $WHO\necho second line")
    r = api.put(f"/api/v0/instances/request_logs/{iid}/", json={})
    url = r.json()["result_url"]
    text = httpx.get(url).text  # no Authorization, as the official client fetches it
    assert "hello world" in text and "second line" in text
    tail = httpx.get(api.put(f"/api/v0/instances/request_logs/{iid}/",
                             json={"tail": "1"}).json()["result_url"]).text
    assert tail.count("\n") == 1
    only = httpx.get(api.put(f"/api/v0/instances/request_logs/{iid}/",
                             json={"filter": "hello w"}).json()["result_url"]).text
    assert only.strip() == "hello world"
    daemon = httpx.get(api.put(f"/api/v0/instances/request_logs/{iid}/",
                               json={"daemon_logs": "true"}).json()["result_url"]).text
    assert "created from busybox:latest" in daemon
    assert httpx.get(url.rsplit("/", 1)[0] + "/nope").status_code == 404


def test_list_filters_order_limit_and_paging(api, fleet):
    ids = [rented(api, offer(api)["id"], image="busybox", label=label) for label in ("a", None)]
    ids.append(rented(api, offer(api, "RTX 3090")["id"], image="busybox", label="b"))

    def listing(**q):
        params = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in q.items()}
        r = api.get("/api/v1/instances/", params=params)
        assert r.status_code == 200, r.text
        return r.json()

    everything = listing()
    assert [i["id"] for i in everything["instances"]] == ids and everything["total_instances"] == 3
    assert everything["label_counts"] == {"a": 1, "": 1, "b": 1}
    assert [i["id"] for i in listing(select_filters={"label": {"in": [None, "a"]}})["instances"]] == ids[:2]
    by_gpu = listing(select_filters={"gpu_name": {"in": ["RTX 3090"]}})["instances"]
    assert [i["id"] for i in by_gpu] == [ids[2]]
    desc = listing(order_by=[{"col": "id", "dir": "desc"}])
    assert [i["id"] for i in desc["instances"]] == ids[::-1]
    page = listing(limit=2)
    assert len(page["instances"]) == 2 and page["next_token"]
    rest = listing(limit=2, after_token=page["next_token"])
    assert [i["id"] for i in rest["instances"]] == [ids[2]] and not rest["next_token"]
    cols = listing(select_cols=["actual_status"])["instances"][0]
    assert set(cols) == {"id", "actual_status"}
    bad = api.get("/api/v1/instances/", params={"select_filters": json.dumps({"nope": {"eq": 1}})})
    assert bad.status_code == 400 and "nope" in bad.json()["msg"]
    filters = api.get("/api/v0/instances/filters/").json()["filters"]
    assert {f["gpu_name"] for f in filters} == {"RTX 4090", "RTX 3090"}


def test_update_instance_from_a_template(api, fleet, template):
    iid = rented(api, offer(api)["id"], image="busybox", env={"KEEP": "1"})
    r = api.put(f"/api/v0/instances/update_template/{iid}/",
                json={"id": iid, "template_hash_id": template["hash_id"], "env": {"EXTRA": "2"}})
    assert r.status_code == 200, r.text
    updated = r.json()["updated_instance"]
    assert updated["image_uuid"] == "vllm/vllm-openai:v0.6"
    env = dict(updated["extra_env"])
    assert env["EXTRA"] == "2" and env["MAX_TOKENS"] == "4096" and "KEEP" not in env
    row = wait_for(api, iid, "running")
    assert row["template_hash_id"] == template["hash_id"]
    r = api.put(f"/api/v0/instances/update_template/{iid}/", json={"id": iid, "image": "alpine:3"})
    assert r.json()["updated_instance"]["image_uuid"] == "alpine:3"
    assert dict(r.json()["updated_instance"]["extra_env"])["EXTRA"] == "2"


def test_launch_instance_searches_and_rents_the_first_match(api, fleet):
    body = {"image": "busybox", "disk": 16.0, "env": {"A": "1"}, "label": "l", "extra": None,
            "onstart": None, "image_login": None, "python_utf8": False, "lang_utf8": False,
            "use_jupyter_lab": False, "jupyter_dir": None, "cancel_unavail": False,
            "template_hash_id": None, "runtype": "ssh",
            "q": {"verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True},
                  "rented": {"eq": False}, "num_gpus": {"eq": "1"}, "gpu_name": {"eq": "RTX 3090"},
                  "disk_space": {"gte": "16.0"}, "order": [["score", "desc"]], "type": "on-demand",
                  "limit": 3, "allocated_storage": 16.0}}
    r = api.put("/api/v0/launch_instance/", json=body)
    assert r.status_code == 200, r.text
    row = show(api, r.json()["new_contract"])
    assert row["gpu_name"] == "RTX 3090" and row["label"] == "l" and row["disk_space"] == 16.0
    again = api.put("/api/v0/launch_instance/", json=body)
    assert again.status_code == 404 and "no offer" in again.json()["msg"]
