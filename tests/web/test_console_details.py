"""Small things the console says: counts in words, Compare only with something to compare, and
the host ports an env's -p flags really get."""

from __future__ import annotations

import html
import re

import httpx


def text_of(page: str, element_id: str) -> str:
    match = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', page, re.S)
    assert match, f"no element #{element_id}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", match.group(2))).split())


def rent(api: httpx.Client) -> int:
    offer = api.post("/api/v0/bundles/", json={"order": [["id", "asc"]]}).json()["offers"][0]["id"]
    r = api.put(f"/api/v0/asks/{offer}/", json={"client_id": "me", "image": "busybox"})
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


def test_compare_is_offered_only_with_two_versions_and_counts_read_right(console, api):
    r = api.post("/api/v0/template/", json={"name": "one", "image": "busybox"})
    t = r.json()["template"]
    page = console.get(f"/templates/{t['id']}").text
    assert text_of(page, "version-count") == "1 version"
    assert 'id="compare"' not in page and 'name="a"' not in page and 'name="b"' not in page
    r = api.put("/api/v0/template/", json={"hash_id": t["hash_id"], "desc": "second"})
    assert r.status_code == 200, r.text
    page = console.get(f"/templates/{t['id']}").text
    assert text_of(page, "version-count") == "2 versions"
    assert 'id="compare"' in page and 'name="a"' in page


def test_instance_and_volume_counts_are_pluralized(console, api, fleet):
    page = console.get("/instances").text  # none: the page says so, the count waits hidden
    assert re.search(r'<p id="instance-count"[^>]* hidden', page) and 'id="no-instances">' in page
    rent(api)
    assert text_of(console.get("/instances").text, "instance-count") == "1 instance"
    rent(api)
    assert text_of(console.get("/instances").text, "instance-count") == "2 instances"
    machine = fleet.machine_ids["box-4090"]
    r = api.post("/api/v0/volumes/search/", json={"machine_id": {"eq": machine}})
    offer = r.json()["offers"][0]["id"]
    for n, word in ((1, "1 volume"), (2, "2 volumes")):
        assert api.put("/api/v0/volumes/", json={"id": offer, "size": 5, "name": f"v{n}"}).status_code == 200
        assert text_of(console.get("/volumes").text, "volume-count") == word


def env_preview(console, env: str) -> dict:
    console.get("/templates/new")
    r = console.client.post("/templates/env-preview", data={"env": env},
                            headers={"X-CSRF-Token": console.csrf, "Accept": "application/json"})
    assert r.status_code == 200, r.text
    return {p["spec"]: p["published"] for p in r.json()["ports"]}


def test_the_env_preview_names_the_host_port_a_launch_really_uses(console, fleet):
    # the test fleet's machines publish ports from 40000 on (20 and 10 direct ports)
    shown = env_preview(console, "-p 8000:8000 -p 9000 -p 40005:7000 -p 53/udp")
    assert shown["9000"] == shown["53/udp"] == "assigned at launch"
    assert shown["8000:8000"].startswith("assigned at launch")
    assert "8000 is outside the machines' direct ports (40000-40019)" in shown["8000:8000"]
    assert shown["40005:7000"].startswith("40005 ") and "assigned at launch" in shown["40005:7000"]
    # the form's own table, drawn by the server, says the same
    r = console.post("/templates/new", {"image": "", "env": "-p 8000:8000 -p 9000"})
    table = html.unescape(r.text.split('id="env-preview"')[1].split("</table>")[0])
    assert "host port assigned at launch" in table and "host 8000," not in table
