"""The launch page with templates made elsewhere: their filters in the box as query text, the
offer it picks, the volumes it offers and the words of its errors."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from gpuyard.query import OFFER_FIELDS, normalize_query, parse_query

#: The official CLI's default offer filters, which ``--search_params`` starts from.
CLI_DEFAULTS = {"verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True}}


def offers(api: httpx.Client, **filters) -> list[dict]:
    r = api.post("/api/v0/bundles/", json={**filters, "order": [["id", "asc"]]})
    assert r.status_code == 200, r.text
    return r.json()["offers"]


def listed_offers(page: str) -> set[int]:
    return {int(x) for x in re.findall(r'name="offer" id="offer-(\d+)"', page)}


def checked_offer(page: str) -> int | None:
    match = re.search(r'id="offer-(\d+)" value="\d+"\s+checked', page)
    return int(match.group(1)) if match else None


def text_of(page: str, element_id: str) -> str:
    """The text inside the element with this id (tags removed)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', page, re.S)
    assert match, f"no element #{element_id}"
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(2))).strip()


def filter_box(page: str) -> str:
    match = re.search(r'<input type="text" id="filters" name="filters" value="([^"]*)"', page)
    assert match, "no filter box"
    return html.unescape(match.group(1))


def typed(text: str) -> dict:
    return normalize_query(parse_query(text, OFFER_FIELDS), OFFER_FIELDS)


def make_template(api: httpx.Client, **body) -> dict:
    r = api.post("/api/v0/template/", json={"name": "t", "image": "vllm/vllm-openai", **body})
    assert r.status_code == 200, r.text
    return r.json()["template"]


@pytest.fixture
def cli_template(api) -> dict:
    """What ``create template --search_params "gpu_ram>=20 num_gpus=1"`` sends (the official CLI
    and ours): the parsed query on top of the default filters."""
    filters = parse_query("gpu_ram>=20 num_gpus=1", OFFER_FIELDS, CLI_DEFAULTS)
    t = make_template(api, name="one gpu", extra_filters=filters)
    assert t["extra_filters"]["num_gpus"] == {"eq": 1} and t["extra_filters"]["gpu_ram"] == {"gte": 20000.0}
    return t


# -- the filter box ------------------------------------------------------------------------------
def test_the_box_holds_a_cli_templates_filters_as_query_text_and_lists_its_offers(
        console, api, fleet, cli_template):
    stored = cli_template["extra_filters"]
    r = console.get("/launch", params={"template": cli_template["hash_id"]})
    assert r.status_code == 200, r.text
    box = filter_box(r.text)
    assert "{" not in box and "gpu_ram>=20" in box.split() and "num_gpus=1" in box.split()
    assert typed(box) == stored
    assert 'id="filters-error"' not in r.text
    matching = {o["id"] for o in offers(api, **stored)}
    assert matching and listed_offers(r.text) == matching
    # the page's script asks for the same list with the box as it is
    fragment = console.get("/launch/offers", params={"template": cli_template["hash_id"], "filters": box})
    assert fragment.status_code == 200 and listed_offers(fragment.text) == matching

    # the preview and the instance show the same text
    offer = checked_offer(r.text)
    form = {"template": cli_template["hash_id"], "filters": box, "offer": str(offer)}
    r = console.post("/launch/preview", {**form, "do": "preview"})
    assert r.status_code == 200, r.text
    shown = text_of(r.text, "preview-filters")
    assert "{" not in shown and typed(shown) == stored
    r = console.post("/launch", form)
    assert re.fullmatch(r"/instances/\d+", r.url.path), r.text[:3000]
    shown = text_of(r.text, "instance-filters")
    assert "{" not in shown and typed(shown) == stored


def test_a_filter_the_text_cannot_say_stays_out_of_the_box_and_still_applies(console, api, fleet):
    # "_" reads as a space in the query language, so "A_B" has no text form
    stored = {"gpu_name": {"neq": "A_B"}, "num_gpus": {"eq": 1}, "gpu_ram": {"gte": 20000.0}}
    t = make_template(api, extra_filters=stored)
    r = console.get("/launch", params={"template": t["hash_id"]})
    assert r.status_code == 200
    box = filter_box(r.text)
    assert box == "num_gpus=1 gpu_ram>=20" or typed(box) == {k: stored[k] for k in ("num_gpus", "gpu_ram")}
    assert "{" not in box and 'id="filters-error"' not in r.text
    assert 'gpu_name neq "A_B"' in text_of(r.text, "filters-fixed")
    assert listed_offers(r.text) == {o["id"] for o in offers(api, **stored)}
    # and the launch applies it: preview, then the instance page, show it apart from the text
    form = {"template": t["hash_id"], "filters": box, "offer": str(checked_offer(r.text))}
    r = console.post("/launch/preview", {**form, "do": "preview"})
    assert r.status_code == 200, r.text
    assert 'gpu_name neq "A_B"' in text_of(r.text, "preview-filters")
    r = console.post("/launch", form)
    assert 'gpu_name neq "A_B"' in text_of(r.text, "instance-filters")


def test_template_pages_show_the_filters_as_query_text(console, cli_template):
    page = console.get(f"/templates/{cli_template['id']}").text
    row = re.search(r'<tr data-field="extra_filters">.*?</tr>', page, re.S).group(0)
    shown = html.unescape(re.sub(r"<[^>]+>", " ", row.split("</th>")[1])).strip()
    assert "{" not in shown and typed(shown) == cli_template["extra_filters"]
    form = console.get(f"/templates/{cli_template['id']}/edit").text
    box = html.unescape(re.search(r'<textarea id="extra_filters"[^>]*>([^<]*)</textarea>', form).group(1))
    assert "{" not in box and typed(box) == cli_template["extra_filters"]


# -- the preselected offer -----------------------------------------------------------------------
def cheapest_fewest(rows: list[dict]) -> int:
    return min(rows, key=lambda o: (o["num_gpus"], o["dph_total"], o["id"]))["id"]


def test_the_preselected_offer_has_the_fewest_gpus_then_the_lowest_price(console, api, fleet):
    # box-4090 offers 1x and 2x bundles: the 2x one scores higher, and costs twice as much
    t = make_template(api, extra_filters={"gpu_name": {"eq": "RTX 4090"}})
    matching = offers(api, gpu_name={"eq": "RTX 4090"})
    assert sorted(o["num_gpus"] for o in matching) == [1, 2]
    one = next(o for o in matching if o["num_gpus"] == 1)
    r = console.get("/launch", params={"template": t["hash_id"]})
    assert checked_offer(r.text) == one["id"] == cheapest_fewest(matching)
    assert listed_offers(r.text) == {o["id"] for o in matching}
    # the list reads in that order: the preselected offer first
    assert re.findall(r'name="offer" id="offer-(\d+)"', r.text)[0] == str(one["id"])
    # the offers fragment (the script's refresh) picks the same
    fragment = console.get("/launch/offers", params={"template": t["hash_id"], "filters": "gpu_ram>=20"})
    assert checked_offer(fragment.text) == cheapest_fewest(offers(api, gpu_ram={"gte": 20000}))
    # a template that asks for two GPUs gets the cheapest two-GPU offer
    two = make_template(api, name="two", extra_filters={"num_gpus": {"gte": 2}})
    r = console.get("/launch", params={"template": two["hash_id"]})
    assert checked_offer(r.text) == cheapest_fewest(offers(api, num_gpus={"gte": 2}))
    # with a bid price, the cheapest by bid price
    r = console.get("/launch", params={"template": t["hash_id"], "price": "0.2"})
    assert checked_offer(r.text) == one["id"]


def test_launching_without_picking_rents_the_preselected_offer(console, api, fleet):
    t = make_template(api, extra_filters={"gpu_name": {"eq": "RTX 4090"}})
    r = console.get("/launch", params={"template": t["hash_id"]})
    form = {"template": t["hash_id"], "filters": filter_box(r.text), "offer": str(checked_offer(r.text))}
    r = console.post("/launch", form)
    page = r.text
    assert re.fullmatch(r"/instances/\d+", r.url.path), page[:2000]
    assert "1× RTX 4090" in page and "2× RTX 4090" not in page


# -- volumes and the words of errors -------------------------------------------------------------
def error_of(page: str, field: str) -> str:
    match = re.search(rf'id="{field}-error"[^>]*>([^<]*)<', page)
    assert match, f"no error next to {field}"
    return html.unescape(match.group(1))


def options(page: str, select_id: str) -> dict[str, bool]:
    """The choices of a select: value → selected (the empty "Choose…" left out)."""
    match = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', page, re.S)
    assert match, f"no select #{select_id}"
    found = re.findall(r'<option value="([^"]*)"([^>]*)>', match.group(1))
    return {value: "selected" in rest for value, rest in found if value}


@pytest.fixture
def volumes(api, fleet) -> dict[str, dict]:
    """A volume of alice's on each machine, and a volume offer of each machine."""
    out = {}
    for host in ("box-4090", "box-3090"):
        machine = fleet.machine_ids[host]
        r = api.post("/api/v0/volumes/search/", json={"machine_id": {"eq": machine}})
        offer = r.json()["offers"][0]["id"]
        r = api.put("/api/v0/volumes/", json={"id": offer, "size": 10, "name": f"vol-{host}"})
        assert r.status_code == 200, r.text
        vol = next(v for v in api.get("/api/v0/volumes", params={"owner": "me"}).json()["volumes"]
                   if v["name"] == f"vol-{host}")
        out[host] = {"machine": machine, "offer": offer, "volume": vol["id"]}
    return out


def test_volume_choices_are_those_of_the_chosen_offers_machine(console, api, fleet, volumes):
    t = make_template(api, extra_filters={"gpu_name": {"eq": "RTX 4090"}})
    r = console.get("/launch", params={"template": t["hash_id"]})
    near = volumes["box-4090"]
    assert set(options(r.text, "volume_id")) == {str(near["volume"])}
    offers_here = options(r.text, "volume_offer")
    assert str(near["offer"]) in offers_here and str(volumes["box-3090"]["offer"]) not in offers_here
    # the choices of another offer's machine, as the page's script asks for them
    far_offer = offers(api, gpu_name={"eq": "RTX 3090"})[0]["id"]
    part = console.get("/launch/volumes", params={"offer": far_offer})
    assert part.status_code == 200
    assert set(options(part.text, "volume_id")) == {str(volumes["box-3090"]["volume"])}
    assert str(volumes["box-3090"]["offer"]) in options(part.text, "volume_offer")
    assert str(near["offer"]) not in options(part.text, "volume_offer")


def test_the_volume_choice_survives_an_error_and_errors_use_the_forms_words(console, api, fleet, volumes):
    t = make_template(api, extra_filters={"gpu_name": {"eq": "RTX 4090"}})
    page = console.get("/launch", params={"template": t["hash_id"]}).text
    near = volumes["box-4090"]
    form = {"template": t["hash_id"], "filters": filter_box(page), "offer": str(checked_offer(page)),
            "volume_mode": "link", "volume_id": str(near["volume"]), "mount_path": "", "do": "preview"}
    r = console.post("/launch/preview", form)
    assert r.status_code == 400
    msg = error_of(r.text, "mount_path")
    assert msg.startswith("Mount path") and "volume_info" not in msg
    assert options(r.text, "volume_id") == {str(near["volume"]): True}  # still chosen
    assert re.search(r'id="volume-link" value="link"\s+checked', r.text)
    assert 'id="mount_path" name="mount_path" value=""' in r.text  # kept as typed (empty)

    r = console.post("/launch/preview", {**form, "mount_path": "/data", "disk": "lots"})
    assert r.status_code == 400 and error_of(r.text, "disk").startswith("Disk ")
    assert options(r.text, "volume_id") == {str(near["volume"]): True}

    r = console.post("/launch/preview", {**form, "mount_path": "/data", "volume_id": ""})
    assert r.status_code == 400
    msg = error_of(r.text, "volume_id")
    assert msg.startswith("My volume") and "volume_info" not in msg and "show volumes" not in msg

    create = {**form, "volume_mode": "create", "volume_offer": str(near["offer"]), "mount_path": "/d",
              "volume_size": "-3"}
    r = console.post("/launch/preview", create)
    assert r.status_code == 400 and error_of(r.text, "volume_size").startswith("Volume size")
    assert options(r.text, "volume_offer")[str(near["offer"])] is True
    r = console.post("/launch/preview", {**create, "volume_size": "5", "volume_name": "n" * 201})
    assert r.status_code == 400 and error_of(r.text, "volume_name").startswith("Volume name")
    r = console.post("/launch/preview", {**create, "volume_size": "5", "price": "abc"})
    assert r.status_code == 400 and error_of(r.text, "price").startswith("Bid price")


# -- labels --------------------------------------------------------------------------------------
def test_a_label_over_256_characters_is_refused_next_to_the_field(console, api, fleet):
    t = make_template(api)
    page = console.get("/launch", params={"template": t["hash_id"]}).text
    assert re.search(r'<input type="text" id="label" name="label" value="" maxlength="256"', page)
    form = {"template": t["hash_id"], "filters": "", "offer": str(checked_offer(page))}
    r = console.post("/launch/preview", {**form, "label": "x" * 257, "do": "preview"})
    assert r.status_code == 400
    assert error_of(r.text, "label") == "Label is 257 characters long; the limit is 256"
    assert f'value="{"x" * 257}"' in r.text  # kept as typed
    r = console.post("/launch", {**form, "label": "y" * 256})
    assert re.fullmatch(r"/instances/\d+", r.url.path), r.text[:2000]
    assert re.search(r'<input type="text" id="label" name="label" value="y{256}" maxlength="256"', r.text)
