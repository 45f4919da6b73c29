"""Offer searches over raw HTTP: the wire shapes of VAST-WIRE §4 and §7."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import select

from gpuyard.query import OFFER_FIELDS, VOLUME_FIELDS
from gpuyard.services.market import allocation, fleet
from gpuyard.store.db import transaction
from gpuyard.store.models import Instance, Machine

BASE = {
    "cpu_cores": 32, "cpu_ram": 128, "disk_space": 2000, "inet_down": 1000, "inet_up": 800,
    "storage_cost": 0.10, "reliability": 0.995, "verified": True, "direct_port_count": 200,
    "runtime": "simulated",
}
FLEET = {"machines": [
    {**BASE, "hostname": "box-4090", "gpu_name": "RTX 4090", "num_gpus": 8, "gpu_ram": 24,
     "dph_per_gpu": 0.40, "min_bid_per_gpu": 0.10, "geolocation": "US"},
    {**BASE, "hostname": "box-3090", "gpu_name": "RTX 3090", "num_gpus": 1, "gpu_ram": 24,
     "dph_per_gpu": 0.20, "min_bid_per_gpu": 0.05, "geolocation": "SE", "disk_space": 300,
     "storage_cost": 0.05, "driver_version": "535.86.05", "cuda_max_good": 12.2},
    {**BASE, "hostname": "box-h100", "gpu_name": "H100 SXM", "num_gpus": 2, "gpu_ram": 80,
     "dph_per_gpu": 2.50, "min_bid_per_gpu": 1.00, "geolocation": "TW", "verified": False,
     "reliability": 0.95},
]}
DEFAULTS = {"verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True}}
WIRE_INTS = {"id", "ask_contract_id", "bundle_id", "machine_id", "host_id", "num_gpus", "cpu_cores",
             "direct_port_count", "pci_gen", "compute_cap", "hosting_type"}


@pytest.fixture
def loaded(app) -> fleet.FleetResult:
    with transaction(app.state.sessions) as s:
        return fleet.load_fleet(s, FLEET)


def search(api: httpx.Client, filters: dict | None = None, **control) -> list[dict]:
    r = api.post("/api/v0/bundles/", json={**(filters or {}), **control})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"  # the official CLI checks exactly
    body = r.json()
    assert body["success"] is True
    return body["offers"]


def shape(rows: list[dict]) -> list[tuple[str, int]]:
    return [(r["gpu_name"], r["num_gpus"]) for r in rows]


def test_bundles_of_every_machine_in_wire_units(api, loaded):
    rows = search(api, {}, order=[["num_gpus", "asc"], ["machine_id", "asc"]])
    assert sorted(shape(rows)) == sorted([("RTX 4090", n) for n in (1, 2, 4, 8)]
                                         + [("RTX 3090", 1)] + [("H100 SXM", n) for n in (1, 2)])
    four = next(r for r in rows if r["gpu_name"] == "RTX 4090" and r["num_gpus"] == 4)
    assert four["gpu_ram"] == 24000 and four["gpu_total_ram"] == 96000  # MB
    assert four["cpu_ram"] == 128000 and four["cpu_cores_effective"] == 16.0
    assert four["gpu_frac"] == 0.5 and four["disk_space"] == 2000
    assert four["dph_base"] == pytest.approx(1.60)
    assert four["dph_total"] == pytest.approx(1.60 + 0.10 * 5 / 720)  # 5 GB of storage by default
    assert four["min_bid"] == pytest.approx(0.40)
    assert four["driver_version"] == "550.54.15" and four["cuda_max_good"] == 12.4
    assert four["verification"] == "verified" and four["rentable"] is True
    assert four["rented"] is False and four["external"] is False and four["is_bid"] is False
    assert 89 * 86400 < four["duration"] <= 90 * 86400
    assert four["hostname"] == "box-4090" and four["cluster_id"] is None
    assert four["dlperf_per_dphtotal"] == pytest.approx(four["dlperf"] / four["dph_total"])
    assert four["score"] == pytest.approx(four["dlperf_per_dphtotal"] * 0.995)
    for row in rows:
        assert set(OFFER_FIELDS.fields) <= set(row)
        for key, value in row.items():
            assert not isinstance(value, str) or OFFER_FIELDS.fields.get(key) is None \
                or OFFER_FIELDS.fields[key].type == "str" or key == "driver_version", key
            if key in WIRE_INTS:
                assert type(value) is int, key


def test_default_order_is_score_desc_and_limit(api, loaded):
    rows = search(api, {})
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert len(search(api, {}, limit=3)) == 3
    cheapest = search(api, {}, order=[["dph_total", "asc"]], limit=2)
    assert [r["hostname"] for r in cheapest] == ["box-3090", "box-4090"]
    by_alias = search(api, {}, order=[["dph", "asc"]], limit=2)  # the client's -o 'dph+'
    assert [r["id"] for r in by_alias] == [r["id"] for r in cheapest]


def test_official_cli_body_with_aliases_multipliers_and_strings(api, loaded):
    body = {
        **DEFAULTS, "reliability": {"gt": "0.98"}, "num_gpus": {"eq": "1"},
        "gpu_name": {"eq": "RTX 3090", "notin": ["RTX 4090"]}, "cpu_ram": {"gte": 16000.0},
        "gpu_ram": {"gt": 10000.0}, "duration": {"gt": 172800.0}, "cuda_max_good": {"gte": "12.1"},
        "driver_version": {"gte": 535086005}, "dph_total": {"lt": "0.5"},
        "geolocation": {"in": ["TW", "SE"]},
        "order": [["num_gpus", "desc"], ["dph_total", "asc"], ["score", "asc"]],
        "type": "on-demand", "limit": 5, "allocated_storage": 20.0,
    }
    [row] = search(api, body)
    assert row["hostname"] == "box-3090"
    assert row["dph_total"] == pytest.approx(0.20 + 0.05 * 20 / 720)


@pytest.mark.parametrize(
    ("filters", "hosts"),
    [
        ({"dph": {"lt": 0.3}}, {"box-3090"}),
        ({"cuda_vers": {"lt": "12.3"}}, {"box-3090"}),
        ({"gpu_ram": {"gte": 40000}}, {"box-h100"}),
        ({"gpu_total_ram": {"gte": 160000}}, {"box-4090", "box-h100"}),
        ({"driver_version": {"lt": "550.0.0"}}, {"box-3090"}),
        ({"driver_version": {"eq": 550054015}}, {"box-4090", "box-h100"}),
        ({"geolocation": {"in": ["US", "TW"]}}, {"box-4090", "box-h100"}),
        ({"geolocation": {"notin": ["US", "TW"]}}, {"box-3090"}),
        ({"verified": {"eq": False}}, {"box-h100"}),
        ({"verification": {"eq": "unverified"}}, {"box-h100"}),
        ({"num_gpus": {"gte": "4"}}, {"box-4090"}),
        ({"compute_cap": {"gte": 900}}, {"box-h100"}),
        ({"reliability": {"gt": 0.99}}, {"box-4090", "box-3090"}),
        ({"disk_space": {"lt": 1000}}, {"box-3090"}),
        ({"gpu_name": {"eq": "RTX 4090"}, "num_gpus": {"eq": 3}}, set()),
    ],
)
def test_filters(api, loaded, filters, hosts):
    assert {r["hostname"] for r in search(api, filters)} == hosts


def test_every_offer_field_can_be_filtered_and_sorted(api, loaded):
    for name in OFFER_FIELDS.filter_names:
        rows = search(api, {name: {"neq": None}}, order=[[name, "desc"]], limit=2)
        assert isinstance(rows, list), name
    for name in VOLUME_FIELDS.fields:
        body = {"order": [[name, "asc"]]}
        if name in VOLUME_FIELDS.filter_names:
            body[name] = {"neq": None}
        r = api.post("/api/v0/volumes/search/", json=body)
        assert r.status_code == 200, (name, r.text)


def test_bid_search_prices_with_the_minimum_bid(api, loaded):
    [row] = search(api, {"gpu_name": {"eq": "RTX 4090"}, "num_gpus": {"eq": 2}}, type="bid",
                   allocated_storage=0)
    assert row["is_bid"] is True
    assert row["dph_total"] == pytest.approx(0.20) and row["dph_base"] == pytest.approx(0.80)
    # dph filters compare the bid price in a bid search
    assert {r["hostname"] for r in search(api, {"dph": {"lt": 0.3}}, type="bid")} == {
        "box-4090", "box-3090"}
    reserved = search(api, {"gpu_name": {"eq": "RTX 3090"}}, type="reserved")
    assert reserved[0]["dph_total"] == pytest.approx(0.20 + 0.05 * 5 / 720)


def test_allocated_storage_needs_free_disk_and_adds_its_cost(api, loaded):
    assert {r["hostname"] for r in search(api, {}, allocated_storage=500)} == {"box-4090",
                                                                              "box-h100"}
    [row] = search(api, {"gpu_name": {"eq": "RTX 3090"}}, allocated_storage="144")
    assert row["dph_total"] == pytest.approx(0.20 + 0.05 * 144 / 720)


def test_disable_bundling_shows_whole_machines(api, loaded):
    rows = search(api, {}, disable_bundling=True, target_reliability=0.9, extra_ids=[])
    assert sorted(shape(rows)) == [("H100 SXM", 2), ("RTX 3090", 1), ("RTX 4090", 8)]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"gpu_rma": {"gte": 1}}, "unknown field 'gpu_rma'"),
        ({"num_gpus": {"gt": "two"}}, '"two" is not a number'),
        ({"num_gpus": {"like": 1}}, "unknown operator"),
        ({"score": {"gt": 1}}, "only be used to sort"),
        ({"order": [["bogus", "asc"]]}, "cannot sort offers by unknown field 'bogus'"),
        ({"type": "spot"}, "type must be one of on-demand, reserved, bid"),
        ({"limit": 0}, "limit must be a whole number"),
        ({"allocated_storage": "lots"}, "allocated_storage must be a number"),
        ({"disable_bundling": "yes"}, "disable_bundling must be true or false"),
    ],
)
def test_bad_searches_are_400_with_a_message(api, loaded, body, needle):
    r = api.post("/api/v0/bundles/", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["success"] is False and needle in r.json()["msg"]


def test_searching_needs_an_api_key(live_server, loaded):
    r = httpx.post(f"{live_server}/api/v0/bundles/", json={})
    assert r.status_code == 401 and r.json()["msg"]


def test_new_search_endpoint(api, loaded):
    body = {"select_cols": ["*"], "q": {**DEFAULTS, "num_gpus": {"eq": "2"},
                                        "order": [["score", "desc"]], "type": "bid",
                                        "allocated_storage": 5.0}}
    r = api.put("/api/v0/search/asks/", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    rows = r.json()["offers"]
    assert shape(rows) == [("RTX 4090", 2)] and rows[0]["is_bid"] is True
    r = api.put("/api/v0/search/asks", json={"select_cols": ["id", "dph_total"], "q": {}})
    assert r.status_code == 200 and all(set(o) == {"id", "dph_total"} for o in r.json()["offers"])
    r = api.put("/api/v0/search/asks/", json={"q": {}, "num_gpus": {"eq": 1}})
    assert r.status_code == 400 and "inside \"q\"" in r.json()["msg"]


def test_volume_offers(api, loaded):
    body = {"verified": {"eq": True}, "external": {"eq": False}, "disk_space": {"gte": 1, "gt": "50"},
            "inet_up": {"gt": "500"}, "cuda_vers": {"gte": "12"}, "duration": {"gt": 86400.0},
            "order": [["storage_cost", "asc"], ["disk_space", "desc"]], "limit": 3,
            "allocated_storage": 1.0}
    r = api.post("/api/v0/volumes/search/", json=body)
    assert r.status_code == 200, r.text
    rows = r.json()["offers"]
    assert [v["hostname"] for v in rows] == ["box-3090", "box-4090"]  # box-h100 is unverified
    v = rows[0]
    for key in ("id", "cuda_max_good", "cpu_ghz", "disk_bw", "disk_space", "disk_name",
                "storage_cost", "driver_version", "inet_up", "inet_down", "reliability",
                "duration", "machine_id", "verification", "host_id", "geolocation", "external"):
        assert key in v, key
    assert v["disk_space"] == 300 and v["storage_cost"] == 0.05 and v["driver_version"] == "535.86.05"
    assert isinstance(v["cuda_max_good"], float) and v["verification"] == "verified"
    big = api.post("/api/v0/volumes/search/", json={"allocated_storage": 1000})
    assert {o["hostname"] for o in big.json()["offers"]} == {"box-4090", "box-h100"}
    bad = api.post("/api/v0/volumes/search/", json={"type": "bid"})
    assert bad.status_code == 400 and "unknown field 'type'" in bad.json()["msg"]


def test_gpu_names(live_server, loaded):
    r = httpx.get(f"{live_server}/api/v0/gpu_names/unique/")  # no API key needed
    assert r.status_code == 200 and r.json() == {"gpu_names": ["H100 SXM", "RTX 3090", "RTX 4090"]}


def test_renting_a_gpu_changes_the_offers(app, api, loaded, alice):
    [one] = search(api, {"gpu_name": {"eq": "RTX 4090"}, "num_gpus": {"eq": 1}})
    with transaction(app.state.sessions) as s:
        machine = allocation.lock_machine(
            s, s.scalar(select(Machine.id).where(Machine.hostname == "box-4090")))
        now = time.time()
        s.add(Instance(owner_id=alice.id, machine_id=machine.id, gpus="0", num_gpus=1,
                       is_bid=False, dph_base=0.40, storage_cost=0.10, image="busybox",
                       tag="latest", disk_space=100.0, runtime="simulated", start_date=now,
                       created_at=now, updated_at=now))
        s.flush()
        allocation.refresh_machine(s, machine)
    rows = search(api, {"gpu_name": {"eq": "RTX 4090"}})
    assert one["id"] not in {r["id"] for r in rows}
    assert sorted(r["num_gpus"] for r in rows) == [1, 2, 4, 7]  # 7 GPUs left
    assert all(r["disk_space"] == 1900 for r in rows)  # the instance's disk is taken
