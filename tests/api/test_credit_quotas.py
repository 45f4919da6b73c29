"""Credit (with ``--credit``: launches and starts need a positive balance; the periodic job
stops what runs when it reaches zero) and quotas (GPUs, $/hour, volume GB), shown in
``show user``; parallel launches cannot slip past a quota together."""

from __future__ import annotations

import dataclasses
import functools
import threading

import httpx
import pytest
from test_instances_api import offer, offers, rent, rented

from gpuyard.accounting import run_out_of_credit
from gpuyard.api.app import create_app
from gpuyard.periodic import claim
from gpuyard.services.ledger import billing
from gpuyard.services.market.fleet import load_fleet, parse_yaml
from gpuyard.settings import Settings
from gpuyard.store.db import transaction
from instance_reads import show, wait_status
from serving import serving
from usage_clock import HOUR, controlled, credit_enforced

settle = functools.partial(wait_status, timeout=2.0)


@pytest.fixture
def clock(app):
    with controlled(app) as c:
        yield c


@pytest.fixture
def credit(app):
    with credit_enforced(app):
        yield


def grant(app, name: str, amount: float) -> dict:
    with transaction(app.state.sessions) as session:
        return billing.grant_credit(session, name, amount)


def quota(app, name: str, **limits) -> dict:
    with transaction(app.state.sessions) as session:
        return billing.set_quota(session, name, **limits)


def refused(r: httpx.Response, code: str) -> str:
    assert r.status_code == 403, r.text
    assert r.json()["error"] == code, r.text
    return r.json()["msg"]


def start(client, iid: int) -> httpx.Response:
    return client.put(f"/api/v0/instances/{iid}/", json={"state": "running"})


# -- credit --------------------------------------------------------------------------------------
def test_without_credit_enforced_anyone_launches_and_the_balance_goes_negative(api, fleet, clock):
    iid = rented(api, offer(api)["id"], image="busybox", disk=10)
    settle(api, iid, "running")
    clock.advance(HOUR)
    me = api.get("/api/v0/users/current").json()
    assert me["credit_enforced"] is False and me["can_pay"] is True
    assert me["balance"] == pytest.approx(-0.40 - 10 * 0.1 / 720, abs=1e-5)
    assert me["dph"] == pytest.approx(0.40 + 10 * 0.1 / 720, abs=1e-5)


def test_launching_starting_and_volumes_need_a_positive_balance(api, app, fleet, clock, credit):
    msg = refused(rent(api, offer(api)["id"], image="busybox"), "no_credit")
    assert msg == ("your account has no credit left (balance $0.00): you need a positive balance "
                   "to launch or start instances. Ask the operator for credit")
    ask = api.post("/api/v0/volumes/search/", json={}).json()["offers"][0]
    msg = refused(api.put("/api/v0/volumes/", json={"id": ask["id"], "size": 10}), "no_credit")
    assert "to create a volume" in msg
    assert api.get("/api/v0/users/current").json()["can_pay"] is False

    grant(app, "alice", 1.0)
    iid = rented(api, offer(api)["id"], image="busybox", disk=10)
    assert api.get("/api/v0/users/current").json()["can_pay"] is True
    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"}).status_code == 200
    clock.advance(HOUR)
    grant(app, "alice", -1.0)  # a correction takes it back: the balance is below zero now
    msg = refused(start(api, iid), "no_credit")
    assert "balance -$0.00" in msg
    r = api.put(f"/api/v0/instances/reboot/{iid}/", json={})  # rebooting a stopped one starts it
    refused(r, "no_credit")
    assert show(api, iid)["intended_status"] == "stopped"


def test_the_job_stops_what_runs_when_the_credit_is_gone_and_credit_lets_it_start_again(
        api, app, fleet, clock, credit):
    grant(app, "alice", 1.0)
    iid = rented(api, offer(api)["id"], image="busybox", disk=10)  # $0.40/hour + disk
    settle(api, iid, "running")
    clock.advance(2 * HOUR)
    assert run_out_of_credit(app) == []  # $0.20 left
    clock.advance(HOUR)  # now below zero
    assert run_out_of_credit(app) == [iid]
    row = settle(api, iid, "stopped")
    assert row["status_msg"] == "out of credit" and row["intended_status"] == "stopped"
    assert run_out_of_credit(app) == []  # nothing left to stop
    refused(start(api, iid), "no_credit")
    app.state.reconciler.sweep(everything=True)  # the runtime's report does not hide the reason
    assert show(api, iid)["status_msg"] == "out of credit"

    grant(app, "alice", 5.0)
    assert start(api, iid).status_code == 200
    row = settle(api, iid, "running")
    assert row["status_msg"] != "out of credit"
    clock.advance(HOUR)
    assert run_out_of_credit(app) == []
    me = api.get("/api/v0/users/current").json()
    assert me["balance"] == pytest.approx(6 - 4 * (0.40 + 10 * 0.1 / 720), abs=1e-4)


def test_a_server_with_credit_runs_the_job_by_itself(app, alice, fleet, db_url, data_dir):
    settings = Settings.build(db_url=db_url, sim_boot_seconds=0, data_dir=data_dir, credit=True)
    app.state.reconciler.stop()  # this test's server drives the instance alone
    try:
        server = create_app(dataclasses.replace(settings, billing_seconds=0.1))
        with controlled(server) as clock, serving(server) as url:
            grant(server, "alice", 1.0)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {alice.key}"}) as client:
                iid = rented(client, offer(client)["id"], image="busybox")
                settle(client, iid, "running")
                clock.advance(3 * HOUR)  # $1.20 of GPU time: the next run of the job stops it
                row = settle(client, iid, "stopped")
                assert row["status_msg"] == "out of credit"
        server.state.engine.dispose()
    finally:
        app.state.reconciler.start()


def test_the_job_does_nothing_unless_credit_is_enforced(api, fleet, app, clock):
    iid = rented(api, offer(api)["id"], image="busybox")
    clock.advance(10 * HOUR)
    assert run_out_of_credit(app) == []
    assert show(api, iid)["intended_status"] == "running"


def test_one_run_per_period_across_processes(app):
    assert claim(app.state.sessions, "job", 30, "one", now=1000)
    assert not claim(app.state.sessions, "job", 30, "two", now=1010)
    assert claim(app.state.sessions, "job", 30, "two", now=1030)
    assert not claim(app.state.sessions, "job", 30, "one", now=1031)


# -- quotas --------------------------------------------------------------------------------------
def test_show_user_reports_quota_and_use(api, app, fleet):
    me = api.get("/api/v0/users/current").json()
    assert me["quota"] == {"max_gpus": None, "max_dph": None, "max_volume_gb": None}
    assert me["in_use"] == {"gpus": 0, "dph": 0, "volume_gb": 0}
    quota(app, "alice", max_gpus=2, max_dph=1.5, max_volume_gb=100)
    rented(api, offer(api)["id"], image="busybox", disk=10)
    me = api.get("/api/v0/users/current").json()
    assert me["quota"] == {"max_gpus": 2, "max_dph": 1.5, "max_volume_gb": 100}
    assert me["in_use"]["gpus"] == 1 and me["in_use"]["dph"] == pytest.approx(0.40139, abs=1e-5)
    cleared = quota(app, "alice", clear=True)
    assert cleared["quota"] == {"max_gpus": None, "max_dph": None, "max_volume_gb": None}


def test_gpu_quota_counts_instances_that_run_or_want_to(api, app, fleet):
    quota(app, "alice", max_gpus=1)
    first = rented(api, offer(api)["id"], image="busybox")
    msg = refused(rent(api, offer(api, "RTX 3090")["id"], image="busybox"), "quota_exceeded")
    assert msg.startswith("quota exceeded: max_gpus is 1; you use 1 GPU") and "needs 1 more" in msg
    api.put(f"/api/v0/instances/{first}/", json={"state": "stopped"})
    second = rented(api, offer(api, "RTX 3090")["id"], image="busybox")  # a stopped one does not count
    refused(start(api, first), "quota_exceeded")
    # bulk: the offers over the quota are reported one by one, the others are made
    api.request("DELETE", f"/api/v0/instances/{second}/", json={})
    api.request("DELETE", f"/api/v0/instances/{first}/", json={})
    ids = [o["id"] for o in offers(api) if o["num_gpus"] == 1]
    r = api.post("/api/v0/asks/bulk/", json={"ids": ids, "image": "busybox"})
    assert r.status_code == 200, r.text
    assert len(r.json()["new_contracts"]) == 1
    assert {e["error"] for e in r.json()["errors"]} == {"quota_exceeded"}


def test_dph_quota_covers_launches_and_bid_raises(api, app, fleet):
    quota(app, "alice", max_dph=0.5)
    msg = refused(rent(api, offer(api, n=2)["id"], image="busybox", disk=10), "quota_exceeded")
    assert "max_dph is $0.5/hour" in msg and "adds $0.8014/hour" in msg
    box = next(o for o in offers(api, type="bid") if o["gpu_name"] == "RTX 3090")
    bid = rented(api, box["id"], image="busybox", disk=10, price=0.1)
    r = api.put(f"/api/v0/instances/bid_price/{bid}/", json={"client_id": "me", "price": 0.6})
    assert "max_dph" in refused(r, "quota_exceeded")
    r = api.put(f"/api/v0/instances/bid_price/{bid}/", json={"client_id": "me", "price": 0.3})
    assert r.status_code == 200, r.text
    r = api.put(f"/api/v0/instances/bid_price/{bid}/", json={"client_id": "me", "price": 0.05})
    assert r.status_code == 200, r.text  # lowering is always fine


def test_volume_quota_covers_volumes_and_volumes_made_at_launch(api, app, fleet):
    quota(app, "alice", max_volume_gb=20)
    asks = api.post("/api/v0/volumes/search/", json={"order": [["id", "asc"]]}).json()["offers"]
    assert api.put("/api/v0/volumes/", json={"id": asks[0]["id"], "size": 15}).status_code == 200
    msg = refused(api.put("/api/v0/volumes/", json={"id": asks[0]["id"], "size": 10}), "quota_exceeded")
    assert "max_volume_gb is 20 GB; your volumes use 15 GB and this adds 10 GB" in msg
    gpu = offer(api)
    ask = next(a for a in asks if a["machine_id"] == gpu["machine_id"])
    r = rent(api, gpu["id"], image="busybox", volume_info={
        "create_new": True, "volume_id": ask["id"], "size": 10, "mount_path": "/data"})
    refused(r, "quota_exceeded")


def test_quota_values_are_checked(app, alice):
    with pytest.raises(Exception) as info:
        quota(app, "alice", max_gpus=-1)
    assert "max_gpus must be 0 or more" in str(info.value)
    with pytest.raises(Exception) as info:
        grant(app, "alice", float("nan"))
    assert "non-zero number" in str(info.value)


SINGLES = "machines:\n" + "".join(f"""
  - hostname: single-{i}
    gpu_name: RTX 4090
    num_gpus: 1
    gpu_ram: 24
    cpu_cores: 8
    cpu_ram: 32
    disk_space: 200
    inet_down: 1000
    inet_up: 800
    dph_per_gpu: 0.40
    min_bid_per_gpu: 0.05
""" for i in range(8))


def test_eight_parallel_launches_against_a_one_gpu_quota_one_wins(app, alice):
    with transaction(app.state.sessions) as session:
        load_fleet(session, parse_yaml(SINGLES))
    quota(app, "alice", max_gpus=1)
    with alice.http() as client:
        ids = [o["id"] for o in offers(client) if o["num_gpus"] == 1]
    assert len(ids) == 8  # eight offers: nothing but the quota stands between them
    barrier = threading.Barrier(8)
    answers: list[httpx.Response] = []

    def launch(offer_id: int) -> None:
        with alice.http() as client:
            barrier.wait()
            answers.append(rent(client, offer_id, image="busybox"))

    threads = [threading.Thread(target=launch, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r.status_code for r in answers) == [200] + [403] * 7, [r.text for r in answers]
    assert {r.json()["error"] for r in answers if r.status_code == 403} == {"quota_exceeded"}
    with alice.http() as client:
        assert client.get("/api/v0/users/current").json()["in_use"]["gpus"] == 1
