"""hash_id is content-derived and stable across users and releases: these values are pinned.

If one of these tests fails, every stored hash would change for every user. Don't update the
expected values; fix the change (or introduce a new, versioned canonical form).
"""

from __future__ import annotations

import pytest

from gpuyard.errors import InvalidInput
from gpuyard.services.catalog.template_content import build_content, canonical_json, content_hash

VLLM = {
    "name": "vLLM Inference Server",
    "image": "vllm/vllm-openai",
    "tag": "latest",
    "env": "-e MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Llama-8B -p 8000:8000",
    "onstart": 'echo "Starting vLLM server"; vllm serve $MODEL_ID',
    "recommended_disk_space": "50",
    "runtype": "ssh",
    "use_ssh": True,
    "ssh_direct": True,
}


def test_golden_hash_of_the_seed_vllm_template():
    content = build_content(VLLM)
    assert canonical_json(content) == (
        '{"args_str":null,"desc":null,"docker_login_repo":null,"env":"-e MODEL_ID=deepseek-ai/'
        'DeepSeek-R1-Distill-Llama-8B -p 8000:8000","extra_filters":{},"href":null,'
        '"image":"vllm/vllm-openai","jup_direct":false,"jupyter_dir":null,'
        '"name":"vLLM Inference Server","onstart":"echo \\"Starting vLLM server\\"; vllm serve '
        '$MODEL_ID","private":true,"readme":null,"readme_visible":true,'
        '"recommended_disk_space":50.0,"repo":null,"runtype":"ssh","ssh_direct":true,'
        '"tag":"latest","use_jupyter_lab":false,"use_ssh":true}'
    )
    assert content_hash(content) == "9e8ea1872a0bab4dd991f5f8f1af1c8c"


def test_golden_hash_of_a_minimal_template():
    assert content_hash(build_content({"image": "nvidia/cuda"})) == "275452310a7a3f2abf5da3cf8fb23105"


def test_golden_hash_with_filters_and_unicode():
    content = build_content(
        {
            "name": "Ünïcode ✓",
            "image": "ghcr.io/huggingface/text-generation-inference",
            "tag": "1.0.3",
            "extra_filters": {
                "gpu_ram": {"gte": 23000.0},
                "num_gpus": {"eq": "1"},
                "gpu_name": {"eq": "RTX 3090"},
                "geolocation": {"in": ["SE", "TW"]},
            },
            "private": False,
            "recommended_disk_space": 8,
        }
    )
    assert content_hash(content) == "87eb30119c7a20e365c6adfa30be88e8"


@pytest.mark.parametrize(
    "a, b",
    [
        ({"tag": None}, {"tag": "latest"}),  # the default tag is written out
        ({"recommended_disk_space": "50"}, {"recommended_disk_space": 50}),
        ({"extra_filters": {"num_gpus": {"eq": "1"}}}, {"extra_filters": {"num_gpus": {"eq": 1}}}),
        ({"extra_filters": {"dph": {"lt": "0.5"}}}, {"extra_filters": {"dph_total": {"lt": 0.5}}}),
        ({"desc": ""}, {"desc": None}),
        ({"private": None}, {"private": True}),
    ],
)
def test_equal_meaning_gives_equal_hash(a, b):
    base = {"image": "img"}
    assert content_hash(build_content({**base, **a})) == content_hash(build_content({**base, **b}))


@pytest.mark.parametrize(
    "change",
    [{"name": "other"}, {"private": False}, {"env": "-e A=1"}, {"tag": "v2"}, {"use_ssh": True}],
)
def test_any_content_change_changes_the_hash(change):
    base = {"image": "img", "name": "n"}
    assert content_hash(build_content(base)) != content_hash(build_content({**base, **change}))


def test_hash_is_32_lowercase_hex():
    h = content_hash(build_content({"image": "x"}))
    assert len(h) == 32 and h == h.lower() and int(h, 16) >= 0


def test_build_content_refuses_what_it_cannot_store():
    with pytest.raises(InvalidInput, match="image is required"):
        build_content({"name": "no image"})
    with pytest.raises(InvalidInput, match="runtype"):
        build_content({"image": "x", "runtype": "bogus"})


def test_a_tag_inside_the_image_is_the_same_content_as_a_separate_tag():
    inline = build_content({"image": "ghcr.io/huggingface/text-generation-inference:1.0.3"})
    apart = build_content({"image": "ghcr.io/huggingface/text-generation-inference", "tag": "1.0.3"})
    assert inline == apart and inline["tag"] == "1.0.3"
    registry_port = build_content({"image": "localhost:5000/team/img"})
    assert registry_port["image"] == "localhost:5000/team/img" and registry_port["tag"] == "latest"
    with pytest.raises(InvalidInput, match="give the tag in one place"):
        build_content({"image": "img:1.0", "tag": "2.0"})
