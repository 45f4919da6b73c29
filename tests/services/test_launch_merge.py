"""The seed's precedence table, rule by rule: scalars override, env merges by key (request
wins), extra_filters merge by field."""

from __future__ import annotations

import pytest

from gpuyard.errors import InvalidInput, QueryError
from gpuyard.services.rentals.launch import merge, split_image
from gpuyard.wire.base import parse
from gpuyard.wire.instances import LaunchRequest

TEMPLATE = {
    "template_id": 7,
    "hash_id": "a" * 32,
    "name": "vllm",
    "image": "vllm/vllm-openai",
    "tag": "v0.6",
    "env": "-e MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Llama-8B -e MAX_TOKENS=4096 -p 8000:8000",
    "onstart": "vllm serve $MODEL_ID",
    "runtype": "ssh",
    "args_str": None,
    "recommended_disk_space": 50.0,
    "extra_filters": {"gpu_ram": {"gte": 23000.0}, "num_gpus": {"eq": 1}},
    "docker_login_repo": None,
    "jupyter_dir": None,
    "use_jupyter_lab": False,
}


def launch(template=TEMPLATE, **body):
    return merge(parse(LaunchRequest, body), template)


def env_of(merged) -> dict[str, str]:
    return dict(merged["extra_env"])


def test_template_alone_gives_the_template_launch():
    m = launch()
    assert m["image_uuid"] == "vllm/vllm-openai:v0.6"
    assert m["onstart"] == "vllm serve $MODEL_ID"
    assert m["disk_space"] == 50.0
    assert m["runtype"] == "ssh"
    assert m["template_id"] == 7 and m["template_hash_id"] == "a" * 32
    assert env_of(m) == {
        "MODEL_ID": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        "MAX_TOKENS": "4096",
        "-p 8000:8000": "1",
    }


def test_seed_env_merge_example_request_wins_template_kept_new_added():
    m = launch(env="-e MODEL_ID=mistralai/Mistral-7B-v0.1 -e HF_TOKEN=hf_xxx", disk=20)
    assert env_of(m) == {
        "MODEL_ID": "mistralai/Mistral-7B-v0.1",
        "MAX_TOKENS": "4096",
        "HF_TOKEN": "hf_xxx",
        "-p 8000:8000": "1",
    }
    assert m["disk_space"] == 20.0


def test_env_in_the_official_clients_dict_form_merges_the_same_way():
    m = launch(env={"MODEL_ID": "x", "-p 9000:9000": "1", "-h": "node1"})
    env = env_of(m)
    assert env["MODEL_ID"] == "x" and env["MAX_TOKENS"] == "4096"
    assert env["-p 8000:8000"] == "1" and env["-p 9000:9000"] == "1"
    assert env["-h"] == "node1"


def test_ports_merge_by_container_port_request_host_port_wins():
    m = launch(env="-p 18000:8000")
    ports = [k for k, _ in m["extra_env"] if k.startswith("-p ")]
    assert ports == ["-p 18000:8000"]


def test_seed_image_override_replaces_image_and_tag():
    m = launch(image="nvidia/cuda:12.1-devel-ubuntu22.04", disk=20)
    assert (m["image"], m["tag"]) == ("nvidia/cuda", "12.1-devel-ubuntu22.04")
    assert m["image_uuid"] == "nvidia/cuda:12.1-devel-ubuntu22.04"
    assert m["onstart"] == TEMPLATE["onstart"]  # other fields stay the template's


def test_image_without_tag_means_latest_not_the_templates_tag():
    assert launch(image="pytorch/pytorch")["image_uuid"] == "pytorch/pytorch:latest"


@pytest.mark.parametrize("field,value,key", [
    ("onstart", "echo override", "onstart"),
    ("runtype", "args", "runtype"),
    ("label", "mine", "label"),
    ("jupyter_dir", "/data", "jupyter_dir"),
])
def test_request_scalars_override_the_template(field, value, key):
    assert launch(**{field: value})[key] == value


def test_args_list_and_args_str():
    assert launch(args=["-c", "echo hi"])["args"] == ["-c", "echo hi"]
    assert launch(template={**TEMPLATE, "args_str": "--port 8000"})["args"] == ["--port", "8000"]


def test_extra_filters_merge_by_field_request_wins():
    m = launch(extra_filters={"num_gpus": {"eq": 2}, "geolocation": {"in": ["SE"]}})
    assert m["extra_filters"] == {
        "gpu_ram": {"gte": 23000.0},
        "num_gpus": {"eq": 2},
        "geolocation": {"in": ["SE"]},
    }
    assert launch(extra_filters="gpu_ram>=40")["extra_filters"]["gpu_ram"] == {"gte": 40000.0}


def test_a_price_makes_a_bid():
    assert launch(price=0.1)["is_bid"] is True
    assert launch()["is_bid"] is False


def test_without_template_the_request_must_name_an_image():
    with pytest.raises(InvalidInput, match="no image"):
        launch(template=None)
    m = launch(template=None, image="busybox", disk=5)
    assert m["image_uuid"] == "busybox:latest" and m["runtype"] == "ssh"
    assert m["disk_space"] == 5.0


@pytest.mark.parametrize("body,needle", [
    ({"env": "MODEL=x"}, "-e"),
    ({"env": {"1X": "a b"}}, "valid variable name"),
    ({"env": ["-e", "A=1"]}, "env must be"),
    ({"price": -1}, "price"),
    ({"price": "cheap"}, "price"),
    ({"disk": 0}, "disk"),
    ({"runtype": "vm"}, "runtype"),
    ({"args": "x", "extra_filters": "nonsense_field>1"}, "extra_filters"),
    ({"client_id": "someone"}, "client_id"),
    ({"bogus": 1}, "unknown create-instance field"),
    ({"python_utf8": "yes"}, "python_utf8"),
    ({"volume_info": "vol"}, "volume_info"),
])
def test_bad_requests_say_what_to_fix(body, needle):
    with pytest.raises((InvalidInput, QueryError)) as err:
        launch(**body)
    assert needle in err.value.msg


def test_split_image():
    assert split_image("ghcr.io:5000/org/img:1.2") == ("ghcr.io:5000/org/img", "1.2")
    assert split_image("busybox") == ("busybox", "latest")
    assert split_image("img@sha256:abc") == ("img@sha256:abc", "")


def test_the_clients_default_disk_gives_way_to_the_templates_recommendation():
    """The official client always sends disk, 10 (an int) when the user gave none: the template's
    recommended disk applies then, and the merge says so; an explicit disk still wins."""
    default = launch(disk=10)
    assert default["disk_space"] == 50.0 and "recommended disk" in default["disk_note"]
    for explicit in (10.0, 12, "10"):
        chosen = launch(disk=explicit)
        assert chosen["disk_space"] == float(explicit) and chosen["disk_note"] is None
    no_recommendation = launch({**TEMPLATE, "recommended_disk_space": None}, disk=10)
    assert no_recommendation["disk_space"] == 10.0 and no_recommendation["disk_note"] is None
