"""Interruptible instances: a price makes a bid; on-demand rentals and higher bids preempt lower
bids at once, which resume by themselves when their GPUs are free again."""

from __future__ import annotations

import httpx
from test_instances_api import BODY, offers, rented

from instance_reads import wait_status

# The promise to users: a preempted or resumed bid reads so within a second.
settle = wait_status


def box_offer(client: httpx.Client, n: int, **filters) -> dict:
    return next(o for o in offers(client, **filters) if o["gpu_name"] == "RTX 4090" and o["num_gpus"] == n)


def test_a_bid_runs_and_is_marked_as_one(api, fleet):
    o = box_offer(api, 1, type="bid")
    assert o["min_bid"] == 0.05
    iid = rented(api, o["id"], image="busybox", price=0.1)
    row = settle(api, iid, "running")
    assert row["is_bid"] is True and row["bid_price"] == 0.1


def test_a_bid_below_the_minimum_is_refused(api, fleet):
    o = box_offer(api, 2, type="bid")
    r = api.put(f"/api/v0/asks/{o['id']}/", json={**BODY, "image": "busybox", "price": 0.09})
    assert r.status_code == 400 and r.json()["error"] == "bid_too_low"
    assert "0.1" in r.json()["msg"]  # 2 GPUs × 0.05


def test_bid_held_gpus_stay_on_offer_and_on_demand_preempts_then_bid_resumes(api, bob, fleet):
    bid = rented(api, box_offer(api, 1, type="bid")["id"], image="busybox", price=0.1)
    settle(api, bid, "running")
    whole = box_offer(api, 2)  # both GPUs, one held only by the bid
    assert whole["rented"] is False
    with bob.http() as b:
        on_demand = rented(b, whole["id"], image="busybox")
        preempted = settle(api, bid, "stopped")
        assert "outbid" in preempted["status_msg"]
        assert preempted["intended_status"] == "running"
        assert b.request("DELETE", f"/api/v0/instances/{on_demand}/", json={}).json()["success"]
    resumed = settle(api, bid, "running")
    assert "outbid" not in (resumed["status_msg"] or "")


def test_a_higher_bid_preempts_an_equal_bid_is_refused_and_change_bid_wins_back(api, bob, fleet):
    low = rented(api, box_offer(api, 1, type="bid")["id"], image="busybox", price=0.1)
    with bob.http() as b:
        whole = box_offer(b, 2, type="bid")
        equal = b.put(f"/api/v0/asks/{whole['id']}/", json={**BODY, "image": "busybox", "price": 0.1})
        assert equal.status_code == 409 and "outbid" in equal.json()["msg"]
        high = rented(b, whole["id"], image="busybox", price=0.5)
        settle(b, high, "running")
        assert "outbid" in settle(api, low, "stopped")["status_msg"]

        too_low = api.put(f"/api/v0/instances/bid_price/{low}/", json={"client_id": "me", "price": 0.01})
        assert too_low.status_code == 400
        r = api.put(f"/api/v0/instances/bid_price/{low}/", json={"client_id": "me", "price": 0.6})
        assert r.status_code == 200 and r.json()["success"]
        assert settle(api, low, "running")["bid_price"] == 0.6
        assert "outbid" in settle(b, high, "stopped")["status_msg"]


def test_a_stopped_bid_does_not_compete_and_on_demand_has_no_bid(api, fleet):
    bid = rented(api, box_offer(api, 1, type="bid")["id"], image="busybox", price=0.1)
    api.put(f"/api/v0/instances/{bid}/", json={"state": "stopped"})
    row = settle(api, bid, "stopped")
    assert row["status_msg"] == "stopped"
    od = rented(api, box_offer(api, 1)["id"], image="busybox")
    r = api.put(f"/api/v0/instances/bid_price/{od}/", json={"client_id": "me", "price": 1})
    assert r.status_code == 400 and "on-demand" in r.json()["msg"]


def test_an_offer_whose_gpus_a_bid_took_says_a_bid_holds_them(api, bob, fleet):
    """Offers list idle GPUs first: once a bid holds the single-GPU offer's GPU, that offer is
    replaced by one naming the idle GPU. Renting the old one is refused, and the message says a
    bid holds its GPUs (not that they were rented)."""
    seen = box_offer(api, 1, type="bid")
    rented(api, seen["id"], image="busybox", price=0.2)
    with bob.http() as b:
        r = b.put(f"/api/v0/asks/{seen['id']}/", json={**BODY, "image": "busybox", "price": 0.1})
    assert r.status_code == 409 and r.json()["error"] == "offer_unavailable"
    assert "a bid of $0.2/hour holds its GPUs" in r.json()["msg"] and "rented" not in r.json()["msg"]
