"""A machine owner's side of the API (VAST-WIRE §18): their machines, listing and prices, unlisting,
maintenance windows; others' machines answer 404."""

from __future__ import annotations

import time

import httpx
import pytest
from test_instances_api import offers, rented

from gpuyard.maintenance import run_maintenance
from gpuyard.store.db import transaction
from gpuyard.store.models import Machine, MachineMaintenance
from instance_reads import show, wait_status

HOURS_PER_MONTH = 30 * 24


def listing(machine: int, **values) -> dict:
    """What the official client sends: always twelve keys, null for what was not given."""
    body = dict.fromkeys(("price_gpu", "price_disk", "price_inetu", "price_inetd", "price_min_bid",
                          "end_date", "credit_discount_max", "duration", "vol_size", "vol_price"))
    return {**body, "machine": machine, "min_chunk": 1, **values}


def machine_offers(client: httpx.Client, machine_id: int, **filters) -> list[dict]:
    return [o for o in offers(client, **filters) if o["machine_id"] == machine_id]


def test_owners_see_their_machines_and_nobody_elses(api, bob, hosted):
    mine = api.get("/api/v0/machines", params={"owner": "me"})
    assert mine.status_code == 200
    rows = mine.json()["machines"]
    assert [r["hostname"] for r in rows] == ["box-4090"]
    row = rows[0]
    assert row["id"] == hosted["box-4090"] and row["num_gpus"] == 2 and row["gpu_name"] == "RTX 4090"
    assert row["listed_gpu_cost"] == 0.40 and row["min_bid_price"] == 0.05 and row["listed"] is True
    assert row["driver_version"] == "550.54.15" and row["reliability2"] == 0.995
    assert row["gpu_occupancy"] == "- -" and row["owner"] == "alice" and row["offers"] == 2
    single = api.get(f"/api/v0/machines/{hosted['box-4090']}", params={"owner": "me"})
    assert single.status_code == 200 and single.json() == [row]  # a bare list of one row

    theirs = hosted["box-3090"]
    for r in (api.get(f"/api/v0/machines/{theirs}"),
              api.put("/api/v0/machines/create_asks/", json=listing(theirs, price_gpu=9)),
              api.request("DELETE", f"/api/v0/machines/{theirs}/asks/", json={}),
              api.put(f"/api/v0/machines/{theirs}/dnotify/",
                      json={"client_id": "me", "sdate": time.time() + 3600, "duration": 1,
                            "maintenance_category": "power"}),
              api.put(f"/api/v0/machines/{theirs}/cancel_maint/",
                      json={"client_id": "me", "machine_id": theirs}),
              api.get("/api/v0/machines/999999")):
        assert r.status_code == 404 and r.json()["error"] == "machine_not_found", r.text
        assert "not found among your machines" in r.json()["msg"]
    with bob.http() as b:
        assert [r["hostname"] for r in b.get("/api/v0/machines").json()["machines"]] == ["box-3090"]
    assert {o["dph_base"] for o in machine_offers(api, theirs)} == {0.20}


def test_a_new_price_changes_offers_at_once_and_rentals_keep_theirs(api, bob, hosted):
    box = hosted["box-4090"]
    with bob.http() as b:
        one = next(o for o in machine_offers(b, box) if o["num_gpus"] == 1)
        before = rented(b, one["id"], image="busybox", disk=10)
        wait_status(b, before, "running")
        r = api.put("/api/v0/machines/create_asks/",
                    json=listing(box, price_gpu=0.55, price_disk=0.2, price_min_bid=0.1, price_inetu=0.01,
                                 price_inetd=0.005))
        assert r.status_code == 200 and r.json()["success"] is True and r.json()["extended"] == 0, r.text
        offer = next(o for o in machine_offers(b, box, allocated_storage=10) if o["num_gpus"] == 1)
        assert offer["dph_base"] == pytest.approx(0.55)
        assert offer["dph_total"] == pytest.approx(0.55 + 0.2 * 10 / HOURS_PER_MONTH)  # GPU + storage
        assert offer["storage_cost"] == 0.2 and offer["min_bid"] == pytest.approx(0.1)
        kept = show(b, before)
        assert kept["dph_base"] == 0.40 and kept["storage_cost"] == 0.10
        after = rented(b, offer["id"], image="busybox", disk=10)
        assert show(b, after)["dph_base"] == pytest.approx(0.55)
    row = api.get(f"/api/v0/machines/{box}").json()[0]
    assert row["listed_gpu_cost"] == 0.55 and row["listed_storage_cost"] == 0.2
    assert row["listed_inet_up_cost"] == 0.01 and row["listed_inet_down_cost"] == 0.005
    assert row["gpu_occupancy"] == "D D"
    assert {(x["renter"], x["dph"]) for x in row["rentals"]} == {("bob", 0.40), ("bob", 0.55)}


def test_unlist_withdraws_offers_and_running_instances_continue(api, bob, hosted, request):
    box = hosted["box-4090"]
    with bob.http() as b:
        iid = rented(b, next(o for o in machine_offers(b, box) if o["num_gpus"] == 1)["id"], image="busybox")
        wait_status(b, iid, "running")
        r = api.request("DELETE", f"/api/v0/machines/{box}/asks/", json={})
        assert r.status_code == 200 and r.json()["success"] is True
        assert r.json()["msg"].startswith(f"all offers for machine {box} removed, machine delisted")
        assert machine_offers(b, box) == []
        volumes = b.post("/api/v0/volumes/search/", json={}).json()["offers"]
        assert all(o["machine_id"] != box for o in volumes)
        assert show(b, iid)["actual_status"] == "running"
        assert b.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"}).status_code == 200
        wait_status(b, iid, "stopped")
        assert b.put(f"/api/v0/instances/{iid}/", json={"state": "running"}).status_code == 200
        wait_status(b, iid, "running")  # what is rented stays the renter's
        assert api.get(f"/api/v0/machines/{box}").json()[0]["listed"] is False
        assert request.getfixturevalue("fleet").updated == ["box-4090", "box-3090"]  # a reload
        assert machine_offers(b, box) == []
        assert api.put("/api/v0/machines/create_asks/", json=listing(box)).json()["success"]
        assert [o["num_gpus"] for o in machine_offers(b, box)] == [1]  # the free GPU again


def test_min_chunk_end_date_and_duration(api, hosted):
    box = hosted["box-4090"]
    r = api.put("/api/v0/machines/create_asks/", json=listing(box, min_chunk=2))
    assert r.status_code == 200
    assert [o["num_gpus"] for o in machine_offers(api, box)] == [2]
    end = time.time() + 10 * 86400
    api.put("/api/v0/machines/create_asks/", json=listing(box, end_date=end, min_chunk=None))
    assert machine_offers(api, box)[0]["end_date"] == pytest.approx(end)
    api.put("/api/v0/machines/create_asks/", json=listing(box, duration="2 weeks"))
    (o,) = [o for o in machine_offers(api, box) if o["num_gpus"] == 1]
    assert o["duration"] == pytest.approx(14 * 86400, abs=60)

    bad = {
        "end_date": (listing(box, end_date=1_000_000_000), "has passed"),
        "duration": (listing(box, duration="fortnight"), "'2 weeks'"),
        "min_bid": (listing(box, price_min_bid=5, price_gpu=1), "above the on-demand price"),
        "discount": (listing(box, credit_discount_max=0.3), "-r"),
        "volume": (listing(box, vol_size=100), "-v"),
        "negative": (listing(box, price_gpu=-1), "price_gpu must be"),
        "chunk": (listing(box, min_chunk=0), "min_chunk must be"),
        "unknown": ({**listing(box), "gpu_price": 1}, "unknown list machine field"),
        "text": (listing(box, price_gpu="cheap"), "price_gpu must be"),
    }
    for name, (body, words) in bad.items():
        r = api.put("/api/v0/machines/create_asks/", json=body)
        assert r.status_code == 400 and words in r.json()["msg"], (name, r.text)
    assert api.put("/api/v0/machines/create_asks/", json={}).status_code == 400  # no machine


def test_maintenance_ends_offers_warns_renters_and_stops_bids_while_it_lasts(api, bob, hosted, app):
    box = hosted["box-4090"]
    start = time.time() + 3 * 86400
    with bob.http() as b:
        bid = rented(b, next(o for o in machine_offers(b, box, type="bid") if o["num_gpus"] == 1)["id"],
                     image="busybox", price=0.1)
        wait_status(b, bid, "running")
        r = api.put(f"/api/v0/machines/{box}/dnotify/",
                    json={"client_id": "me", "sdate": start, "duration": 2.5,
                          "maintenance_category": "power"})
        assert r.status_code == 200 and r.json()["success"] is True
        assert [o["end_date"] for o in machine_offers(b, box)] == [pytest.approx(start)] * 2
        assert all(o["duration"] < 3 * 86400 for o in machine_offers(b, box))
        row = show(b, bid)
        assert "machine maintenance scheduled for" in row["status_msg"] and "(2.5 h)" in row["status_msg"]
        maints = api.get("/api/v0/machines/maintenances",
                         params={"owner": "me", "machine_ids": f"[{box}, 999]"}).json()
        assert maints == [{"machine_id": box, "start_time": start, "end_time": start + 2.5 * 3600,
                           "duration_hours": 2.5, "maintenance_category": "power"}]
        assert b.get("/api/v0/machines/maintenances", params={"machine_ids": f"[{box}]"}).json() == []

        # The window starts: the periodic job stops the bid (on-demand rentals are left alone).
        with transaction(app.state.sessions) as session:
            session.query(MachineMaintenance).one().start_time = time.time() - 1
            session.get(Machine, box).maint_start = time.time() - 1
        assert run_maintenance(app) == {bid}
        stopped = wait_status(b, bid, "stopped")
        assert "stopped for maintenance" in stopped["status_msg"] and stopped["intended_status"] == "running"
        assert "in progress until" in stopped["status_msg"]
        assert machine_offers(b, box) == []

        r = api.put(f"/api/v0/machines/{box}/cancel_maint/", json={"client_id": "me", "machine_id": box})
        assert r.status_code == 200 and "1 maintenance window(s)" in r.json()["msg"]
        resumed = wait_status(b, bid, "running")
        assert "maintenance" not in (resumed["status_msg"] or "")
        assert machine_offers(b, box) != []
        assert api.get("/api/v0/machines/maintenances").json() == []


def test_a_window_that_has_begun_stops_bids_at_once_and_bad_windows_are_refused(api, bob, hosted):
    box = hosted["box-4090"]
    with bob.http() as b:
        bid = rented(b, next(o for o in machine_offers(b, box, type="bid") if o["num_gpus"] == 1)["id"],
                     image="busybox", price=0.1)
        wait_status(b, bid, "running")
        r = api.put(f"/api/v0/machines/{box}/dnotify/", json={"sdate": time.time() - 60, "duration": 1})
        assert r.status_code == 200
        assert "stopped for maintenance" in wait_status(b, bid, "stopped")["status_msg"]
    for body, words in (({"sdate": time.time() - 7200, "duration": 1}, "has already ended"),
                        ({"duration": 1}, "sdate"), ({"sdate": time.time()}, "duration"),
                        ({"sdate": "12/31/2026", "duration": 1}, "epoch seconds"),
                        ({"sdate": time.time(), "duration": 0}, "duration must be"),
                        ({"sdate": time.time(), "duration": 1, "when": 1}, "unknown")):
        r = api.put(f"/api/v0/machines/{box}/dnotify/", json=body)
        assert r.status_code == 400 and words in r.json()["msg"], (body, r.text)
    r = api.put(f"/api/v0/machines/{box}/cancel_maint/", json={"machine_id": box + 1})
    assert r.status_code == 400 and "not the machine of the path" in r.json()["msg"]
    r = api.get("/api/v0/machines/maintenances", params={"machine_ids": '["x"]'})
    assert r.status_code == 400 and "not a machine id" in r.json()["msg"]
