"""The official ``vastai`` 1.9.1 CLI and SDK, unchanged, reading the user, invoices and
invoices-v1 from a live gpuyard server (VAST-WIRE §8, §17). The server's clock is a test clock,
so the usage happened on 2026-01-01 (UTC) and the client is asked about that day."""

from __future__ import annotations

import json

import pytest
from test_official_cli import Cli, vastai  # noqa: F401 - the CLI fixture
from vastai import VastAI

from gpuyard.services.ledger import billing
from gpuyard.store.db import transaction
from usage_clock import HOUR, T0, controlled

DAY = 24 * HOUR


def offer(api, gpu: str = "RTX 4090") -> dict:
    found = api.post("/api/v0/bundles/", json={"order": [["id", "asc"]]}).json()["offers"]
    return next(o for o in found if o["gpu_name"] == gpu and o["num_gpus"] == 1)


def rented(api, offer_id: int, **body) -> int:
    r = api.put(f"/api/v0/asks/{offer_id}/", json=body)
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


@pytest.fixture
def history(app, api, fleet):
    """Alice: $25 of credit, an instance labelled "train" (3 hours on one RTX 4090) and one
    labelled "eval" (1 hour), all on 2026-01-01; the clock then reads 2026-01-01 06:00."""
    with controlled(app) as clock:
        with transaction(app.state.sessions) as session:
            billing.grant_credit(session, "alice", 25, "welcome")
            billing.set_quota(session, "alice", max_gpus=4)
        train = rented(api, offer(api)["id"], image="busybox", disk=10, label="train")
        evaluation = rented(api, offer(api, "RTX 3090")["id"], image="busybox", disk=10, label="eval")
        clock.advance(HOUR)
        api.request("DELETE", f"/api/v0/instances/{evaluation}/", json={})
        clock.advance(2 * HOUR)
        api.request("DELETE", f"/api/v0/instances/{train}/", json={})
        clock.t = T0 + 6 * HOUR
        yield {"train": train, "eval": evaluation}


@pytest.fixture
def cli(vastai: Cli) -> Cli:  # noqa: F811 - the imported fixture, narrowed
    vastai.env.update(TZ="UTC", LINES="500", COLUMNS="250")
    return vastai


def test_show_user_prints_balance_and_credit(cli, alice, history):
    r = cli("show", "user", key=alice.key)
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()[:2]
    assert "Balance" in header and "Credit" in header
    charges = 3 * 0.40 + 1 * 0.20 + 4 * 10 * 0.10 / 720
    assert f"{25 - charges:.2f}" in row  # Credit, formatted {:0.2f} by the client
    raw = cli("show", "user", "--raw", key=alice.key)
    user = json.loads(raw.stdout)
    assert user["credit"] == pytest.approx(25 - charges, abs=1e-5) == user["balance"]
    assert user["quota"]["max_gpus"] == 4 and user["in_use"]["gpus"] == 0
    assert "api_key" not in user


def test_show_invoices_table_filters_and_instance_label(cli, alice, history):
    window = ("-s", "2026-01-01", "-e", "2026-01-01 23:00")
    r = cli("show", "invoices", *window, "--full", key=alice.key)
    assert r.returncode == 0, r.stderr
    assert "DEPRECATED" in r.stderr
    lines = r.stdout.splitlines()
    assert "Description" in lines[1] and "Timestamp" in lines[1]
    assert any(f"instance_{history['train']}_(train):_GPU_time" in line for line in lines)
    assert any("credit_from_the_operator:_welcome" in line and "payment" in line for line in lines)
    total = next(line for line in lines if line.startswith("Total: $"))
    assert float(total.split("$")[1]) == pytest.approx(1.4 + 4 * 10 * 0.1 / 720 - 25, abs=1e-4)
    assert any(line.startswith("Current: ") and "'balance'" in line for line in lines)

    charges = json.loads(cli("show", "invoices", *window, "-c", "--raw", key=alice.key).stdout)
    assert charges and {row["type"] for row in charges} == {"charge"}
    payments = json.loads(cli("show", "invoices", *window, "-p", "--raw", key=alice.key).stdout)
    assert [row["amount"] for row in payments] == [-25.0]
    train = json.loads(cli("show", "invoices", *window, "-c", "--instance_label", "train", "--raw",
                           key=alice.key).stdout)
    assert train and {row["instance_id"] for row in train} == {history["train"]}


def test_show_invoices_v1_charges_and_invoices(cli, alice, history):
    window = ("-s", "2026-01-01", "-e", "2026-01-02")
    raw = cli("show", "invoices-v1", "-c", *window, "--raw", key=alice.key)
    assert raw.returncode == 0, raw.stderr
    page = json.loads(raw.stdout)
    assert (page["count"], page["total"], page["next_token"]) == (2, 2, None)
    assert {r["source"] for r in page["results"]} == {f"instance-{history['train']}",
                                                      f"instance-{history['eval']}"}
    paged = json.loads(cli("show", "invoices-v1", "-c", *window, "-l", "1", "--raw", key=alice.key).stdout)
    assert (paged["count"], paged["total"], paged["next_token"]) == (1, 2, "1")

    table = cli("show", "invoices-v1", "-c", *window, "--no-color", "--full", key=alice.key)
    assert table.returncode == 0, table.stderr
    assert "Instance" in table.stdout and str(history["train"]) in table.stdout
    assert "Showing 2 of 2 results" in table.stdout
    tree = cli("show", "invoices-v1", "-c", *window, "-f", "tree", "-v", "--no-color", "--full",
               key=alice.key)
    assert "Charges Breakdown" in tree.stdout and "GPU time" in tree.stdout
    volumes_only = json.loads(cli("show", "invoices-v1", "-c", "-ct", "v", *window, "--raw",
                                  key=alice.key).stdout)
    assert volumes_only["results"] == []

    invoices = cli("show", "invoices-v1", "-i", *window, "--no-color", "--full", key=alice.key)
    assert invoices.returncode == 0, invoices.stderr
    assert "Credit" in invoices.stdout and "$25.00" in invoices.stdout and "welcome" in invoices.stdout


def test_the_official_sdk_reads_user_and_invoices(alice, history, live_server, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    sdk = VastAI(api_key=alice.key, server_url=live_server)
    user = sdk.show_user()
    assert user["balance"] == user["credit"] and user["credit"] < 25
    with pytest.warns(DeprecationWarning):
        body = sdk.show_invoices(start_date="2026-01-01T00:00:00Z", end_date="2026-01-02T00:00:00Z",
                                 only_charges=True)
    assert body["invoices"] and {r["type"] for r in body["invoices"]} == {"charge"}
    assert body["current"]["balance"] == pytest.approx(user["balance"])
    page = sdk.show_invoices_v1(charges=True, start_date="2026-01-01", end_date="2026-01-02", limit=50)
    assert page["total"] == 2 and len(page["results"]) == 2
    credit = sdk.show_invoices_v1(invoices=True, start_date="2026-01-01", end_date="2026-01-02")
    assert [r["amount"] for r in credit["results"]] == [-25.0]
