"""The Usage page in a real browser: the charts render (bars with a size, a legend per
template), the window and grouping change them, and a bar says what it is."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from usage_clock import HOUR, T0, controlled

DAY = 24 * HOUR


def rent(api, **body) -> int:
    offer = next(o for o in api.post("/api/v0/bundles/", json={"order": [["id", "asc"]]}).json()["offers"]
                 if o["num_gpus"] == 1 and not o["rented"])
    r = api.put(f"/api/v0/asks/{offer['id']}/", json={"image": "busybox", "disk": 10, **body})
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


def test_the_usage_charts_render_stacked_by_template(signed_in: Page, app, api, fleet, shot):
    page = signed_in
    hashes = {}
    for name in ("vllm-server", "comfyui"):
        r = api.post("/api/v0/template/", json={"name": name, "image": f"img/{name}", "runtype": "ssh"})
        hashes[name] = r.json()["template"]["hash_id"]
    with controlled(app, start=T0 - 5 * DAY) as clock:
        for day, hours in enumerate((4, 7, 2, 9, 5)):
            clock.t = T0 - (5 - day) * DAY + HOUR
            running = [rent(api, template_hash_id=hashes["vllm-server"], label="serve")]
            if day % 2 == 0:
                running.append(rent(api, template_hash_id=hashes["comfyui"], label="art"))
            clock.advance(hours * HOUR)
            for iid in running:
                assert api.request("DELETE", f"/api/v0/instances/{iid}/", json={}).status_code == 200
        clock.t = T0 + 2 * HOUR

        page.get_by_role("link", name="Usage").click()
        expect(page).to_have_title("Usage · gpuyard")
        gpu_chart = page.locator("#chart-gpu-hours")
        expect(gpu_chart).to_be_visible()
        bars = gpu_chart.locator("rect.bar")
        expect(bars).to_have_count(8)  # 5 days of vllm-server, 3 of comfyui
        box = bars.first.bounding_box()
        assert box is not None and box["width"] > 2 and box["height"] > 2
        tallest = max(bars.nth(i).bounding_box()["height"] for i in range(8))
        assert tallest > 60  # the chart's scale fits the data
        legend = page.get_by_role("list", name="GPU-hours per day: legend")
        expect(legend.get_by_role("listitem")).to_have_text(["vllm-server", "comfyui"])
        expect(gpu_chart.locator("rect.bar title").first).to_have_text(
            re.compile(r"^2025-12-2\d · (vllm-server|comfyui): \d+\.\d+ GPU-hours$"))
        expect(page.locator("#chart-cost rect.bar")).to_have_count(8)
        expect(page.locator("#usage-total td").first).to_have_text("38.00")  # 27 hours + 4 + 2 + 5
        shot("usage")

        page.get_by_label("Stacked by").select_option("label")
        page.get_by_label("Window").select_option("7")
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(r"/usage\?days=7&by=label$"))
        expect(page.get_by_role("list", name="GPU-hours per day: legend").get_by_role("listitem")) \
            .to_have_text(["serve", "art"])
