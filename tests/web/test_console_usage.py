"""The console's Usage page: GPU-hours and cost per day as stacked SVG bar charts (drawn on the
server), the usage table, and the account's balance and quotas."""

from __future__ import annotations

import html
import re

import pytest

from gpuyard.services.ledger import billing
from gpuyard.store.db import transaction
from usage_clock import HOUR, T0, controlled

DAY = 24 * HOUR


def rent(api, image: str = "busybox", **body) -> int:
    offer = next(o for o in api.post("/api/v0/bundles/", json={"order": [["id", "asc"]]}).json()["offers"]
                 if o["num_gpus"] == 1 and o["gpu_name"] == "RTX 4090" and not o["rented"])
    r = api.put(f"/api/v0/asks/{offer['id']}/", json={"image": image, "disk": 10, **body})
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


def destroy(api, iid: int) -> None:
    assert api.request("DELETE", f"/api/v0/instances/{iid}/", json={}).status_code == 200


def bars(page: str, chart: str) -> list[tuple[str, str]]:
    """(series, title) of every bar of the chart ``chart``."""
    svg = re.search(rf'<svg id="{chart}".*?</svg>', page, re.S)
    assert svg, f"no chart {chart}"
    return [(html.unescape(series), html.unescape(title)) for series, title in
            re.findall(r'<rect class="bar"[^>]*data-series="([^"]*)"><title>([^<]*)</title>', svg.group(0))]


@pytest.fixture
def history(app, api, fleet):
    """Alice's usage: a template (with markup in its name) run 5 hours on 2025-12-30, a plain
    image 3 hours on 2025-12-31; the page is looked at on 2026-01-01."""
    r = api.post("/api/v0/template/", json={"name": "<b>vllm</b>", "image": "vllm/vllm-openai",
                                            "runtype": "ssh"})
    assert r.status_code == 200, r.text
    with controlled(app, start=T0 - 2 * DAY) as clock:
        first = rent(api, template_hash_id=r.json()["template"]["hash_id"])
        clock.advance(5 * HOUR)
        destroy(api, first)
        clock.t = T0 - DAY
        second = rent(api)
        clock.advance(3 * HOUR)
        destroy(api, second)
        clock.t = T0 + HOUR
        yield clock


def test_the_usage_page_charts_gpu_hours_and_cost_per_day_stacked_by_template(console, history):
    r = console.get("/usage", params={"days": 7})
    assert r.status_code == 200, r.text
    page = r.text
    assert '<a href="/usage" aria-current="page">Usage</a>' in page
    assert "<b>vllm</b>" not in page and "&lt;b&gt;vllm&lt;/b&gt;" in page  # names are escaped
    gpu = bars(page, "chart-gpu-hours")
    assert ("<b>vllm</b>", "2025-12-30 · <b>vllm</b>: 5.00 GPU-hours") in gpu
    assert ("(no template)", "2025-12-31 · (no template): 3.00 GPU-hours") in gpu
    cost = dict((title.split(" · ")[0], title) for _series, title in bars(page, "chart-cost"))
    assert cost["2025-12-30"].startswith("2025-12-30 · <b>vllm</b>: 2.0")  # 5 h at $0.40 + disk
    assert 'role="img"' in page and "GPU-hours per day: 8.00 GPU-hours over 7 days" in html.unescape(page)
    table = re.search(r'<table id="usage-table">.*?</table>', page, re.S).group(0)
    assert "&lt;b&gt;vllm&lt;/b&gt;</td><td>5.00</td>" in table and "(no template)</td><td>3.00</td>" in table
    assert re.search(r'id="usage-total"><th scope="row">Total</th><td>8.00</td>', table)


def test_the_usage_page_groups_by_label_and_machine_and_shows_the_account(console, history, app, alice):
    page = console.get("/usage", params={"days": 30, "by": "machine"}).text
    assert "box-4090 (machine" in page and "By machine" in page
    with transaction(app.state.sessions) as session:
        billing.grant_credit(session, "alice", 10)
        billing.set_quota(session, "alice", max_gpus=2)
    page = console.get("/usage").text
    balance = re.search(r'id="balance">([^<]*)<', page).group(1).strip()
    assert balance.startswith("$6.") or balance.startswith("$7.")  # $10 minus about $3.2
    assert "GPUs 0 of 2" in page


def test_a_usage_window_the_page_does_not_offer_is_a_400_page(console):
    r = console.get("/usage", params={"days": "12"})
    assert r.status_code == 400 and "days must be one of 7, 30, 90" in html.unescape(r.text)


def test_the_usage_page_needs_a_sign_in(anonymous):
    r = anonymous.client.get("/usage", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/usage"


def test_an_empty_window_says_so(console):
    page = console.get("/usage").text
    assert 'id="no-usage"' in page and "No usage in this window" in page


def test_the_launch_page_says_when_credit_or_a_quota_stands_in_the_way(console, api, app, fleet):
    from usage_clock import credit_enforced

    offer = next(o for o in api.post("/api/v0/bundles/", json={}).json()["offers"] if o["num_gpus"] == 1)
    form = {"offer": str(offer["id"]), "image": "busybox", "filters": ""}
    with credit_enforced(app):
        r = console.post("/launch", form)
        assert r.status_code == 403
        error = page_error(r.text)
        assert error.lower().startswith("your account has no credit left") and "to launch or start" in error
    with transaction(app.state.sessions) as session:
        billing.set_quota(session, "alice", max_gpus=0)
    r = console.post("/launch", form)
    assert r.status_code == 403
    assert page_error(r.text).lower().startswith("quota exceeded: max_gpus is 0")


def page_error(page: str) -> str:
    return html.unescape(re.search(r'id="page-error">([^<]*)<', page).group(1))
