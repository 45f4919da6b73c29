"""Volume endpoints (VAST-WIRE §7) over HTTP, and the official SDK's volume calls."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gpuyard.services.market.allocation import refresh_machine
from gpuyard.store.db import transaction
from gpuyard.store.models import Ask, Instance, Machine, Volume


@pytest.fixture
def machines(app):
    """``add(hostname, disk)`` → (machine id, volume ask id, first GPU ask id)."""

    def add(hostname: str, disk: float = 100.0) -> tuple[int, int, int]:
        now = time.time()
        with transaction(app.state.sessions) as session:
            m = Machine(
                hostname=hostname, gpu_name="RTX 4090", num_gpus=1, gpu_ram=24.0, cpu_cores=8,
                cpu_ram=32.0, disk_space=disk, inet_down=500.0, inet_up=400.0, dph_per_gpu=0.3,
                min_bid_per_gpu=0.1, storage_cost=0.2, reliability=0.98, geolocation="TW",
                specs={}, created_at=now, updated_at=now,
            )
            session.add(m)
            session.flush()
            refresh_machine(session, m)
            asks = {a.kind: a.id for a in session.scalars(select(Ask).where(Ask.machine_id == m.id))}
            return m.id, asks["volume"], asks["gpu"]

    return add


@pytest.fixture
def free_disk(app):
    def get(machine_id: int) -> tuple[float, bool]:
        """(free GB, whether the machine's volume offer is active)."""
        with transaction(app.state.sessions, write=False) as session:
            m = session.get(Machine, machine_id)
            ask = session.scalars(
                select(Ask).where(Ask.machine_id == machine_id, Ask.kind == "volume")
            ).one()
            return m.disk_space - m.disk_used, ask.active

    return get


@pytest.fixture
def attach(app):
    """Insert a live instance of ``owner_id`` on the volume's machine that mounts it."""

    def add(owner_id: int, volume_id: int) -> int:
        now = time.time()
        with transaction(app.state.sessions) as session:
            volume = session.get(Volume, volume_id)
            inst = Instance(
                owner_id=owner_id, machine_id=volume.machine_id, gpus="0", num_gpus=1,
                dph_base=0.3, storage_cost=0.2, image="ubuntu", tag="latest", disk_space=5.0,
                runtime="simulated", start_date=now, created_at=now, updated_at=now,
                volume_id=volume_id, volume_mount="/data",
            )
            session.add(inst)
            session.flush()
            return inst.id

    return add


def create(client, **body: Any):
    return client.put("/api/v0/volumes/", json=body)


def check_error(r, status: int, *words: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and body["error"]
    for word in words:
        assert word in body["msg"], body["msg"]
    return body


def listed(client, **params: str) -> list[dict]:
    r = client.get("/api/v0/volumes", params={"owner": "me", "type": "all_volume", **params})
    assert r.status_code == 200, r.text
    return r.json()["volumes"]


def test_create_list_delete(api, machines, free_disk):
    mid, vask, _ = machines("m1", disk=100)
    r = create(api, id=vask, size=30, name="data")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["msg"]
    vid = body["volume_id"]
    assert body["volume"]["id"] == vid and body["volume"]["machine_id"] == mid
    assert free_disk(mid) == (70, True)
    [row] = listed(api)
    assert row["id"] == vid and row["label"] == "data" and row["disk_space"] == 30
    assert isinstance(row["start_date"], float) and row["status"] == "available"
    assert listed(api, type="local_volume") == [row]
    assert listed(api, type="network_volume") == []
    r = api.request("DELETE", "/api/v0/volumes/", params={"id": vid}, json={})
    assert r.status_code == 200 and r.json()["success"] is True, r.text
    assert free_disk(mid) == (100, True)
    assert listed(api) == []


def test_create_default_size_and_limits(api, machines, free_disk):
    mid, vask, _ = machines("m1", disk=20)
    assert create(api, id=vask).json()["volume"]["disk_space"] == 15
    check_error(create(api, id=vask, size=6), 400, "at most 5 GB")
    assert create(api, id=vask, size=5).status_code == 200
    assert free_disk(mid) == (0, False)  # the machine no longer offers disk
    check_error(create(api, id=vask, size=1), 409)


def test_create_errors_store_nothing(api, machines):
    _, vask, gask = machines("m1")
    check_error(create(api, id=gask), 400, "GPU offer", "search volumes")
    check_error(create(api, id=987654), 404)
    check_error(create(api, id=vask, size=0), 400, "positive")
    check_error(create(api, id=vask, size="ten"), 400, "number of GB")
    check_error(create(api, size=10), 400, "id is required")
    check_error(create(api, id=vask, extra=1), 400, "unknown")
    check_error(api.put("/api/v0/volumes/", content=b"[1]"), 400)
    assert listed(api) == []


def test_users_see_and_delete_only_their_own(api, bob, machines):
    _, vask, _ = machines("m1")
    vid = create(api, id=vask).json()["volume_id"]
    with bob.http() as other:
        assert listed(other) == []
        check_error(other.request("DELETE", "/api/v0/volumes/", params={"id": vid}, json={}), 404)
        check_error(other.get("/api/v0/volumes", params={"owner": "alice"}), 400, "owner")
    assert [r["id"] for r in listed(api)] == [vid]


def test_list_and_delete_bad_arguments(api):
    check_error(api.get("/api/v0/volumes", params={"type": "all"}), 400, "all_volume")
    check_error(api.request("DELETE", "/api/v0/volumes/", json={}), 400, "?id=")
    check_error(api.request("DELETE", "/api/v0/volumes/", json={"id": 3}), 400, "query string")
    check_error(api.request("DELETE", "/api/v0/volumes/", params={"id": "x"}, json={}), 400)
    check_error(api.request("DELETE", "/api/v0/volumes/", params={"id": 5}, json={}), 404)


def test_in_use_volume_cannot_be_deleted(api, alice, machines, attach, app):
    _, vask, _ = machines("m1")
    vid = create(api, id=vask).json()["volume_id"]
    iid = attach(alice.id, vid)
    [row] = listed(api)
    assert row["status"] == "in_use" and row["instances"] == [iid] and row["mount_path"] == "/data"
    r = api.request("DELETE", "/api/v0/volumes/", params={"id": vid}, json={})
    check_error(r, 409, f"instance {iid}", "destroy")
    assert [r["id"] for r in listed(api)] == [vid]
    with transaction(app.state.sessions) as session:
        session.get(Instance, iid).destroyed_at = time.time()
    r = api.request("DELETE", "/api/v0/volumes/", params={"id": vid}, json={})
    assert r.status_code == 200, r.text


def test_unauthenticated(live_server):
    import httpx

    with httpx.Client(base_url=live_server) as anon:
        check_error(anon.get("/api/v0/volumes"), 401)
        check_error(anon.put("/api/v0/volumes/", json={"id": 1}), 401)


def test_official_sdk(alice, machines, free_disk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from vastai import VastAI

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    mid, vask, _ = machines("m1", disk=50)
    sdk = VastAI(api_key=alice.key, server_url=alice.url)
    created = sdk.create_volume(id=vask, size=12.7, name="ckpt")
    assert created["success"] is True
    rows = sdk.show_volumes()
    assert [r["disk_space"] for r in rows] == [12] and rows[0]["duration"] >= 0
    assert sdk.show_volumes(type="network") == []
    assert sdk.delete_volume(id=created["volume_id"])["success"] is True
    assert free_disk(mid) == (50, True)


def test_official_cli(alice, machines, live_server: str, tmp_path: Path):
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAST", "XDG_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"),
               VAST_URL=live_server, VASTAI_NO_UPDATE_CHECK="1", CI="1", NO_COLOR="1",
               VASTAI_MANIFEST_URL=f"{live_server}/cli/manifest.json")
    exe = str(Path(sys.executable).with_name("vastai"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, "--url", live_server, "--api-key", alice.key, *args], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)

    _, vask, _ = machines("m1")
    r = run("create", "volume", str(vask), "-s", "20", "-n", "ckpt")
    assert r.returncode == 0 and r.stdout.startswith("Created."), (r.stdout, r.stderr)
    r = run("show", "volumes")
    assert r.returncode == 0 and "ckpt" in r.stdout and "available" in r.stdout, (r.stdout, r.stderr)
    with alice.http() as client:
        vid = listed(client)[0]["id"]
    r = run("delete", "volume", str(vid))
    assert r.returncode == 0 and r.stdout.startswith("Deleted."), (r.stdout, r.stderr)
