"""Usage accrues from recorded state changes (docs/usage.md): a simulated run driven by a clock
the test moves (start, stop, start again, reboot, destroy; a bid outbid and resumed, its bid
changed; a volume), charged per part, per instance and per UTC day, and still right after the server
restarts."""

from __future__ import annotations

import functools

import pytest
from test_instances_api import offer, offers, rented

from gpuyard.api.app import create_app
from gpuyard.services.ledger import usage
from gpuyard.settings import Settings
from gpuyard.store.db import transaction
from gpuyard.store.models import UsageInterval
from instance_reads import wait_status
from serving import serving
from usage_clock import HOUR, T0, controlled

settle = functools.partial(wait_status, timeout=2.0)
approx = functools.partial(pytest.approx, abs=1e-5)  # answers are rounded to 6 decimals
DISK_DPH = 10 * 0.10 / 720  # 10 GB at $0.10/GB/month


@pytest.fixture
def clock(app):
    with controlled(app) as c:
        yield c


def me(client) -> dict:
    r = client.get("/api/v0/users/current")
    assert r.status_code == 200, r.text
    return r.json()


def invoices(client, since: float, until: float, **more) -> dict:
    r = client.get("/api/v0/users/me/invoices", params={"owner": "me", "sdate": since, "edate": until,
                                                         "inc_charges": "true", **more})
    assert r.status_code == 200, r.text
    return r.json()


def state(client, iid: int, word: str) -> None:
    r = client.put(f"/api/v0/instances/{iid}/", json={"state": word})
    assert r.status_code == 200, r.text


def test_an_on_demand_run_is_charged_for_gpu_time_while_running_and_disk_until_destroyed(api, fleet, clock):
    iid = rented(api, offer(api)["id"], image="busybox", disk=10)  # 1× RTX 4090 at $0.40/hour
    settle(api, iid, "running")
    clock.advance(2 * HOUR)
    state(api, iid, "stopped")
    settle(api, iid, "stopped")
    clock.advance(3 * HOUR)  # stopped: disk only
    state(api, iid, "running")
    settle(api, iid, "running")
    clock.advance(HOUR / 2)
    assert api.put(f"/api/v0/instances/reboot/{iid}/", json={}).status_code == 200  # runs on
    settle(api, iid, "running")
    clock.advance(HOUR / 2)
    assert api.request("DELETE", f"/api/v0/instances/{iid}/", json={}).status_code == 200
    clock.advance(5 * HOUR)  # destroyed: nothing

    user = me(api)
    gpu, disk = 3 * 0.40, 6 * DISK_DPH
    assert user["total_charges"] == approx(gpu + disk)
    assert user["balance"] == approx(-(gpu + disk)) == user["credit"]
    assert user["dph"] == 0

    body = invoices(api, T0 - HOUR, clock.t)
    rows = body["invoices"]
    gpu_rows = [r for r in rows if "GPU time" in r["description"]]
    disk_rows = [r for r in rows if ": disk" in r["description"]]
    assert [(r["quantity"], r["rate"]) for r in gpu_rows] == [(approx(3.0), 0.4)]
    assert gpu_rows[0]["amount"] == approx(1.2) and gpu_rows[0]["instance_id"] == iid
    assert sum(r["quantity"] for r in disk_rows) == approx(6.0)
    assert all(r["type"] == "charge" and isinstance(r["timestamp"], float) for r in rows)
    assert body["current"]["charges"] == approx(gpu + disk)

    # a window sees only its part: the first hour
    assert invoices(api, T0, T0 + HOUR)["current"]["charges"] == approx(0.40 + DISK_DPH)


def test_a_bid_accrues_only_while_it_holds_its_gpus_at_its_current_price(api, bob, fleet, clock):
    box = next(o for o in offers(api, type="bid") if o["gpu_name"] == "RTX 3090")
    bid = rented(api, box["id"], image="busybox", disk=10, price=0.10)
    settle(api, bid, "running")
    clock.advance(HOUR)
    with bob.http() as b:
        taker = rented(b, offer(b, "RTX 3090")["id"], image="busybox", disk=10)
        assert "outbid" in settle(api, bid, "stopped")["status_msg"]
        clock.advance(2 * HOUR)  # outbid: no GPU time
        assert b.request("DELETE", f"/api/v0/instances/{taker}/", json={}).status_code == 200
    settle(api, bid, "running")
    clock.advance(HOUR)
    r = api.put(f"/api/v0/instances/bid_price/{bid}/", json={"client_id": "me", "price": 0.2})
    assert r.status_code == 200, r.text
    clock.advance(HOUR)

    rows = invoices(api, T0, clock.t)["invoices"]
    gpu = sorted((r["rate"], r["quantity"]) for r in rows if "GPU time" in r["description"])
    assert gpu == [(0.1, approx(2.0)), (0.2, approx(1.0))]
    disk = sum(r["quantity"] for r in rows if ": disk" in r["description"])
    assert disk == approx(5.0)  # disk accrues while outbid too
    assert me(api)["total_charges"] == approx(0.4 + 5 * DISK_DPH)


def test_a_volume_accrues_until_deleted_and_days_are_cut_at_utc_midnight(api, fleet, app):
    with controlled(app, start=T0 - 12 * HOUR) as clock:  # 2025-12-31 12:00 UTC
        ask = api.post("/api/v0/volumes/search/", json={"order": [["id", "asc"]]}).json()["offers"][0]
        r = api.put("/api/v0/volumes/", json={"id": ask["id"], "size": 72, "name": "data"})
        assert r.status_code == 200, r.text
        volume = r.json()["volume_id"]
        clock.advance(36 * HOUR)  # until 2026-01-02 00:00
        assert api.delete("/api/v0/volumes/", params={"id": volume}).status_code == 200
        clock.advance(10 * HOUR)
        rows = invoices(api, T0 - DAY_S, clock.t)["invoices"]
    storage = [r for r in rows if r["volume_id"] == volume]
    # 72 GB at $0.10/GB/month = $0.01/hour: 12 hours on Dec 31, 24 hours on Jan 1
    assert [(r["day"], r["quantity"]) for r in storage] == [
        (T0 - DAY_S, approx(12.0)), (T0, approx(24.0))]
    assert [r["amount"] for r in storage] == [approx(0.12), approx(0.24)]
    assert "volume" in storage[0]["description"] and "data" in storage[0]["description"]


DAY_S = 24 * HOUR


def test_accrual_survives_a_server_restart(api, fleet, app, db_url, data_dir, clock):
    iid = rented(api, offer(api)["id"], image="busybox", disk=10)
    settle(api, iid, "running")
    clock.advance(HOUR)
    app.state.reconciler.stop()  # the first server goes away
    try:
        second = create_app(Settings.build(db_url=db_url, sim_boot_seconds=0, data_dir=data_dir))
        usage.configure(second.state.sessions, clock=clock)
        with serving(second) as url:
            import httpx

            with httpx.Client(base_url=url, headers=api.headers, timeout=30) as again:
                clock.advance(HOUR)  # an hour more, counted while the new server runs it
                assert settle(again, iid, "running")
                assert me(again)["total_charges"] == approx(2 * (0.40 + DISK_DPH))
                state(again, iid, "stopped")
                settle(again, iid, "stopped")
                clock.advance(HOUR)
                assert me(again)["total_charges"] == approx(2 * 0.40 + 3 * DISK_DPH)
        second.state.engine.dispose()
    finally:
        app.state.reconciler.start()
    with transaction(app.state.sessions, write=False) as session:
        rows = session.query(UsageInterval).filter_by(instance_id=iid).order_by(UsageInterval.id).all()
    # launched (disk only while loading), running, stopped: nothing written while it just ran
    assert [(r.gpus, r.ended_at is None) for r in rows][-2:] == [(1, False), (0, True)]
