"""The seed's instance examples, unchanged, through our SDK against a live server; then what the
SDK offers around them: searching offers, the instance lifecycle, logs and volumes."""

from __future__ import annotations

import pytest

from gpuyard import VastAI
from gpuyard.errors import GpuyardError, InvalidInput, NotFound
from gpuyard.sdk.errors import InstanceFailed

TEMPLATE_ENV = "-e MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Llama-8B -e MAX_TOKENS=4096 -p 8000:8000"


@pytest.fixture
def vast_sdk(alice, fleet, monkeypatch):
    # As in the seed, the client is built with only an api_key (the URL comes from the env).
    monkeypatch.setenv("GPUYARD_URL", alice.url)
    sdk = VastAI(api_key=alice.key)
    yield sdk
    sdk.close()


@pytest.fixture
def template_hash(vast_sdk) -> str:
    result = vast_sdk.create_template(
        name="vLLM Inference Server",
        image="vllm/vllm-openai",
        image_tag="latest",
        env=TEMPLATE_ENV,
        onstart_cmd='echo "Starting vLLM server"; vllm serve $MODEL_ID',
        disk_space="50",
        ssh=True,
        direct=True,
    )
    return result["hash_id"]


def one_gpu_offer(sdk: VastAI, gpu: str = "RTX_4090") -> int:
    offers = sdk.search_offers(f"gpu_name={gpu} num_gpus=1", order="dph_total")
    assert offers, f"no 1-GPU {gpu} offer"
    return offers[0]["id"]


def started(sdk: VastAI, result: dict) -> dict:
    """The new instance, once it runs."""
    assert result["success"] is True, result
    return sdk.wait_for_instance(result["new_contract"], timeout=30, interval=0.1)


# -- offers ---------------------------------------------------------------------------------------

def test_search_offers_returns_a_list_of_offer_dicts(vast_sdk):
    offers = vast_sdk.search_offers()
    assert isinstance(offers, list) and offers
    assert {o["gpu_name"] for o in offers} == {"RTX 4090", "RTX 3090"}
    for o in offers:
        assert {"id", "machine_id", "num_gpus", "gpu_ram", "dph_total", "reliability"} <= set(o)


def test_search_offers_filters_orders_and_limits(vast_sdk):
    rows = vast_sdk.search_offers("gpu_name=RTX_3090", order="dph_total")
    assert rows and all(o["gpu_name"] == "RTX 3090" for o in rows)
    cheap_first = vast_sdk.search_offers("num_gpus=1", order="dph_total")
    prices = [o["dph_total"] for o in cheap_first]
    assert prices == sorted(prices)
    assert len(vast_sdk.search_offers(order="dph_total", limit=1)) == 1
    # A dict query is sent as given, on top of the defaults.
    big = vast_sdk.search_offers({"gpu_ram": {"gte": 20000}, "num_gpus": {"eq": 2}})
    assert big and all(o["num_gpus"] == 2 for o in big)


def test_search_offers_rejects_a_bad_query_with_the_clause(vast_sdk):
    with pytest.raises(InvalidInput) as err:
        vast_sdk.search_offers("num_gpus >> 2")
    assert ">>" in err.value.msg


# -- the seed's instance examples -----------------------------------------------------------------

def test_create_an_instance_from_a_template(vast_sdk, template_hash):
    result = vast_sdk.create_instance(
        id=one_gpu_offer(vast_sdk),
        template_hash=template_hash,
        disk=20
    )
    assert result["success"] is True and isinstance(result["new_contract"], int)
    inst = vast_sdk.show_instance(result["new_contract"])
    assert inst["template_hash_id"] == template_hash
    assert inst["image_uuid"] == "vllm/vllm-openai:latest"
    assert inst["disk_space"] == 20 and inst["is_bid"] is False
    assert inst["extra_env"]["MODEL_ID"] == "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"
    assert "8000/tcp" in (started(vast_sdk, result)["ports"] or {})


def test_create_with_an_interruptible_bid(vast_sdk, template_hash):
    result = vast_sdk.create_instance(
        id=one_gpu_offer(vast_sdk),
        template_hash=template_hash,
        disk=64,
        price=0.10
    )
    inst = vast_sdk.show_instance(result["new_contract"])
    assert inst["is_bid"] is True and inst["bid_price"] == pytest.approx(0.10)
    assert inst["disk_space"] == 64


def test_override_the_template_image(vast_sdk, template_hash):
    result = vast_sdk.create_instance(
        id=one_gpu_offer(vast_sdk),
        template_hash=template_hash,
        image="nvidia/cuda:12.1-devel-ubuntu22.04",
        disk=20
    )
    inst = vast_sdk.show_instance(result["new_contract"])
    assert inst["image_uuid"] == "nvidia/cuda:12.1-devel-ubuntu22.04"
    assert inst["template_hash_id"] == template_hash  # everything else still from the template


def test_merge_environment_variables(vast_sdk, template_hash):
    result = vast_sdk.create_instance(
        id=one_gpu_offer(vast_sdk),
        template_hash=template_hash,
        env="-e MODEL_ID=mistralai/Mistral-7B-v0.1 -e HF_TOKEN=hf_xxx",
        disk=20
    )
    env = vast_sdk.show_instance(result["new_contract"])["extra_env"]
    assert env["MODEL_ID"] == "mistralai/Mistral-7B-v0.1"  # request overrides template
    assert env["MAX_TOKENS"] == "4096"  # retained from template
    assert env["HF_TOKEN"] == "hf_xxx"  # added from request


# -- create: checks and dry runs ------------------------------------------------------------------

def test_malformed_env_is_refused_before_anything_is_rented(vast_sdk, template_hash):
    offer = one_gpu_offer(vast_sdk)
    with pytest.raises(ValueError) as err:
        vast_sdk.create_instance(id=offer, template_hash=template_hash, env="HF_TOKEN=hf_xxx")
    assert "-e HF_TOKEN=hf_xxx" in str(err.value)  # says how to write it
    with pytest.raises(ValueError, match="price"):
        vast_sdk.create_instance(id=offer, image="ubuntu", price=0.1, bid_price=0.2)
    assert vast_sdk.show_instances() == []


def test_dry_run_shows_the_merged_launch_and_rents_nothing(vast_sdk, template_hash):
    offer = one_gpu_offer(vast_sdk)
    result = vast_sdk.create_instance(
        id=offer, template_hash=template_hash, env="-e HF_TOKEN=hf_xxx -e MAX_TOKENS=8192",
        disk=20, dry_run=True,
    )
    launch = result["launch"]
    assert result["dry_run"] is True and launch["offer_id"] == offer
    assert launch["image"] == "vllm/vllm-openai" and launch["template_hash_id"] == template_hash
    assert dict(launch["extra_env"]).items() >= {
        "MODEL_ID": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "MAX_TOKENS": "8192",
        "HF_TOKEN": "hf_xxx",
    }.items()
    assert launch["disk_space"] == 20 and launch["is_bid"] is False
    assert vast_sdk.show_instances() == []


def test_an_unknown_offer_is_a_not_found_error_with_the_servers_message(vast_sdk):
    with pytest.raises(NotFound) as err:
        vast_sdk.create_instance(id=987654, image="ubuntu:22.04")
    assert err.value.msg and "987654" in err.value.msg


# -- reading and changing instances ---------------------------------------------------------------

def test_show_instances_is_a_flat_list_with_env_as_a_dict(vast_sdk):
    a = vast_sdk.create_instance(one_gpu_offer(vast_sdk), image="ubuntu:22.04",
                                 env="-e A=1 -p 8080:8080", ssh=True)
    b = vast_sdk.create_instance(one_gpu_offer(vast_sdk, "RTX_3090"), image="ubuntu:22.04")
    rows = vast_sdk.show_instances()
    assert [r["id"] for r in rows] == sorted([a["new_contract"], b["new_contract"]])
    first = rows[0]
    assert first["extra_env"]["A"] == "1" and isinstance(first["duration"], float)
    one = vast_sdk.show_instance(a["new_contract"])
    assert isinstance(one, dict) and one["id"] == a["new_contract"]


def test_lifecycle_label_stop_start_reboot_logs_destroy(vast_sdk):
    result = vast_sdk.create_instance(
        one_gpu_offer(vast_sdk), image="ubuntu:22.04", env="-e WHO=world",
        onstart_cmd="echo hello $WHO", ssh=True,
    )
    iid = result["new_contract"]
    inst = started(vast_sdk, result)
    assert inst["actual_status"] == "running"
    assert "22/tcp" not in inst["ports"]  # a simulated instance runs no SSH server: no direct address
    assert vast_sdk.label_instance(iid, "trainer")["success"] is True
    assert vast_sdk.show_instance(iid)["label"] == "trainer"

    assert vast_sdk.stop_instance(iid)["success"] is True
    assert vast_sdk.wait_for_instance(iid, until=("stopped",), timeout=30, interval=0.1)
    assert vast_sdk.start_instance(iid)["success"] is True
    assert vast_sdk.wait_for_instance(iid, timeout=30, interval=0.1)["actual_status"] == "running"
    assert vast_sdk.reboot_instance(iid)["success"] is True

    text = vast_sdk.logs(iid)
    assert isinstance(text, str) and "hello world" in text
    assert "hello world" in vast_sdk.logs(iid, tail=50, filter="hello")

    assert vast_sdk.destroy_instance(iid)["success"] is True
    assert vast_sdk.show_instances() == []


def test_waiting_for_a_stopped_instance_to_run_fails_with_its_status(vast_sdk):
    iid = vast_sdk.create_instance(one_gpu_offer(vast_sdk), image="ubuntu:22.04")["new_contract"]
    vast_sdk.stop_instance(iid)
    vast_sdk.wait_for_instance(iid, until=("stopped",), timeout=30, interval=0.1)
    with pytest.raises(InstanceFailed, match=f"instance {iid} is stopped"):
        vast_sdk.wait_for_instance(iid, timeout=30, interval=0.1)
    vast_sdk.destroy_instance(iid)
    with pytest.raises(InstanceFailed, match="no longer exists"):
        vast_sdk.wait_for_instance(iid, timeout=30, interval=0.1)


def test_bulk_start_stop_destroy(vast_sdk):
    ids = [
        vast_sdk.create_instance(one_gpu_offer(vast_sdk, gpu), image="ubuntu:22.04")["new_contract"]
        for gpu in ("RTX_4090", "RTX_3090")
    ]
    assert vast_sdk.stop_instances(ids)["success"] is True
    for iid in ids:
        vast_sdk.wait_for_instance(iid, until=("stopped",), timeout=30, interval=0.1)
    assert vast_sdk.start_instances(ids)["success"] is True
    assert vast_sdk.destroy_instances(ids)["success"] is True
    assert vast_sdk.show_instances() == []


def test_change_bid(vast_sdk):
    iid = vast_sdk.create_instance(one_gpu_offer(vast_sdk), image="ubuntu:22.04",
                                   price=0.10)["new_contract"]
    assert vast_sdk.change_bid(iid, price=0.3)["success"] is True
    assert vast_sdk.show_instance(iid)["bid_price"] == pytest.approx(0.3)


def test_update_instance_changes_its_image(vast_sdk):
    iid = vast_sdk.create_instance(one_gpu_offer(vast_sdk), image="ubuntu:22.04")["new_contract"]
    result = vast_sdk.update_instance(iid, image="ubuntu:24.04")
    assert result["success"] is True
    assert vast_sdk.show_instance(iid)["image_uuid"] == "ubuntu:24.04"


def test_other_users_cannot_see_or_touch_an_instance(vast_sdk, bob):
    iid = vast_sdk.create_instance(one_gpu_offer(vast_sdk), image="ubuntu:22.04")["new_contract"]
    with bob.sdk() as other:
        assert other.show_instances() == []
        with pytest.raises(GpuyardError):
            other.destroy_instance(iid)
    assert vast_sdk.show_instance(iid)["id"] == iid


# -- volumes --------------------------------------------------------------------------------------

def test_volumes_search_create_mount_delete(vast_sdk):
    offers = vast_sdk.search_volumes("disk_space>=100", order="storage_cost")
    assert isinstance(offers, list) and offers
    created = vast_sdk.create_volume(offers[0]["id"], size=20, name="data")
    vid = created["volume_id"]
    [vol] = vast_sdk.show_volumes()
    assert vol["id"] == vid and vol["disk_space"] == 20

    machine = vol["machine_id"]
    offer = next(o for o in vast_sdk.search_offers("num_gpus=1") if o["machine_id"] == machine)
    result = vast_sdk.create_instance(offer["id"], image="ubuntu:22.04", link_volume=vid,
                                      mount_path="/workspace")
    inst = vast_sdk.show_instance(result["new_contract"])
    assert [(v["id"], v["mount_path"]) for v in inst["volume_info"]] == [(vid, "/workspace")]

    with pytest.raises(ValueError, match="mount_path"):
        vast_sdk.create_instance(offer["id"], image="ubuntu:22.04", link_volume=vid)
    vast_sdk.destroy_instance(result["new_contract"])
    assert vast_sdk.delete_volume(vid)["success"] is True
    assert vast_sdk.show_volumes() == []
