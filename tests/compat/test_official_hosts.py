"""The official ``vastai`` 1.9.1 CLI's host commands (VAST-WIRE §18), unchanged, against a live
gpuyard server: show machines / machine / maints, list and unlist machine, schedule and cancel
maint; another user's machine is refused. The CLI runs in a subprocess with HOME inside
``tmp_path``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vastai import VastAI

VASTAI = Path(sys.executable).with_name("vastai")
if not VASTAI.exists():  # pragma: no cover - only outside the project venv
    VASTAI = Path(shutil.which("vastai") or VASTAI)


@pytest.fixture
def vastai(live_server: str, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAST", "XDG_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_STATE_HOME=str(home / "state"), XDG_DATA_HOME=str(home / "data"), VAST_URL=live_server,
               VASTAI_NO_UPDATE_CHECK="1", CI="1", NO_COLOR="1")

    def run(*args: str, key: str, answer: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VASTAI), "--url", live_server, "--api-key", key, *args], env=env,
                              input=answer, stdin=None if answer is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60, cwd=home)

    return run


def one_gpu_offers(api, machine_id: int) -> list[dict]:
    r = api.post("/api/v0/bundles/", json={"order": [["id", "asc"]]})
    return [o for o in r.json()["offers"] if o["machine_id"] == machine_id and o["num_gpus"] == 1]


def test_official_cli_show_and_list_machines(vastai, alice, bob, api, hosted):
    box, theirs = hosted["box-4090"], hosted["box-3090"]
    r = vastai("show", "machines", key=alice.key)
    assert r.returncode == 0, r.stderr
    assert "box-4090" in r.stdout and "box-3090" not in r.stdout and "RTX_4090" in r.stdout
    assert "0.40      0.05" in r.stdout and "-_-" in r.stdout  # $/GPU/h, min bid; two free GPUs
    assert vastai("show", "machines", "-q", key=alice.key).stdout.split() == [str(box)]
    raw = json.loads(vastai("show", "machines", "--raw", key=alice.key).stdout)
    assert [m["id"] for m in raw["machines"]] == [box]
    r = vastai("show", "machine", str(box), key=alice.key)
    assert r.returncode == 0 and "box-4090" in r.stdout, r.stderr
    assert vastai("show", "machine", str(box), "-q", key=alice.key).stdout.split() == [str(box)]

    r = vastai("list", "machine", str(box), "-g", "0.35", "-s", "0.15", "-u", "0.01", "-d", "0.005",
               "-b", "0.2", "-m", "2", "-e", "12/31/2099", key=alice.key)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"offers created/updated for machine {box},  @ $0.35/gpu/hr"), r.stdout
    assert one_gpu_offers(api, box) == []  # -m 2: no single-GPU offers
    whole = [o for o in api.post("/api/v0/bundles/", json={}).json()["offers"] if o["machine_id"] == box]
    assert [o["dph_base"] for o in whole] == [pytest.approx(0.70)]
    assert whole[0]["end_date"] == 4102358400.0  # 12/31/2099, UTC midnight
    r = vastai("list", "machine", str(box), "-g", "0.5", "-e", "31.12.2099", key=alice.key)
    assert "does not match format '%m/%d/%Y'" in r.stderr  # the client's own check: nothing sent
    assert "0.35" in vastai("show", "machine", str(box), key=alice.key).stdout  # not sent

    r = vastai("list", "machine", str(theirs), "-g", "0.01", key=alice.key)
    assert "machine " + str(theirs) + " not found among your machines" in r.stdout + r.stderr
    r = vastai("show", "machine", str(theirs), key=alice.key)
    assert "not found among your machines" in r.stdout + r.stderr and "box-3090" not in r.stdout
    r = vastai("unlist", "machine", str(theirs), key=alice.key)
    assert "not found among your machines" in r.stdout + r.stderr
    assert one_gpu_offers(api, theirs) != []

    r = vastai("unlist", "machine", str(box), key=alice.key)
    assert r.stdout.strip() == f"all offers for machine {box} removed, machine delisted.", r.stderr
    assert [o for o in api.post("/api/v0/bundles/", json={}).json()["offers"] if o["machine_id"] == box] == []
    r = vastai("list", "machine", str(box), key=alice.key)  # CLI default -m 1
    assert r.returncode == 0 and [o["dph_base"] for o in one_gpu_offers(api, box)] == [0.35]


def test_official_cli_maintenance(vastai, alice, bob, hosted):
    box, theirs = hosted["box-4090"], hosted["box-3090"]
    start = int(time.time()) + 86400
    r = vastai("schedule", "maint", str(box), "--sdate", str(start), "--duration", "1.5",
               "--maintenance_category", "power", key=alice.key, answer="y\n")
    assert r.returncode == 0 and "success" in r.stdout, r.stderr
    r = vastai("show", "maints", "-i", f"{box},{theirs}", "--raw", key=alice.key)
    assert json.loads(r.stdout) == [{"machine_id": box, "start_time": start, "end_time": start + 5400,
                                     "duration_hours": 1.5, "maintenance_category": "power"}]
    assert vastai("show", "maints", "-i", str(box), "-q", key=alice.key).stdout.split() == [str(box)]
    assert json.loads(vastai("show", "maints", "-i", str(box), "--raw", key=bob.key).stdout) == []

    r = vastai("schedule", "maint", str(box), "--sdate", str(start), "--duration", "1", key=alice.key,
               answer="n\n")
    assert len(VastAI(api_key=alice.key, server_url=alice.url).show_maints([box])) == 1  # "n": not sent

    r = vastai("cancel", "maint", str(box), key=alice.key, answer="y\n")
    assert r.returncode == 0 and "success" in r.stdout, r.stderr
    assert json.loads(vastai("show", "maints", "-i", str(box), "--raw", key=alice.key).stdout) == []


def test_official_sdk_host_calls(alice, bob, hosted):
    box, theirs = hosted["box-4090"], hosted["box-3090"]
    sdk = VastAI(api_key=alice.key, server_url=alice.url)
    assert sdk.show_machine(box)["hostname"] == "box-4090"
    assert [m["id"] for m in sdk.show_machines()] == [box]
    answer = sdk.list_machine(box, price_gpu=0.45, min_chunk=1)
    assert answer["success"] is True and answer["extended"] == 0
    assert sdk.show_machine(box)["listed_gpu_cost"] == 0.45
    with pytest.raises(Exception, match="404"):
        sdk.show_machine(theirs)
