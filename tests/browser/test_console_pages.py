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


# -- the launch page's volume choices ------------------------------------------------------------
def make_volume(api: httpx.Client, machine: int, name: str) -> tuple[int, int]:
    """(volume offer id, volume id) of a new volume of ``machine``."""
    r = api.post("/api/v0/volumes/search/", json={"machine_id": {"eq": machine}})
    offer = r.json()["offers"][0]["id"]
    r = api.put("/api/v0/volumes/", json={"id": offer, "size": 10, "name": name})
    assert r.status_code == 200, r.text
    vols = api.get("/api/v0/volumes", params={"owner": "me"}).json()["volumes"]
    return offer, next(v["id"] for v in vols if v["name"] == name)


def choices(page: Page, select: str) -> list[str]:
    """The values one can choose in a select (not the empty "Choose…")."""
    return page.locator(f"#{select} option:not([value=''])").evaluate_all(
        "options => options.filter(o => !o.hidden && !o.disabled).map(o => o.value)")


def test_volume_choices_follow_the_chosen_offer_and_survive_an_error(signed_in: Page, api, fleet):
    page = signed_in
    near_offer, near = make_volume(api, fleet.machine_ids["box-4090"], "near")
    far_offer, far = make_volume(api, fleet.machine_ids["box-3090"], "far")
    r = api.post("/api/v0/template/", json={"name": "any gpu", "image": "busybox"})
    t = r.json()["template"]
    page.goto(f"/launch?template={t['hash_id']}&filters=num_gpus%3D1")
    radio_3090 = page.get_by_role("radio", name=re.compile(r": 1× RTX 3090$"))
    radio_4090 = page.get_by_role("radio", name=re.compile(r": 1× RTX 4090$"))
    expect(radio_3090).to_be_checked()  # the cheapest
    page.get_by_label("Link one of my volumes").check()
    assert choices(page, "volume_id") == [str(far)]
    page.get_by_label("Create a new volume").check()
    assert str(far_offer) in choices(page, "volume_offer")
    assert str(near_offer) not in choices(page, "volume_offer")

    radio_4090.check()
    expect(page.locator("#volume_id")).to_have_attribute("data-machine", str(fleet.machine_ids["box-4090"]))
    offered = choices(page, "volume_offer")
    assert str(near_offer) in offered and str(far_offer) not in offered
    page.get_by_label("Link one of my volumes").check()
    assert choices(page, "volume_id") == [str(near)]
    page.locator("#volume_id").select_option(str(near))
    page.get_by_label("Mount path").fill("")
    page.get_by_role("button", name="Preview").click()

    error = page.locator("#mount_path-error")
    expect(error).to_contain_text("Mount path")
    expect(error).not_to_contain_text("volume_info")
    expect(page.get_by_label("Mount path")).to_be_focused()
    expect(radio_4090).to_be_checked()
    expect(page.get_by_label("Link one of my volumes")).to_be_checked()
    expect(page.locator("#volume_id")).to_have_value(str(near))
    assert choices(page, "volume_id") == [str(near)]


# -- layout: long values wrap, tables scroll in their own box --------------------------------------
LONG_NAME = "model-" + "x" * 180
LONG_IMAGE = "registry.example.com/team/" + "very-long-image-name-" * 8 + "end"
LONG_ENV = "-e MODEL_ID=" + "org/" + "m" * 200 + " -e TOKEN=" + "t" * 150 + " -p 8000:8000"
LONG_LABEL = "l" * 256
#: The elements that stick out on the right, outside a scrolling box (for a failure's message).
WIDE = """() => Array.from(document.querySelectorAll("body *"))
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
                 && !e.parentElement.closest(".table-scroll"))
    .slice(0, 10).map(e => `${e.tagName}#${e.id}.${e.className}`)"""
VIEWPORTS = {"laptop": {"width": 1024, "height": 768}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def long_values(api, fleet) -> dict:
    """A template with two versions and long values everywhere, an instance with a 256-character
    label launched from it, and a volume."""
    r = api.post("/api/v0/template/", json={"name": LONG_NAME, "image": LONG_IMAGE, "env": LONG_ENV,
                                            "onstart": "echo " + "o" * 300,
                                            "extra_filters": {"gpu_ram": {"gte": 20000.0}}})
    assert r.status_code == 200, r.text
    t = r.json()["template"]
    r = api.put("/api/v0/template/", json={"hash_id": t["hash_id"], "desc": "d" * 400})
    assert r.status_code == 200, r.text
    t = r.json()["template"]
    offer = offer_ids(api, num_gpus={"eq": 1})[0]
    iid = rent(api, offer, template_hash_id=t["hash_id"], image=None, label=LONG_LABEL)
    make_volume(api, fleet.machine_ids["box-4090"], "v" * 150)
    return {"template": t, "instance": iid}


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_pages_fit_the_width_and_long_values_wrap(signed_in: Page, long_values, viewport):
    page = signed_in
    page.set_viewport_size(VIEWPORTS[viewport])
    t, iid = long_values["template"], long_values["instance"]
    paths = ["/templates", f"/templates/{t['id']}", f"/templates/{t['id']}/diff",
             f"/templates/{t['id']}/edit", f"/launch?template={t['hash_id']}", "/instances",
             f"/instances/{iid}", f"/instances/{iid}/logs", "/volumes", "/launch"]
    for path in paths:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORTS[viewport]["width"], (f"{path} is {width} px wide at {viewport}",
                                                       page.evaluate(WIDE))
        # a wide table scrolls inside its own box, not the page
        for table in page.locator("main table").all():
            if not table.is_visible():
                continue
            box = table.evaluate("t => getComputedStyle(t.parentElement).overflowX")
            assert box == "auto", f"a table of {path} is not in a scrolling box"
    page.goto(f"/instances/{iid}")
    label = page.locator("#instance-label")
    expect(label).to_have_text(LONG_LABEL)
    assert label.evaluate("e => e.scrollWidth <= e.clientWidth")  # wrapped, not cut or stretched


# -- small things --------------------------------------------------------------------------------
def at_the_bottom(locator) -> bool:
    return locator.evaluate(
        "e => e.scrollHeight > e.clientHeight && e.scrollTop + e.clientHeight >= e.scrollHeight - 2")


def test_the_log_panel_opens_on_the_newest_lines(signed_in: Page, api, fleet):
    page = signed_in
    onstart = "\n".join(f"echo line {i}" for i in range(1, 151))
    iid = rent(api, offer_ids(api)[0], onstart=onstart)
    page.goto(f"/instances/{iid}")
    logs = page.locator("#logs")
    expect(logs).to_contain_text("line 150")
    page.wait_for_function("() => { const e = document.getElementById('logs');"
                           " return e.scrollTop + e.clientHeight >= e.scrollHeight - 2; }")
    assert at_the_bottom(logs)
    page.get_by_role("button", name="Refresh").click()  # a refresh goes to the newest lines again
    expect(logs).to_contain_text("line 150")
    assert at_the_bottom(logs)
    page.goto(f"/instances/{iid}/logs")  # the logs on their own page
    expect(page.locator("#logs")).to_contain_text("line 150")
    page.wait_for_function("() => { const e = document.getElementById('logs');"
                           " return e.scrollTop + e.clientHeight >= e.scrollHeight - 2; }")


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_buttons_keep_their_text_on_one_line(signed_in: Page, api, fleet, viewport):
    page = signed_in
    page.set_viewport_size(VIEWPORTS[viewport])
    t = api.post("/api/v0/template/", json={"name": "b", "image": "busybox"}).json()["template"]
    iid = rent(api, offer_ids(api)[0])
    for path in ["/templates", f"/templates/{t['id']}", f"/launch?template={t['hash_id']}",
                 f"/instances/{iid}", "/volumes", "/instances"]:
        page.goto(path)
        wrapped = page.locator("button:visible, a.button:visible").evaluate_all("""buttons =>
            buttons.filter(b => {
              const line = parseFloat(getComputedStyle(b).lineHeight) || 20;
              const inner = b.clientHeight - parseFloat(getComputedStyle(b).paddingTop)
                            - parseFloat(getComputedStyle(b).paddingBottom);
              return inner > line * 1.5;
            }).map(b => b.textContent.trim())""")
        assert wrapped == [], f"{path} at {viewport}: buttons on two lines: {wrapped}"
