"""Many clients at once: no 500s, no lost writes, identical content still makes one template."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx


def test_concurrent_creates_and_searches(alice):
    def work(i: int) -> tuple[int, int]:
        with alice.http() as c:
            r = c.post("/api/v0/template/", json={"image": f"img{i}", "name": f"n{i}"})
            s = c.get("/api/v0/template/", params={"select_filters": "{}"})
            return r.status_code, s.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(work, range(40)))
    assert codes == [(200, 200)] * 40
    with alice.http() as c:
        rows = c.get("/api/v0/template/", params={"select_filters": "{}"}).json()["templates"]
    assert sorted(r["name"] for r in rows) == sorted(f"n{i}" for i in range(40))


def test_identical_content_sent_at_once_makes_one_template(alice):
    def create(_: int) -> int:
        with alice.http() as c:
            r = c.post("/api/v0/template/", json={"image": "same", "name": "same"})
            assert r.status_code == 200, r.text
            return r.json()["template"]["id"]

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(create, range(16)))
    assert len(ids) == 1


def test_concurrent_edits_of_one_template_keep_every_version(alice):
    with alice.http() as c:
        t = c.post("/api/v0/template/", json={"image": "img", "name": "v0"}).json()["template"]

    def edit(i: int) -> int:
        with httpx.Client(base_url=alice.url, headers={"Authorization": f"Bearer {alice.key}"}) as c:
            r = c.put("/api/v1/template/", json={"id": t["id"], "hash_id": t["hash_id"],
                                                 "name": f"v{i + 1}"})
            return r.status_code

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(edit, range(12))) == {200}
    with alice.http() as c:
        versions = c.get(f"/api/v0/template/{t['id']}/versions/").json()["versions"]
    assert len(versions) == 13 and [v["version"] for v in versions] == list(range(13, 0, -1))
