"""The console's launch, instances and volumes pages, as a user sees them (plain forms, no JS)."""

from __future__ import annotations

import html
import re
import time

import httpx
import pytest

ENV = "-e MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Llama-8B -e MAX_TOKENS=4096 -p 8000:8000"


def offers(api: httpx.Client, **filters) -> list[dict]:
    r = api.post("/api/v0/bundles/", json={**filters, "order": [["id", "asc"]]})
    assert r.status_code == 200, r.text
    return r.json()["offers"]


def offer_id(api: httpx.Client, gpu: str = "RTX 4090", n: int = 1) -> int:
    return next(o["id"] for o in offers(api) if o["gpu_name"] == gpu and o["num_gpus"] == n)


def listed_offers(page: str) -> set[int]:
    return {int(x) for x in re.findall(r'name="offer" id="offer-(\d+)"', page)}


def error_of(page: str, field: str) -> str:
    match = re.search(rf'id="{field}-error"[^>]*>([^<]*)<', page)
    assert match, f"no error next to {field}"
    return html.unescape(match.group(1))


def instance_id_of(r: httpx.Response) -> int:
    match = re.fullmatch(r"/instances/(\d+)", r.url.path)
    assert match, (r.url, r.text[:2000])
    return int(match.group(1))


def rows(console, instance_id: int | None = None) -> list[dict]:
    r = console.get("/instances/rows", params={"id": instance_id} if instance_id else None)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), r.text
    return r.json()["instances"]


def wait_status(console, instance_id: int, status: str, timeout: float = 60.0) -> dict:
    deadline = time.time() + timeout
    while True:
        found = rows(console, instance_id)
        if (found and found[0]["status"] == status) or time.time() > deadline:
            assert found and found[0]["status"] == status, found
            return found[0]
        time.sleep(0.05)


@pytest.fixture
def api(alice):
    with alice.http() as client:
        yield client


@pytest.fixture
def template(api) -> dict:
    r = api.post("/api/v0/template/", json={
        "name": "vllm", "image": "vllm/vllm-openai", "tag": "v0.6", "env": ENV,
        "onstart": "echo serving $MODEL_ID", "runtype": "ssh", "recommended_disk_space": 30,
        "extra_filters": {"gpu_name": {"eq": "RTX 4090"}},
    })
    assert r.status_code == 200, r.text
    return r.json()["template"]


def launch_form(template: dict, offer: int, **fields) -> dict:
    return {"template": template["hash_id"], "filters": "gpu_name=RTX_4090", "offer": str(offer), **fields}


# -- launch --------------------------------------------------------------------------------------
def test_launch_page_lists_the_offers_that_satisfy_the_template_filters(console, api, fleet, template):
    r = console.get(f"/launch?template={template['hash_id']}")
    assert r.status_code == 200
    assert "<title>Launch vllm · gpuyard</title>" in r.text
    assert template["hash_id"] in r.text and "vllm/vllm-openai:v0.6" in r.text
    assert 'value="gpu_name=RTX_4090"' in r.text  # the template's filters as query text
    gpu_4090 = {o["id"] for o in offers(api) if o["gpu_name"] == "RTX 4090"}
    assert listed_offers(r.text) == gpu_4090 and len(gpu_4090) == 2
    assert re.search(r'id="offer-\d+" value="\d+"\s+checked', r.text)  # the best one is chosen


def test_editing_the_filter_changes_the_list(console, api, fleet, template):
    r = console.get("/launch", params={"template": template["hash_id"], "filters": "gpu_name=RTX_3090"})
    assert listed_offers(r.text) == {offer_id(api, "RTX 3090")}
    r = console.post("/launch/preview", {"template": template["hash_id"], "filters": "num_gpus>=2",
                                         "do": "search"})
    assert r.status_code == 200 and listed_offers(r.text) == {offer_id(api, n=2)}
    fragment = console.get("/launch/offers", params={"filters": "gpu_ram>=20"})
    assert listed_offers(fragment.text) == {o["id"] for o in offers(api)}


def test_a_bad_filter_shows_the_parser_message_next_to_the_box(console, fleet, template):
    r = console.get("/launch", params={"template": template["hash_id"], "filters": "gpu_rma>=20"})
    assert "gpu_rma" in error_of(r.text, "filters") and "did you mean gpu_ram" in error_of(r.text, "filters")
    assert 'aria-invalid="true"' in r.text and listed_offers(r.text) == set()


def test_preview_shows_the_merged_configuration_and_rents_nothing(console, api, fleet, template):
    before = [(o["id"], o["rented"]) for o in offers(api)]
    r = console.post("/launch/preview", launch_form(
        template, offer_id(api), env="-e MODEL_ID=mistralai/Mistral-7B-v0.1 -e HF_TOKEN=hf_xxx",
        disk="20", do="preview"))
    assert r.status_code == 200, r.text
    preview = r.text[r.text.index('id="preview"'):]
    cells = r'<tr id="preview-env-(\w+)"><td class="mono long">\w+</td><td class="mono long">([^<]*)</td>'
    env = dict(re.findall(cells, preview))
    assert env == {"MODEL_ID": "mistralai/Mistral-7B-v0.1", "MAX_TOKENS": "4096", "HF_TOKEN": "hf_xxx"}
    assert "vllm/vllm-openai:v0.6" in preview and "echo serving $MODEL_ID" in preview
    assert "8000/tcp" in preview and "20 GB" in preview and "gpu_name=RTX_4090" in preview
    assert "on-demand" in preview and "nothing is rented" in preview
    assert [(o["id"], o["rented"]) for o in offers(api)] == before
    assert rows(console) == []
    # the form keeps what was typed
    assert "-e MODEL_ID=mistralai/Mistral-7B-v0.1 -e HF_TOKEN=hf_xxx</textarea>" in r.text


def test_errors_show_next_to_the_field_they_concern(console, api, fleet, template):
    o = offer_id(api)
    r = console.post("/launch/preview", launch_form(template, o, env="MODEL=x", do="preview"))
    assert r.status_code == 400 and error_of(r.text, "env")
    r = console.post("/launch/preview", launch_form(template, o, price="0.01", do="preview"))
    assert r.status_code == 400 and "below" in error_of(r.text, "price")
    r = console.post("/launch", launch_form(template, o, disk="100000"))
    assert r.status_code == 400 and "free disk" in error_of(r.text, "disk")
    r = console.post("/launch", {"filters": "", "offer": str(o)})
    assert r.status_code == 400 and "image" in error_of(r.text, "image")
    # clearing the box lists every offer, but the launch still checks the template's filters
    r = console.post("/launch", launch_form(template, offer_id(api, "RTX 3090"), filters=""))
    assert r.status_code == 400 and "gpu_name == RTX 4090" in error_of(r.text, "offer")
    assert offer_id(api, "RTX 3090") in listed_offers(r.text)
    assert rows(console) == []


def test_launch_goes_to_the_instance_page_which_reaches_running(console, api, fleet, template):
    r = console.post("/launch", launch_form(template, offer_id(api), label="chat", env="-e HF_TOKEN=hf_1"))
    iid = instance_id_of(r)
    assert f"<title>Instance {iid} · chat · gpuyard</title>" in r.text
    assert "vllm/vllm-openai:v0.6" in r.text and "HF_TOKEN" in r.text and "MAX_TOKENS" in r.text
    assert wait_status(console, iid, "running")["ports"]
    page = console.get(f"/instances/{iid}").text
    assert re.search(r'id="instance-status" class="status-running">running<', page)
    assert re.search(r"10\.0\.0\.5:\d+ → 8000/tcp", page)


# -- instances ------------------------------------------------------------------------------------
def rented(api: httpx.Client, offer: int, **body) -> int:
    r = api.put(f"/api/v0/asks/{offer}/", json={"client_id": "me", "image": "busybox", **body})
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


def test_the_list_and_its_rows_show_status(console, api, fleet):
    iid = rented(api, offer_id(api), label="web", env="-p 8000:8000")
    r = console.get("/instances")
    assert "<title>Instances · gpuyard</title>" in r.text
    assert f'id="status-{iid}"' in r.text and f'id="msg-{iid}"' in r.text and "busybox:latest" in r.text
    assert re.search(rf'id="ports-{iid}"[^>]*>10\.0\.0\.5:\d+ → 8000/tcp', r.text)
    row = wait_status(console, iid, "running")
    assert row["label"] == "web" and row["gpus"] == "1× RTX 4090" and row["image"] == "busybox:latest"
    assert [x["id"] for x in rows(console)] == [iid]


def test_stop_start_reboot_label_destroy(console, api, fleet):
    iid = rented(api, offer_id(api))
    wait_status(console, iid, "running")
    r = console.post(f"/instances/{iid}/stop")
    assert r.url.path == f"/instances/{iid}" and "Stopping instance" in r.text
    wait_status(console, iid, "stopped")
    console.post(f"/instances/{iid}/start")
    wait_status(console, iid, "running")
    r = console.post(f"/instances/{iid}/reboot")
    assert "Rebooting instance" in r.text
    wait_status(console, iid, "running")
    r = console.post(f"/instances/{iid}/label", {"label": "renamed"})
    assert 'id="instance-label">renamed<' in r.text
    r = console.post(f"/instances/{iid}/label", {"label": "x" * 257})
    assert r.status_code == 400 and "the limit is 256" in error_of(r.text, "label")
    page = console.get(f"/instances/{iid}").text
    assert f'data-confirm="Destroy instance {iid}? Its disk is deleted; volumes stay."' in page
    r = console.post(f"/instances/{iid}/destroy")
    assert r.url.path == "/instances" and "Destroying instance" in r.text
    assert rows(console) == []
    assert console.get(f"/instances/{iid}").status_code == 404


def test_destroy_needs_a_post_with_the_csrf_token(console, api, fleet):
    iid = rented(api, offer_id(api))
    assert console.get(f"/instances/{iid}/destroy").status_code == 405
    r = console.client.post(f"/instances/{iid}/destroy", data={})
    assert r.status_code == 403 and "did not come from this console" in r.text
    r = console.client.post(f"/instances/{iid}/destroy", data={"csrf_token": "forged"})
    assert r.status_code == 403
    assert [x["id"] for x in rows(console)] == [iid]


def test_logs_show_the_onstart_output(console, api, fleet):
    iid = rented(api, offer_id(api), env={"WHO": "world"}, onstart="echo hello $WHO\necho second line")
    wait_status(console, iid, "running")
    r = console.get(f"/instances/{iid}/logs?tail=200")
    assert r.status_code == 200 and f"<title>Logs of instance {iid} · gpuyard</title>" in r.text
    logs = html.unescape(r.text.split('id="logs"')[1].split("</pre>")[0])
    assert "hello world" in logs and "second line" in logs
    full = console.get(f"/instances/{iid}/logs?format=text&tail=0").text
    assert "hello world" in full and full.endswith("\n")
    assert console.get(f"/instances/{iid}/logs?tail=1&format=text").text == full.splitlines()[-1] + "\n"
    daemon = console.get(f"/instances/{iid}/logs", params={"daemon": "1"}).text
    assert "created from busybox:latest" in daemon
    bad = console.get(f"/instances/{iid}/logs?tail=lots")
    assert bad.status_code == 400 and "tail" in error_of(bad.text, "tail")


def test_another_users_instance_is_a_404_page(console, bob, fleet):
    with bob.http() as b:
        theirs = rented(b, offer_id(b))
    r = console.get(f"/instances/{theirs}")
    assert r.status_code == 404 and "not found" in r.text and "<title>" in r.text
    assert console.post(f"/instances/{theirs}/stop").status_code == 404
    assert console.post(f"/instances/{theirs}/destroy").status_code == 404
    assert console.get(f"/instances/{theirs}/logs").status_code == 404
    assert rows(console) == [] and rows(console, theirs) == []
    with bob.http() as b:
        assert b.get(f"/api/v0/instances/{theirs}/", params={"owner": "me"}).json()["instances"]


def test_a_label_is_escaped_everywhere(console, api, fleet):
    evil = "<script>alert(1)</script>"
    iid = rented(api, offer_id(api))
    console.post(f"/instances/{iid}/label", {"label": evil})
    for path in ("/instances", f"/instances/{iid}", f"/instances/{iid}/logs"):
        text = console.get(path).text
        assert evil not in text, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in console.get(f"/instances/{iid}").text
    assert rows(console)[0]["label"] == evil  # JSON for the script, which sets textContent


# -- volumes --------------------------------------------------------------------------------------
def volume_offer(api: httpx.Client, machine_id: int) -> int:
    r = api.post("/api/v0/volumes/search/", json={"machine_id": {"eq": machine_id}})
    assert r.status_code == 200, r.text
    return r.json()["offers"][0]["id"]


def test_volumes_create_list_and_delete(console, api, fleet):
    machine = fleet.machine_ids["box-4090"]
    vo = volume_offer(api, machine)
    page = console.get("/volumes")
    assert "<title>Volumes · gpuyard</title>" in page.text and f'id="volume-offer-{vo}"' in page.text
    r = console.post("/volumes", {"offer": str(vo), "size": "25", "name": "ckpt"})
    assert r.url.path == "/volumes" and "created" in r.text
    vol = api.get("/api/v0/volumes", params={"owner": "me"}).json()["volumes"][0]
    assert vol["name"] == "ckpt" and vol["disk_space"] == 25 and vol["machine_id"] == machine
    assert f'id="volume-{vol["id"]}"' in r.text and "25 GB" in r.text
    r = console.post("/volumes", {"offer": str(vo), "size": "-3"})
    assert r.status_code == 400 and "positive" in error_of(r.text, "size")
    r = console.post("/volumes", {"offer": str(offer_id(api)), "size": "5"})
    assert r.status_code == 400 and "search volumes" in error_of(r.text, "offer")
    r = console.post(f"/volumes/{vol['id']}/delete")
    assert r.url.path == "/volumes" and "deleted" in r.text and 'id="no-volumes"' in r.text


def test_launch_with_a_volume_and_in_use_delete_error(console, api, fleet, template):
    machine = fleet.machine_ids["box-4090"]
    r = console.post("/launch", launch_form(template, offer_id(api), volume_mode="create",
                                            volume_offer=str(volume_offer(api, machine)),
                                            volume_size="12", volume_name="data", mount_path="/data"))
    iid = instance_id_of(r)
    assert re.search(r'id="instance-volume">data \(12 GB\) at <span class="mono">/data</span>', r.text)
    vol = api.get("/api/v0/volumes", params={"owner": "me"}).json()["volumes"][0]
    r = console.post(f"/volumes/{vol['id']}/delete")
    assert r.status_code == 409
    assert f"instance {iid}" in error_of(r.text, f"volume-{vol['id']}")
    console.post(f"/instances/{iid}/destroy")
    # link it to a new instance: the preview shows it, then the launch mounts it
    r = console.post("/launch/preview", launch_form(template, offer_id(api), volume_mode="link",
                                                    volume_id=str(vol["id"]), mount_path="/ckpt",
                                                    do="preview"))
    assert r.status_code == 200 and "at <span class=\"mono\">/ckpt</span>" in r.text
    r = console.post("/launch/preview", launch_form(template, offer_id(api, "RTX 3090"),
                                                    filters="gpu_name=RTX_3090", volume_mode="link",
                                                    volume_id=str(vol["id"]), mount_path="/ckpt",
                                                    do="preview"))
    assert r.status_code == 400 and "machine" in error_of(r.text, "volume_id")  # next to the choice


def test_pages_need_a_sign_in(anonymous):
    for path in ("/launch", "/instances", "/volumes", "/instances/1"):
        assert anonymous.get(path).url.path == "/login"
