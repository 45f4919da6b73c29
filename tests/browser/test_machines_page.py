"""The Machines page's main flow in a real browser: an owner sees who rents a GPU, changes the
price, unlists and lists again, schedules and cancels maintenance."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect


def test_an_owner_prices_unlists_and_schedules_maintenance(signed_in: Page, hosted, bob, shot):
    box = hosted["box-4090"]
    with bob.http() as b:
        rows = b.post("/api/v0/bundles/", json={"order": [["id", "asc"]]}).json()["offers"]
        offer = next(o for o in rows if o["machine_id"] == box and o["num_gpus"] == 1)
        iid = b.put(f"/api/v0/asks/{offer['id']}/", json={"image": "busybox"}).json()["new_contract"]
    page = signed_in
    page.get_by_role("link", name="Machines").click()
    expect(page).to_have_title("Machines · gpuyard")
    card = page.locator(f"#machine-{box}")
    expect(card.get_by_role("heading", name=f"Machine {box}: box-4090")).to_be_visible()
    expect(page.locator(f"#machine-{box}-gpus")).to_contain_text(f"bob{iid}on demand")
    expect(page.locator(f"#machine-{hosted['box-3090']}")).to_have_count(0)
    shot("machines")

    card.get_by_label("$/GPU/hour", exact=True).fill("0.55")
    card.get_by_role("button", name="Update prices").click()
    expect(page.get_by_role("status")).to_contain_text(f"Machine {box} listed")
    expect(page.locator(f"#machine-{box}").get_by_label("$/GPU/hour", exact=True)).to_have_value("0.55")

    page.on("dialog", lambda dialog: dialog.accept())
    page.locator(f"#machine-{box}").get_by_role("button", name="Unlist machine").click()
    expect(page.get_by_role("status")).to_contain_text("machine delisted; its 1 instance(s) keep running")
    expect(page.locator(f"#machine-{box}-state")).to_have_text("not listed")
    page.locator(f"#machine-{box}").get_by_role("button", name="List machine").click()
    expect(page.locator(f"#machine-{box}-state")).to_have_text("listed, 1 GPU offer")

    card = page.locator(f"#machine-{box}")
    start = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() + 86400))
    card.get_by_label("Starts (UTC)").fill(start)
    card.get_by_label("Hours").fill("2")
    card.get_by_label("Category").fill("power")
    card.get_by_role("button", name="Schedule").click()
    expect(page.get_by_role("status")).to_contain_text(f"Maintenance of machine {box} scheduled")
    expect(page.locator(f"#machine-{box}-maintenances")).to_contain_text("(2 h, power)")
    shot("machines-maintenance")
    page.locator(f"#machine-{box}").get_by_role("button", name="Cancel maintenance").click()
    expect(page.locator(f"#machine-{box}-no-maintenance")).to_be_visible()
