"""The console's Machines page: an owner's machines with specs, GPUs and renters, prices edited,
list/unlist, maintenance; someone else's machine is a 404."""

from __future__ import annotations

import time


def one_gpu_offer(client, machine_id: int) -> dict:
    rows = client.post("/api/v0/bundles/", json={"order": [["id", "asc"]]}).json()["offers"]
    return next(o for o in rows if o["machine_id"] == machine_id and o["num_gpus"] == 1)


def test_an_owner_sees_specs_gpus_and_renters_and_changes_prices(console_for, alice, bob, hosted):
    box = hosted["box-4090"]
    with bob.http() as b:
        r = b.put(f"/api/v0/asks/{one_gpu_offer(b, box)['id']}/", json={"image": "busybox"})
        iid = r.json()["new_contract"]
    c = console_for(alice)
    page = c.get("/machines")
    assert page.status_code == 200 and 'aria-current="page">Machines' in page.text
    assert "Machine " + str(box) + ": box-4090" in page.text and "box-3090" not in page.text
    assert "2 × RTX 4090 (24 GB each, driver 550.54.15)" in page.text and "32 cores" in page.text
    assert f"<td>0</td><td>bob</td><td>{iid}</td><td>on demand</td>" in page.text
    assert '<td>1</td><td colspan="5" class="hint">free</td>' in page.text
    assert 'name="price_gpu" value="0.4"' in page.text

    r = c.post(f"/machines/{box}/list", {"price_gpu": "0.6", "price_min_bid": "0.2", "price_disk": "0.15",
                                           "min_chunk": "1", "end_date": "2099-12-31"})
    assert r.status_code == 200 and f"Machine {box} listed" in r.text, r.text
    assert 'name="price_gpu" value="0.6"' in r.text and 'value="2099-12-31"' in r.text
    with bob.http() as b:
        assert one_gpu_offer(b, box)["dph_base"] == 0.6
        assert b.get(f"/api/v0/instances/{iid}/").json()["instances"]["dph_base"] == 0.4

    r = c.post(f"/machines/{box}/list", {"price_gpu": "0.1", "price_min_bid": "0.5"})
    assert r.status_code == 400 and "above the on-demand price" in r.text
    assert 'name="price_gpu" value="0.1"' in r.text  # what was typed stays
    r = c.post(f"/machines/{box}/list", {"price_gpu": "cheap"})
    assert r.status_code == 400 and "price_gpu must be" in r.text

    r = c.post(f"/machines/{box}/unlist")
    assert r.status_code == 200 and "machine delisted; its 1 instance(s) keep running" in r.text
    assert f'id="machine-{box}-state">not listed' in r.text and "List machine" in r.text

    assert c.post(f"/machines/{hosted['box-3090']}/list", {"price_gpu": "9"}).status_code == 404
    assert c.post(f"/machines/{hosted['box-3090']}/unlist").status_code == 404


def test_maintenance_from_the_console(console_for, alice, hosted):
    box = hosted["box-4090"]
    c = console_for(alice)
    start = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() + 2 * 86400))
    r = c.post(f"/machines/{box}/maintenance", {"sdate": start, "duration": "3", "category": "power"})
    assert r.status_code == 200 and f"Maintenance of machine {box} scheduled from" in r.text, r.text
    assert f"{start.replace('T', ' ')} UTC to" in r.text and "(3 h, power)" in r.text
    r = c.post(f"/machines/{box}/maintenance", {"sdate": "tomorrow", "duration": "3"})
    assert r.status_code == 400 and "epoch seconds" in r.text
    r = c.post(f"/machines/{box}/maintenance", {"sdate": start, "duration": "0"})
    assert r.status_code == 400 and "duration must be" in r.text
    r = c.post(f"/machines/{box}/maintenance/cancel")
    assert r.status_code == 200 and "1 maintenance window(s) of machine" in r.text
    assert f'id="machine-{box}-no-maintenance"' in r.text


def test_someone_without_machines_is_told_how_to_get_one(console_for, make_account):
    c = console_for(make_account("carol"))
    page = c.get("/machines")
    assert page.status_code == 200 and 'id="no-machines"' in page.text
    assert "gpuyard admin add-machine ENGINE_URL --owner carol" in page.text
