"""The invoice calls of VAST-WIRE §17 through the raw API: the legacy invoices (charges and
payments, windows, inc_charges), invoices-v1's charges (per instance or volume and day, with
parts, filters and pages) and invoices (credit entries), contracts by label, the usage report,
and the errors for arguments that do not fit."""

from __future__ import annotations

import json

import pytest
from test_instances_api import offer, rented

from gpuyard.services.ledger import billing
from gpuyard.store.db import transaction
from usage_clock import HOUR, T0, controlled

DAY = 24 * HOUR


@pytest.fixture
def run(app, api, fleet, bob):
    """Alice: an instance labelled "train" running 2026-01-01 00:00-03:00, a volume from 01:00
    to 2026-01-02 01:00, $10 of credit on 2026-01-01 00:30; bob: an instance for 5 hours.
    The clock then reads 2026-01-02 06:00."""
    with controlled(app) as clock:
        iid = rented(api, offer(api)["id"], image="busybox", disk=10, label="train")
        with bob.http() as b:
            other = rented(b, offer(b, "RTX 3090")["id"], image="busybox", disk=10)
        clock.advance(HOUR / 2)
        with transaction(app.state.sessions) as session:
            billing.grant_credit(session, "alice", 10, "welcome")
        clock.advance(HOUR / 2)
        ask = next(a for a in api.post("/api/v0/volumes/search/", json={}).json()["offers"])
        volume = api.put("/api/v0/volumes/", json={"id": ask["id"], "size": 72}).json()["volume_id"]
        clock.advance(2 * HOUR)
        api.request("DELETE", f"/api/v0/instances/{iid}/", json={})
        clock.advance(2 * HOUR)
        with bob.http() as b:
            b.request("DELETE", f"/api/v0/instances/{other}/", json={})
        clock.t = T0 + DAY + HOUR
        assert api.delete("/api/v0/volumes/", params={"id": volume}).status_code == 200
        clock.t = T0 + DAY + 6 * HOUR
        yield {"instance": iid, "volume": volume, "other": other, "clock": clock,
               "machines": fleet.machine_ids}


def get(api, path: str, **params):
    params = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
    return api.get(path, params=params)


def test_legacy_invoices_list_charges_and_payments_in_the_window(api, run):
    r = get(api, "/api/v0/users/me/invoices", owner="me", sdate=T0, edate=T0 + 2 * DAY, inc_charges="true")
    assert r.status_code == 200, r.text
    body = r.json()
    payments = [row for row in body["invoices"] if row["type"] == "payment"]
    assert payments == [{"id": payments[0]["id"], "type": "payment", "timestamp": T0 + HOUR / 2,
                         "amount": -10.0, "quantity": 1.0, "rate": -10.0,
                         "description": "credit from the operator: welcome", "instance_id": None,
                         "volume_id": None, "day": None}]
    charges = [row for row in body["invoices"] if row["type"] == "charge"]
    gpu = [c for c in charges if c["instance_id"] == run["instance"] and "GPU" in c["description"]]
    assert [(c["quantity"], c["rate"], c["amount"]) for c in gpu] == [(3.0, 0.4, pytest.approx(1.2))]
    box = run["machines"]["box-4090"]
    assert gpu[0]["description"] == f"instance {run['instance']} (train): GPU time, 1 GPU on machine {box}"
    storage = [c for c in charges if c["volume_id"] == run["volume"]]
    assert [(c["day"], c["quantity"]) for c in storage] == [(T0, pytest.approx(23.0)),
                                                            (T0 + DAY, pytest.approx(1.0))]
    assert all(c["instance_id"] != run["other"] for c in charges)  # bob's are not alice's
    assert body["current"]["charges"] == pytest.approx(1.2 + 3 * 10 * 0.1 / 720 + 24 * 0.01, abs=1e-5)
    assert body["current"]["balance"] == pytest.approx(10 - body["current"]["charges"], abs=1e-5)

    only_payments = get(api, "/api/v0/users/me/invoices", owner="me", sdate=T0, edate=T0 + 2 * DAY,
                        inc_charges="false").json()["invoices"]
    assert [row["type"] for row in only_payments] == ["payment"]
    default = get(api, "/api/v0/users/me/invoices").json()["invoices"]  # the last 24 hours:
    assert [(row["volume_id"], row["quantity"]) for row in default] == [  # the instance ended before
        (run["volume"], pytest.approx(18.0)), (run["volume"], pytest.approx(1.0))]


def test_charges_v1_per_subject_and_day_with_parts_filters_and_pages(api, run):
    window = {"day": {"gte": int(T0), "lte": int(T0 + DAY)}}
    r = get(api, "/api/v0/charges/", select_filters=window, latest_first="false", limit=20, format="tree")
    assert r.status_code == 200, r.text
    page = r.json()
    assert (page["count"], page["total"], page["next_token"]) == (3, 3, None)
    first = page["results"][0]
    assert first["source"] == f"instance-{run['instance']}" and first["type"] == "instance"
    assert (first["start"], first["end"]) == (int(T0), int(T0 + 3 * HOUR))
    assert [i["type"] for i in first["items"]] == ["gpu", "disk"]
    assert first["amount"] == pytest.approx(sum(i["amount"] for i in first["items"]), abs=1e-5)
    assert first["metadata"] == {"instance_id": run["instance"]}
    assert [(r["type"], r["start"]) for r in page["results"][1:]] == [("volume", int(T0)),
                                                                      ("volume", int(T0 + DAY))]

    volumes = get(api, "/api/v0/charges/", select_filters={**window, "type": {"in": ["volume"]}}).json()
    assert {r["type"] for r in volumes["results"]} == {"volume"}
    latest = get(api, "/api/v0/charges/", select_filters=window, latest_first="true", limit=1).json()
    assert (latest["count"], latest["total"], latest["next_token"]) == (1, 3, "1")
    assert latest["results"][0]["start"] == int(T0 + DAY)
    second = get(api, "/api/v0/charges/", select_filters=window, latest_first="true", limit=1,
                 after_token="1").json()
    assert second["results"][0]["start"] == int(T0) and second["next_token"] == "2"
    assert get(api, "/api/v0/charges/").json()["total"] == 3  # the 7 days up to now


def test_invoices_v1_are_the_credit_entries(api, run):
    r = get(api, "/api/v1/invoices/", select_filters={"when": {"gte": int(T0), "lte": int(T0 + DAY)}})
    assert r.status_code == 200, r.text
    [entry] = r.json()["results"]
    assert entry["amount"] == -10.0 and entry["type"] == "credit" and entry["source"] == "operator"
    assert entry["metadata"]["invoice_id"] and entry["start"] == int(T0 + HOUR / 2)
    stripe = get(api, "/api/v1/invoices/", select_filters={"service": {"in": ["stripe_payments"]}})
    assert stripe.json()["results"] == []


def test_contracts_by_label(api, run):
    r = api.post("/api/v0/contracts/fetch/", json={"label": "train",
                                                   "contract_ids": [run["instance"], run["other"]]})
    assert r.status_code == 200, r.text
    assert r.json()["contracts"] == [{"id": run["instance"], "label": "train"}]


def test_usage_report_groups_and_admins_see_everyone(api, run, make_account):
    r = get(api, "/api/v0/usage/", by="label", since="2026-01-01", until=T0 + 2 * DAY)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["everyone"] is False
    keys = {row["key"]: row for row in body["rows"]}
    assert set(keys) == {"train", "(no label)"}  # the instance, and the unnamed volume
    assert keys["train"]["gpu_hours"] == 3 and keys["train"]["gpu_cost"] == pytest.approx(1.2)
    assert keys["(no label)"]["disk_gb_hours"] == pytest.approx(72 * 24)
    assert body["total"]["cost"] == pytest.approx(sum(row["cost"] for row in body["rows"]), abs=1e-5)
    assert {d["day"] for d in body["days"]} == {T0, T0 + DAY}

    admin = make_account("root", admin=True)
    with admin.http() as root:
        users = get(root, "/api/v0/usage/", by="user", since=T0).json()
        assert users["everyone"] is True
        assert {row["key"] for row in users["rows"]} == {"alice", "bob"}
        machines = get(root, "/api/v0/usage/", by="machine", since=T0).json()
        assert {row["key"] for row in machines["rows"]} == {
            f"{host} (machine {ident})" for host, ident in run["machines"].items()}


@pytest.mark.parametrize(("path", "params", "words"), [
    ("/api/v0/users/me/invoices", {"sdate": "soon"}, "sdate must be epoch seconds"),
    ("/api/v0/users/me/invoices", {"sdate": 2000, "edate": 1000}, "edate (1000) is before sdate"),
    ("/api/v0/users/me/invoices", {"inc_charges": "maybe"}, "inc_charges must be true or false"),
    ("/api/v0/users/me/invoices", {"sdate": ""}, "sdate must be epoch seconds"),
    ("/api/v0/users/me/invoices", {"owner": "bob"}, "owner"),
    ("/api/v0/charges/", {"select_filters": {"when": {"gte": 1}}}, "unknown select_filters field(s) when"),
    ("/api/v0/charges/", {"select_filters": {"day": {"near": 1}}}, "select_filters.day takes gte"),
    ("/api/v0/charges/", {"select_filters": {"day": {"gte": -5}}}, "between 0 and"),
    ("/api/v0/charges/", {"select_filters": {"type": {"in": "volume"}}}, "takes a list of names"),
    ("/api/v0/charges/", {"select_filters": "[1"}, "must be JSON"),
    ("/api/v0/charges/", {"select_filters": "null"}, "select_filters must be a JSON object"),
    ("/api/v0/charges/", {"limit": 500}, "limit must be a whole number from 1 to 100"),
    ("/api/v0/charges/", {"after_token": "abc"}, "not a token this server gave"),
    ("/api/v1/invoices/", {"latest_first": "soon"}, "latest_first must be true or false"),
    ("/api/v0/usage/", {"by": "color"}, "by must be one of"),
    ("/api/v0/usage/", {"since": "2026-13-01"}, "since must be epoch seconds or a date"),
    ("/api/v0/usage/", {"since": "1969-12-31"}, "since must be epoch seconds between 0 and"),
    ("/api/v0/usage/", {"since": "2024-01-01", "until": "2026-01-01"}, "the limit is 400 days"),
])
def test_arguments_that_do_not_fit_are_400s_that_say_why(api, path, params, words):
    r = get(api, path, **params)
    assert r.status_code == 400, r.text
    assert words in r.json()["msg"]


def test_a_body_with_unknown_keys_is_refused(api):
    r = api.post("/api/v0/contracts/fetch/", json={"labels": ["x"]})
    assert r.status_code == 400 and "labels" in r.json()["msg"]
