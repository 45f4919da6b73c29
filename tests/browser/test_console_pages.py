"""The console's pages in a real browser, past the main flow: the live instance list, the launch
page's volume choices and errors, layouts at laptop and phone widths, and small page details."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect


def offer_ids(api: httpx.Client, **filters) -> list[int]:
    r = api.post("/api/v0/bundles/", json={**filters, "order": [["id", "asc"]]})
    assert r.status_code == 200, r.text
    return [o["id"] for o in r.json()["offers"]]


def rent(api: httpx.Client, offer: int, **body) -> int:
    r = api.put(f"/api/v0/asks/{offer}/", json={"client_id": "me", "image": "busybox", **body})
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


@pytest.fixture
def api(alice):
    with alice.http() as client:
        yield client


# -- the live instance list ----------------------------------------------------------------------
def test_instances_made_elsewhere_appear_and_change_without_a_reload(signed_in: Page, api, fleet):
    page = signed_in
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Instances").click()
    expect(page.get_by_text("You have no instances.")).to_be_visible()
    page.evaluate("window.stillTheSamePage = true")

    first_offer, second_offer = offer_ids(api, num_gpus={"eq": 1})[:2]
    first = rent(api, first_offer, label="made-by-the-api")
    row = page.locator(f"#instance-{first}")
    expect(row).to_contain_text("made-by-the-api", timeout=8_000)
    expect(row).to_contain_text("busybox:latest")
    expect(page.locator(f"#status-{first}")).to_have_text("running")
    expect(page.get_by_text("You have no instances.")).to_be_hidden()

    second = rent(api, second_offer, label="second")
    expect(page.locator(f"#instance-{second}")).to_contain_text("second", timeout=8_000)
    ids = page.locator("#instances-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert ids == [str(first), str(second)]  # in the list's order (by id)

    r = api.put(f"/api/v0/instances/{first}/", json={"state": "stopped"})
    assert r.json()["success"], r.text
    expect(page.locator(f"#status-{first}")).to_have_text("stopped", timeout=8_000)
    expect(page.locator(f"#status-{second}")).to_have_text("running")
    assert page.evaluate("window.stillTheSamePage === true"), "the list was reloaded"

    # the new row's link works like a rendered one
    row.get_by_role("link", name=str(first)).click()
    expect(page).to_have_url(re.compile(rf"/instances/{first}$"))
    expect(page.locator("#instance-status")).to_have_text("stopped")
