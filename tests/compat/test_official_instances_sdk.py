"""The official ``vastai`` 1.9.1 SDK (``from vastai import VastAI``), unchanged, renting and running
instances and volumes on a live gpuyard server (VAST-WIRE §4, §6, §7, §10). HOME and the XDG dirs
point into ``tmp_path`` so no real key file is read; outcomes are read back through the raw API."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from vastai import VastAI

from instance_reads import show, wait_status

TEMPLATE = {
    "name": "vllm",
    "image": "vllm/vllm-openai",
    "tag": "v0.6",
    "env": "-e MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Llama-8B -e MAX_TOKENS=4096 -p 8000:8000",
    "onstart": "echo serving $MODEL_ID",
    "runtype": "ssh",
    "recommended_disk_space": 30,
}


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live_server: str) -> None:
    home = tmp_path / "home"
    for var, sub in (("HOME", ""), ("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache"),
                     ("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "data")):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("VAST_URL", live_server)
    monkeypatch.delenv("VAST_API_KEY", raising=False)


@pytest.fixture
def sdk(alice) -> VastAI:
    return VastAI(api_key=alice.key, server_url=alice.url)


def http_error(call) -> tuple[int, str]:
    with pytest.raises(requests.HTTPError) as info:
        call()
    response = info.value.response
    return response.status_code, response.json()["msg"]


settle = wait_status


def pick(rows: list[dict], gpu: str = "RTX 4090", n: int = 1) -> dict:
    return next(o for o in rows if o["gpu_name"] == gpu and o["num_gpus"] == n)


def created(body: dict) -> int:
    assert body["success"] is True, body
    return body["new_contract"]


def test_search_offers_returns_a_list(sdk, fleet):
    rows = sdk.search_offers()
    assert isinstance(rows, list)
    assert sorted((o["gpu_name"], o["num_gpus"]) for o in rows) == [
        ("RTX 3090", 1), ("RTX 4090", 1), ("RTX 4090", 2)
    ]
    assert all(o["datacenter"] is False for o in rows)  # added by the SDK from hosting_type
    assert [o["score"] for o in rows] == sorted((o["score"] for o in rows), reverse=True)

    cheap = sdk.search_offers("gpu_ram>=20 dph<0.3", order="dph_total")
    assert [(o["gpu_name"], o["dph_total"] < 0.3) for o in cheap] == [("RTX 3090", True)]
    two = sdk.search_offers({"num_gpus": {"eq": 2}}, type="bid")
    assert [(o["gpu_name"], o["min_bid"]) for o in two] == [("RTX 4090", 0.1)]
    assert sdk.search_offers("gpu_name=H100") == []


def test_create_from_a_template_with_env_and_a_new_volume(sdk, api, fleet, stored):
    t = api.post("/api/v0/template/", json=TEMPLATE).json()["template"]
    o = pick(sdk.search_offers("gpu_name=RTX_4090 num_gpus=1"))
    [vask] = sdk.search_volumes(f"machine_id={o['machine_id']}")
    assert vask["machine_id"] == o["machine_id"]

    iid = created(sdk.create_instance(
        o["id"], template_hash=t["hash_id"], disk=24, label="llm",
        env={"MODEL_ID": "mistralai/Mistral-7B-v0.1", "HF_TOKEN": "hf_xxx"},
        create_volume=vask["id"], volume_size=30, volume_label="models", mount_path="/root/models",
    ))
    row = settle(api, iid, "running")
    merged = {
        "MODEL_ID": "mistralai/Mistral-7B-v0.1", "MAX_TOKENS": "4096", "HF_TOKEN": "hf_xxx",
        "-p 8000:8000": "1",
    }
    assert dict(row["extra_env"]) == merged
    # no runtype on the wire (the SDK leaves it out): the template's runtype applies
    assert row["image_uuid"] == "vllm/vllm-openai:v0.6" and row["image_runtype"] == "ssh"
    assert row["onstart"] == "echo serving $MODEL_ID" and row["disk_space"] == 24.0
    assert row["is_bid"] is False and row["template_id"] == t["id"]
    assert stored(api, t["id"])["count_created"] == 1

    [vol] = sdk.show_volumes()
    assert (vol["label"], vol["disk_space"], vol["machine_id"]) == ("models", 30, o["machine_id"])
    assert vol["status"] == "in_use" and vol["instances"] == [iid] and vol["duration"] >= 0

    [listed] = sdk.show_instances()
    assert listed["id"] == iid and listed["label"] == "llm"
    assert listed["extra_env"] == merged  # pairs on the wire, a dict after the SDK
    assert isinstance(listed["start_date"], float) and listed["duration"] >= 0
    assert [(v["id"], v["mount_path"], v["total_space"]) for v in listed["volume_info"]] == [
        (vol["id"], "/root/models", 30)
    ]

    one = sdk.show_instance(iid)
    assert one["id"] == iid and one["extra_env"] == merged
    assert one["ports"]["8000/tcp"][0]["HostIp"] == "0.0.0.0"
    # no direct address (nothing runs an SSH server in a simulated instance): the proxy one, if any
    assert "22/tcp" not in one["ports"]
    assert sdk.ssh_url(iid) == (f"ssh://root@{one['ssh_host']}:{one['ssh_port']}" if one["ssh_port"] else "")

    text = sdk.logs(iid)
    assert isinstance(text, str) and "serving mistralai/Mistral-7B-v0.1" in text
    assert "mounting volume" in text and "/root/models" in text
    assert sdk.logs(iid, filter="serving mistral").strip() == "serving mistralai/Mistral-7B-v0.1"


def test_label_stop_start_reboot_destroy(sdk, api, fleet):
    o = pick(sdk.search_offers("num_gpus=1 gpu_name=RTX_3090"), "RTX 3090")
    iid = created(sdk.create_instance(o["id"], image="busybox", onstart_cmd="echo hi", ssh=True))
    assert settle(api, iid, "running")["image_runtype"] == "ssh_proxy"

    assert sdk.label_instance(iid, "my box")["success"] is True
    assert show(api, iid)["label"] == "my box"

    assert sdk.stop_instance(iid)["success"] is True
    row = settle(api, iid, "stopped")
    assert row["intended_status"] == "stopped"
    assert sdk.show_instance(iid)["actual_status"] == "stopped"

    assert sdk.start_instance(iid)["success"] is True
    assert settle(api, iid, "running")["intended_status"] == "running"

    assert sdk.reboot_instance(iid)["success"] is True
    settle(api, iid, "running")
    daemon = sdk.logs(iid, daemon_logs=True)
    assert "running → stopped" in daemon and "stopped → running" in daemon and "rebooting" in daemon
    assert sdk.logs(iid, tail="1").count("\n") == 1

    assert sdk.destroy_instance(iid)["success"] is True
    assert sdk.show_instance(iid) is None
    assert sdk.show_instances() == []
    # the GPU is on offer again; acting on the gone instance is a 404 with a msg
    assert pick(sdk.search_offers("gpu_name=RTX_3090"), "RTX 3090")["id"] == o["id"]
    status, msg = http_error(lambda: sdk.stop_instance(iid))
    assert status == 404 and str(iid) in msg


def test_bid_with_price_and_change_bid(sdk, api, bob, fleet):
    o = pick(sdk.search_offers("gpu_name=RTX_4090 num_gpus=1", type="bid"))
    assert o["min_bid"] == 0.05
    bid = created(sdk.create_instance(o["id"], image="busybox", price=0.1))
    row = settle(api, bid, "running")
    assert row["is_bid"] is True and row["bid_price"] == 0.1

    assert sdk.change_bid(bid, price=0.25)["success"] is True
    assert show(api, bid)["bid_price"] == 0.25

    status, msg = http_error(lambda: sdk.change_bid(bid, price=0.01))
    assert status == 400 and msg
    assert show(api, bid)["bid_price"] == 0.25

    # bob rents the whole box on demand: the bid is stopped (outbid) until the GPUs are free
    other = VastAI(api_key=bob.key, server_url=bob.url)
    whole = pick(other.search_offers("gpu_name=RTX_4090 num_gpus=2"), n=2)
    od = created(other.create_instance(whole["id"], image="busybox"))
    assert "outbid" in settle(api, bid, "stopped")["status_msg"]
    status, msg = http_error(lambda: other.change_bid(od, price=1.0))
    assert status == 400 and "on-demand" in msg
    assert other.destroy_instance(od)["success"] is True
    settle(api, bid, "running")


def test_volumes_search_create_link_delete(sdk, api, fleet):
    offers = sdk.search_volumes(order="disk_space-")
    assert isinstance(offers, list)
    assert [v["machine_id"] for v in offers] == [
        fleet.machine_ids["box-4090"], fleet.machine_ids["box-3090"]
    ]
    [small] = sdk.search_volumes("disk_space<600")
    assert small["machine_id"] == fleet.machine_ids["box-3090"] and small["disk_space"] == 500

    body = sdk.create_volume(small["id"], size=40.9, name="ckpt")
    assert body["success"] is True
    [vol] = sdk.show_volumes()
    assert (vol["id"], vol["label"], vol["disk_space"], vol["status"]) == (
        body["volume_id"], "ckpt", 40, "available"
    )
    assert sdk.show_volumes(type="network") == []
    assert sdk.search_volumes("disk_space<600")[0]["disk_space"] == 460

    o = pick(sdk.search_offers("gpu_name=RTX_3090"), "RTX 3090")
    iid = created(sdk.create_instance(o["id"], image="busybox", link_volume=vol["id"],
                                      mount_path="/data"))
    assert [(v["id"], v["mount_path"]) for v in settle(api, iid, "running")["volume_info"]] == [
        (vol["id"], "/data")
    ]
    assert sdk.show_volumes()[0]["instances"] == [iid]

    status, msg = http_error(lambda: sdk.delete_volume(vol["id"]))
    assert status == 409 and f"instance {iid}" in msg
    assert sdk.destroy_instance(iid)["success"] is True
    assert sdk.delete_volume(vol["id"])["success"] is True
    assert sdk.show_volumes() == []
    assert sdk.search_volumes("disk_space<600")[0]["disk_space"] == 500


def test_launch_instance(sdk, api, fleet):
    body = sdk.launch_instance("RTX_3090", "1", "busybox", label="one", env="-e A=1")
    iid = created(body)
    row = settle(api, iid, "running")
    assert (row["gpu_name"], row["label"], row["disk_space"]) == ("RTX 3090", "one", 10.0)
    assert dict(row["extra_env"]) == {"A": "1"}
