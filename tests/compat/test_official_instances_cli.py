"""The official ``vastai`` 1.9.1 CLI, unchanged, renting and running instances and volumes on a live
gpuyard server (VAST-WIRE §4, §6, §7, §10).

Every test runs the real CLI in a subprocess with ``--url`` and ``VAST_URL`` pointing at the test
server, ``--api-key``, and HOME / XDG dirs inside ``tmp_path``. A CLI start costs about a second,
so each invocation checks several things; outcomes are read back through the raw API.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from instance_reads import show, wait_status
from worker_pause import paused_worker

VASTAI = Path(sys.executable).with_name("vastai")
if not VASTAI.exists():  # pragma: no cover - only outside the project venv
    VASTAI = Path(shutil.which("vastai") or VASTAI)

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

TEMPLATE = {
    "name": "vllm",
    "image": "vllm/vllm-openai",
    "tag": "v0.6",
    "env": "-e MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Llama-8B -e MAX_TOKENS=4096 -p 8000:8000",
    "onstart": "echo serving $MODEL_ID",
    "runtype": "ssh",
    "recommended_disk_space": 30,
}


@dataclass
class Cli:
    url: str
    home: Path
    env: dict[str, str]
    key: str

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [str(VASTAI), "--url", self.url, "--api-key", self.key, *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return subprocess.CompletedProcess(r.args, r.returncode, plain(r.stdout), plain(r.stderr))

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache" / "vastai"


def plain(text: str) -> str:
    """The CLI colours its tables even when NO_COLOR is set: drop the escape codes."""
    return ANSI.sub("", text)


@pytest.fixture
def vastai(live_server: str, alice, tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAST", "XDG_"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_DATA_HOME=str(home / "data"),
        VAST_URL=live_server,  # the gpu_names side request ignores --url
        VASTAI_NO_UPDATE_CHECK="1",
        VASTAI_MANIFEST_URL=f"{live_server}/cli/manifest.json",
        CI="1",
        NO_COLOR="1",
        COLUMNS="250",  # wide enough that the instance table hides no column
    )
    return Cli(url=live_server, home=home, env=env, key=alice.key)


# --- the raw API, to read outcomes back -----------------------------------------------------------

def offers(api: httpx.Client, **filters) -> list[dict]:
    r = api.post("/api/v0/bundles/", json={**filters, "order": [["id", "asc"]]})
    assert r.status_code == 200, r.text
    return r.json()["offers"]


def offer(api: httpx.Client, gpu: str = "RTX 4090", n: int = 1) -> dict:
    return next(o for o in offers(api) if o["gpu_name"] == gpu and o["num_gpus"] == n)


def volume_offer(api: httpx.Client, machine_id: int) -> dict:
    r = api.post("/api/v0/volumes/search/", json={"machine_id": {"eq": machine_id}})
    assert r.status_code == 200, r.text
    [row] = r.json()["offers"]
    return row


settle = wait_status


def rent(api: httpx.Client, offer_id: int, **body) -> int:
    r = api.put(f"/api/v0/asks/{offer_id}/", json={"client_id": "me", "image": "busybox", **body})
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


def volumes(api: httpx.Client) -> list[dict]:
    r = api.get("/api/v0/volumes", params={"owner": "me", "type": "all_volume"})
    assert r.status_code == 200, r.text
    return r.json()["volumes"]


def started(out: str) -> dict:
    """``Started. {...}``: the create-instance answer, printed as a Python dict."""
    assert out.startswith("Started. "), out
    body = ast.literal_eval(out.strip()[len("Started. "):])
    assert body["success"] is True, body
    return body


# --- tests ----------------------------------------------------------------------------------------

def test_search_offers_table_and_raw(vastai, api, fleet):
    every = offers(api)
    assert {(o["gpu_name"], o["num_gpus"]) for o in every} == {
        ("RTX 4090", 1), ("RTX 4090", 2), ("RTX 3090", 1)
    }
    # the CLI refuses anything but exactly this header (VAST-WIRE §4.1)
    r = api.post("/api/v0/bundles/", json={})
    assert r.headers["content-type"] == "application/json"

    r = vastai("search", "offers")
    assert r.returncode == 0, r.stderr
    assert "invalid return Content-Type" not in r.stdout
    for o in every:  # ID, CUDA, N, Model (spaces shown as _)
        gpu = o["gpu_name"].replace(" ", "_")
        assert re.search(rf"^\s*\d+\s+{o['id']}\s+\S+\s+{o['num_gpus']}x\s+{gpu}\s", r.stdout, re.M), (
            o["id"], r.stdout)
    assert "Sweden,_SE" in r.stdout and "Taiwan,_TW" in r.stdout
    # the start-up side request cached the fleet's GPU names
    cache = json.loads((vastai.cache_dir / "gpu_names_cache.json").read_text())
    assert cache == {"gpu_names": ["RTX 3090", "RTX 4090"]}

    r = vastai("--raw", "search", "offers", "gpu_name=RTX_4090 num_gpus=1 cpu_ram>=64 dph<0.5")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(o["id"], o["gpu_name"], o["num_gpus"]) for o in rows] == [
        (offer(api)["id"], "RTX 4090", 1)
    ]
    assert rows[0]["dph_total"] < 0.5 and rows[0]["cpu_ram"] >= 64000
    assert rows[0]["geolocation"] == "Sweden, SE" and rows[0]["rentable"] is True


def test_create_from_a_template_then_show_list_and_logs(vastai, api, fleet, stored):
    t = api.post("/api/v0/template/", json=TEMPLATE).json()["template"]
    o = offer(api)
    vask = volume_offer(api, o["machine_id"])

    r = vastai(
        "create", "instance", str(o["id"]),
        "--template_hash", t["hash_id"],
        "--env", "-e MODEL_ID=mistralai/Mistral-7B-v0.1 -e HF_TOKEN=hf_xxx",
        "--disk", "20",
        "--label", "llm",
        "--create-volume", str(vask["id"]), "--volume-size", "25", "--mount-path", "/data",
    )
    assert r.returncode == 0, r.stderr
    iid = started(r.stdout)["new_contract"]
    row = settle(api, iid, "running")
    # the template's image, onstart and runtype; the env merged by key, the request winning
    assert row["image_uuid"] == "vllm/vllm-openai:v0.6" and row["image_runtype"] == "ssh"
    merged = {
        "MODEL_ID": "mistralai/Mistral-7B-v0.1", "MAX_TOKENS": "4096", "HF_TOKEN": "hf_xxx",
        "-p 8000:8000": "1",
    }
    assert isinstance(row["extra_env"], list) and dict(row["extra_env"]) == merged
    assert row["template_hash_id"] == t["hash_id"] and row["is_bid"] is False
    assert row["disk_space"] == 20.0 and row["label"] == "llm"
    assert stored(api, t["id"])["count_created"] == 1
    # the new volume: on the rented machine, mounted at /data
    [vol] = volumes(api)
    assert vol["machine_id"] == o["machine_id"] and vol["disk_space"] == 25
    assert vol["status"] == "in_use" and vol["instances"] == [iid] and vol["mount_path"] == "/data"
    assert [(v["id"], v["total_space"], v["mount_path"]) for v in row["volume_info"]] == [
        (vol["id"], 25, "/data")
    ]

    # --raw show instances: the client needs numeric start_date and extra_env pairs (a dict here)
    r = vastai("--raw", "show", "instances")
    assert r.returncode == 0, r.stderr
    [listed] = json.loads(r.stdout)
    assert listed["id"] == iid and listed["actual_status"] == "running"
    assert isinstance(listed["start_date"], float) and listed["duration"] >= 0
    assert listed["extra_env"] == merged
    assert listed["ssh_host"] == "10.0.0.5" and listed["label"] == "llm"

    r = vastai("show", "instances")
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if re.search(rf"\b{iid}\b.*running", ln))
    for text in ("llm", "RTX 4090", "vllm/vllm-openai:v0.6"):
        assert text in line, (text, r.stdout)
    assert "Total: 1 instances" in r.stdout and "llm: 1" in r.stdout

    r = vastai("show", "instance", str(iid))
    assert r.returncode == 0, r.stderr
    first = rf"^\s*1\s+{iid}\s+{o['machine_id']}\s+running\s+1x\s+RTX_4090\s"  # #, ID, Machine, ...
    assert re.search(first, r.stdout, re.M), r.stdout
    assert "10.0.0.5" in r.stdout and "vllm/vllm-openai:v0.6" in r.stdout and "llm" in r.stdout

    # logs: the client fetches result_url itself; the onstart saw the merged MODEL_ID
    r = vastai("logs", str(iid))
    assert r.returncode == 0, r.stderr
    assert "serving mistralai/Mistral-7B-v0.1" in r.stdout
    assert "mounting volume" in r.stdout and "/data" in r.stdout
    assert "\n\n" not in r.stdout.strip()


def test_label_stop_start_reboot_destroy(vastai, api, fleet):
    o = offer(api)
    iid = rent(api, o["id"], onstart="echo hello", env="-p 8000:8000")
    settle(api, iid, "running")

    r = vastai("label", "instance", str(iid), "my box")
    assert r.stdout.strip() == f"label for {iid} set to my box."
    assert show(api, iid)["label"] == "my box"

    r = vastai("stop", "instance", str(iid))
    assert r.stdout.strip() == f"stopping instance {iid}.", r.stderr
    row = settle(api, iid, "stopped")
    assert row["intended_status"] == "stopped" and row["ports"] == {}
    other = rent(api, offer(api)["id"])  # still running: filtered out below
    r = vastai("show", "instances", "-q", "-s", "stopped")
    assert r.stdout.split() == [str(iid)], r.stderr
    assert api.request("DELETE", f"/api/v0/instances/{other}/", json={}).json()["success"]

    r = vastai("start", "instance", str(iid))
    assert r.stdout.strip() == f"starting instance {iid}.", r.stderr
    row = settle(api, iid, "running")
    assert row["intended_status"] == "running" and "8000/tcp" in row["ports"]
    assert "22/tcp" not in row["ports"]  # no SSH server runs in it: no direct address

    r = vastai("reboot", "instance", str(iid))
    assert r.stdout.strip() == f"Rebooting instance {iid}.", r.stderr
    settle(api, iid, "running")

    r = vastai("logs", str(iid), "--daemon-logs")
    assert r.returncode == 0, r.stderr
    events = [ln.split(" ", 1)[1] for ln in r.stdout.strip().splitlines()]
    assert events[0] == "created from busybox:latest"
    for event in ("running → stopped", "stopped → running", "rebooting"):
        assert event in events, r.stdout
    assert events.index("running → stopped") < events.index("stopped → running") < events.index("rebooting")

    r = vastai("destroy", "instance", str(iid), "-y")
    assert r.stdout.strip() == f"destroying instance {iid}.", r.stderr
    assert show(api, iid) is None
    # the GPU is back on offer
    assert offer(api)["id"] == o["id"]

    r = vastai("show", "instance", str(iid))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == f"Instance {iid} not found or no longer exists."


class UnreachableEngine:
    """A runtime whose engine does not answer: every verb raises EngineUnreachable."""

    name = "simulated"

    def __getattr__(self, verb):
        from gpuyard.runtimes.base import EngineUnreachable

        def fail(*_args, **_kwargs):
            raise EngineUnreachable("the Docker engine at ssh://gpu-box is unreachable (inspect)")

        return fail


def test_an_instance_whose_engine_does_not_answer_reads_unknown(vastai, app, api, fleet):
    from gpuyard.reconciler import Reconciler

    iid = rent(api, offer(api)["id"], runtype="ssh_direc ssh_proxy", env="-p 8000:8000")
    before = settle(api, iid, "running")
    with paused_worker(app):  # only the reconciler below looks at the instance meanwhile
        Reconciler(app.state.sessions, {"simulated": UnreachableEngine()}).reconcile(iid)
        row = show(api, iid)
        assert row["actual_status"] == "unknown" and row["ports"] == before["ports"]
        assert row["status_msg"].startswith("engine unreachable since ")

        r = vastai("show", "instances")
        assert r.returncode == 0, r.stderr
        assert re.search(rf"\b{iid}\b.*\bunknown\b", r.stdout), r.stdout
        r = vastai("show", "instance", str(iid))
        assert r.returncode == 0 and re.search(rf"^\s*1\s+{iid}\s+\d+\s+unknown\s", r.stdout, re.M), r.stdout
        # the published ports stay in the row: the instance may well still run
        assert row["ports"]["8000/tcp"] == before["ports"]["8000/tcp"]
    assert settle(api, iid, "running")["status_msg"] == "running"  # the engine answers again


def test_bid_create_and_change_bid(vastai, api, fleet):
    # the new search endpoint, interruptible pricing
    r = vastai("--raw", "search", "offers", "--new", "-b", "gpu_name=RTX_4090 num_gpus=1")
    assert r.returncode == 0, r.stderr
    [o] = json.loads(r.stdout)
    assert o["min_bid"] == 0.05 and o["num_gpus"] == 1

    r = vastai("create", "instance", str(o["id"]), "--image", "busybox", "--bid_price", "0.1")
    assert r.returncode == 0, r.stderr
    bid = started(r.stdout)["new_contract"]
    row = settle(api, bid, "running")
    assert row["is_bid"] is True and row["bid_price"] == 0.1
    assert row["image_uuid"] == "busybox:latest" and row["image_runtype"] == "ssh"

    r = vastai("change", "bid", str(bid), "--price", "0.3")
    assert r.stdout.strip() == "Per gpu bid price changed", r.stderr
    assert settle(api, bid, "running")["bid_price"] == 0.3

    # an on-demand instance has no bid: the server's msg is printed
    od = rent(api, offer(api, "RTX 3090")["id"])
    r = vastai("change", "bid", str(od), "--price", "1")
    assert r.stdout == ""
    assert r.stderr.startswith("Failed with error 400: ") and "on-demand" in r.stderr
    assert show(api, od)["is_bid"] is False


def test_volumes_search_create_link_show_delete(vastai, api, fleet):
    box = fleet.machine_ids["box-4090"]
    r = vastai("search", "volumes")
    assert r.returncode == 0, r.stderr
    for machine_id in fleet.machine_ids.values():
        vask = volume_offer(api, machine_id)
        assert re.search(rf"^\s*\d+\s+{vask['id']}\s.*Samsung_SSD", r.stdout, re.M), r.stdout

    r = vastai("--raw", "search", "volumes", "disk_space>600")
    assert r.returncode == 0, r.stderr
    [vask] = json.loads(r.stdout)
    assert vask["machine_id"] == box and vask["disk_space"] == 1000

    r = vastai("create", "volume", str(vask["id"]), "-s", "20", "-n", "ckpt")
    assert r.stdout.startswith("Created. "), r.stderr
    [vol] = volumes(api)
    assert (vol["label"], vol["disk_space"], vol["machine_id"]) == ("ckpt", 20, box)
    assert volume_offer(api, box)["disk_space"] == 980

    o = offer(api)
    r = vastai("create", "instance", str(o["id"]), "--image", "busybox",
               "--link-volume", str(vol["id"]), "--mount-path", "/data")
    iid = started(r.stdout)["new_contract"]
    assert [(v["id"], v["mount_path"]) for v in settle(api, iid, "running")["volume_info"]] == [
        (vol["id"], "/data")
    ]

    r = vastai("show", "volumes")
    assert r.returncode == 0, r.stderr
    assert re.search(rf"^\s*1\s+{vol['id']}\s+-\s+ckpt\s+20\s+in_use\s", r.stdout, re.M), r.stdout
    assert f"[{iid}]" in r.stdout

    # in use: the server's 409 names the instance
    r = vastai("delete", "volume", str(vol["id"]))
    assert r.stdout == ""
    assert r.stderr.startswith("Failed with error 409: ") and f"instance {iid}" in r.stderr
    assert [v["id"] for v in volumes(api)] == [vol["id"]]

    assert api.request("DELETE", f"/api/v0/instances/{iid}/", json={}).json()["success"]
    r = vastai("delete", "volume", str(vol["id"]))
    assert r.stdout.startswith("Deleted. "), r.stderr
    assert volumes(api) == []
    assert volume_offer(api, box)["disk_space"] == 1000


def test_launch_instance_accepts_the_fleets_gpu_names(vastai, fleet):
    r = vastai("launch", "instance", "-g", "RTX_2080", "-n", "1", "-i", "busybox")
    assert r.returncode == 2
    assert "invalid choice: 'RTX_2080' (choose from 'RTX_3090', 'RTX_4090')" in r.stderr


def test_launch_instance_rents_the_best_matching_offer(vastai, api, fleet):
    r = vastai("launch", "instance", "-g", "RTX_4090", "-n", "2", "-i", "busybox", "--label", "pair",
               "--env", "-e WHO=world -p 8080:8080", "--onstart-cmd", "echo hello $WHO")
    assert r.returncode == 0, r.stderr
    [row] = api.get("/api/v1/instances/").json()["instances"]
    assert f"Instance launched successfully: {row['id']}" in r.stdout, r.stdout
    assert (row["gpu_name"], row["num_gpus"], row["label"]) == ("RTX 4090", 2, "pair")
    assert row["image_uuid"] == "busybox:latest" and row["disk_space"] == 16.0  # the CLI's -d default
    assert dict(row["extra_env"]) == {"WHO": "world", "-p 8080:8080": "1"}
    assert "8080/tcp" in settle(api, row["id"], "running")["ports"]
    # both GPUs of box-4090 are taken: only the RTX 3090 is left on offer
    assert [o["gpu_name"] for o in offers(api)] == ["RTX 3090"]


def test_quoted_env_default_disk_bid_holders_and_unserved_calls(vastai, api, fleet):
    """The official CLI's quirks, handled: ``-e "X=a b"`` reaches us as the key '"X' (the
    variable X); its default disk (the integer 10) gives way to the template's recommendation
    while an explicit --disk wins; a bid refused because a bid holds the GPUs says so; a Vast
    call gpuyard does not serve is a 404 naming it."""
    t = api.post("/api/v0/template/", json=TEMPLATE).json()["template"]  # recommends 30 GB
    o = offer(api)
    r = vastai("create", "instance", str(o["id"]), "--template_hash", t["hash_id"],
               "--env", '-e "X=a b" -e TZ=UTC')
    answer = started(r.stdout)
    assert "the template's recommended disk" in answer["msg"]
    row = show(api, answer["new_contract"])
    assert dict(row["extra_env"])["X"] == "a b" and dict(row["extra_env"])["TZ"] == "UTC"
    assert row["disk_space"] == 30.0

    o = offer(api, "RTX 3090")
    r = vastai("create", "instance", str(o["id"]), "--template_hash", t["hash_id"], "--disk", "10")
    assert show(api, started(r.stdout)["new_contract"])["disk_space"] == 10.0

    # a bid takes the 4090 machine's idle GPU; a lower bid on the offer seen before is refused
    [single] = [x for x in offers(api, type="bid") if x["gpu_name"] == "RTX 4090" and x["num_gpus"] == 1]
    rent(api, single["id"], price=0.3)
    r = vastai("create", "instance", str(single["id"]), "--image", "busybox", "--bid_price", "0.1")
    assert "bid of $0.3/hour" in r.stdout + r.stderr and "rented" not in r.stdout + r.stderr

    r = vastai("show", "pending-price-increases")
    assert "no such endpoint" in r.stdout + r.stderr
    assert "GET /api/v0/instances/pending-price-increases" in r.stdout + r.stderr
