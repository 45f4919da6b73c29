"""Every code sample of the seed's template sections, run with only the import line swapped
(and the placeholder key/hash/id values replaced by real ones)."""

from __future__ import annotations

import pytest

from gpuyard import VastAI
from gpuyard.errors import InvalidInput, NotFound


@pytest.fixture
def vast_sdk(alice, monkeypatch):
    # The seed builds the client with only an api_key: the URL comes from the environment.
    monkeypatch.setenv("GPUYARD_URL", alice.url)
    sdk = VastAI(api_key=alice.key)
    yield sdk
    sdk.close()


def test_create_a_template(vast_sdk):
    result = vast_sdk.create_template(
        name="vLLM Inference Server",
        image="vllm/vllm-openai",
        image_tag="latest",
        env="-e MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Llama-8B -p 8000:8000",
        onstart_cmd='echo "Starting vLLM server"; vllm serve $MODEL_ID',
        disk_space="50",
        ssh=True,
        direct=True
    )
    template = result["template"]
    assert result["success"] is True
    assert result["id"] == template["id"] and result["hash_id"] == template["hash_id"]
    assert template["runtype"] == "ssh" and template["use_ssh"] and template["ssh_direct"]
    assert template["recommended_disk_space"] == 50.0
    assert template["onstart"] == 'echo "Starting vLLM server"; vllm serve $MODEL_ID'
    assert template["extra_filters"] == {}  # the SDK seeds filters only with search_params


def test_create_with_search_params(vast_sdk):
    result = vast_sdk.create_template(
        name="tgi-llama2-7B-quantized",
        image="ghcr.io/huggingface/text-generation-inference:1.0.3",
        env="-p 3000:3000 -e MODEL_ARGS='--model-id TheBloke/Llama-2-7B-chat-GPTQ --quantize gptq'",
        onstart_cmd="wget -O - https://raw.githubusercontent.com/vast-ai/vast-pyworker/main/scripts/launch_tgi.sh | bash",
        search_params="gpu_ram>=23 num_gpus=1 gpu_name=RTX_3090 inet_down>128 direct_port_count>3 disk_space>=192",
        disk_space="8.0",
        ssh=True,
        direct=True
    )
    t = result["template"]
    assert t["image"] == "ghcr.io/huggingface/text-generation-inference" and t["tag"] == "1.0.3"
    assert t["extra_filters"] == {
        "verified": {"eq": True},
        "external": {"eq": False},
        "rentable": {"eq": True},
        "gpu_ram": {"gte": 23000.0},
        "num_gpus": {"eq": 1},
        "gpu_name": {"eq": "RTX 3090"},
        "inet_down": {"gt": 128.0},
        "direct_port_count": {"gt": 3},
        "disk_space": {"gte": 192.0},
    }
    assert t["recommended_disk_space"] == 8.0


def test_search_for_templates(vast_sdk, alice, bob, set_count_created):
    popular = vast_sdk.create_template(name="popular", image="img", ssh=True, direct=True)
    quiet = vast_sdk.create_template(name="quiet", image="img2")
    set_count_created(popular["id"], 250)
    set_count_created(quiet["id"], 3)

    # Search for popular templates (more than 100 instances created)
    result = vast_sdk.search_templates(query="count_created > 100")
    assert [t["name"] for t in result] == ["popular"]

    # Search for templates by specific creators
    result = vast_sdk.search_templates(
        query=f"count_created > 100 creator_id in [{bob.id},{alice.id}]"
    )
    assert [t["id"] for t in result] == [popular["id"]]

    # Search for recommended templates with SSH support
    result = vast_sdk.search_templates(
        query="recommended == True use_ssh == True"
    )
    assert result == []  # nothing is on the recommended list yet
    assert [t["name"] for t in vast_sdk.search_templates("recommended == False use_ssh == True")] == [
        "popular"
    ]


def test_edit_a_template_changes_only_what_is_given(vast_sdk):
    created = vast_sdk.create_template(
        name="vLLM Inference Server", image="vllm/vllm-openai", env="-e A=1 -p 8000:8000",
        onstart_cmd="serve", disk_space="50", ssh=True, direct=True,
        search_params="num_gpus=1",
    )
    old_hash = created["hash_id"]
    result = vast_sdk.update_template(
        HASH_ID=old_hash,
        name="Updated Template Name",
        onstart_cmd="echo 'new startup script'"
    )
    t = result["template"]
    assert t["id"] == created["id"] and t["hash_id"] != old_hash
    assert t["name"] == "Updated Template Name" and t["onstart"] == "echo 'new startup script'"
    # not passed, so kept, flags included even though the signature defaults them to False
    assert t["image"] == "vllm/vllm-openai" and t["env"] == "-e A=1 -p 8000:8000"
    assert t["use_ssh"] is True and t["ssh_direct"] is True and t["runtype"] == "ssh"
    assert t["recommended_disk_space"] == 50.0
    assert t["extra_filters"]["num_gpus"] == {"eq": 1}

    result = vast_sdk.update_template(
        HASH_ID=t["hash_id"],
        name="tgi-llama2-7B-quantized",
        image="ghcr.io/huggingface/text-generation-inference:1.0.3",
        env="-p 3000:3000 -e MODEL_ARGS='--model-id TheBloke/Llama-2-7B-chat-GPTQ --quantize gptq'",
        onstart_cmd="wget -O - https://raw.githubusercontent.com/vast-ai/vast-pyworker/main/scripts/launch_tgi.sh | bash",
        ssh=True,
        direct=True
    )
    t2 = result["template"]
    assert t2["id"] == created["id"] and t2["hash_id"] not in (old_hash, t["hash_id"])
    assert t2["tag"] == "1.0.3" and t2["name"] == "tgi-llama2-7B-quantized"
    versions = vast_sdk.template_versions(created["id"])
    assert [v["hash_id"] for v in versions] == [t2["hash_id"], t["hash_id"], old_hash]
    # the old hash still names the old content
    assert vast_sdk.show_template(old_hash)["name"] == "vLLM Inference Server"


def test_update_with_explicit_false_flag_and_disk(vast_sdk):
    created = vast_sdk.create_template(image="img", ssh=True, direct=True)
    t = vast_sdk.update_template(created["hash_id"], direct=False, disk=32)["template"]
    assert t["ssh_direct"] is False and t["use_ssh"] is True and t["recommended_disk_space"] == 32.0


def test_delete_a_template(vast_sdk):
    a = vast_sdk.create_template(name="a", image="img")
    b = vast_sdk.create_template(name="b", image="img")
    # Delete by numeric ID
    result = vast_sdk.delete_template(template_id=a["id"])
    assert result["success"] is True
    # Delete by hash ID
    result = vast_sdk.delete_template(hash_id=b["hash_id"])
    assert result["success"] is True
    assert vast_sdk.search_templates() == []


def test_pitfalls_raise_typed_errors_with_the_server_msg(vast_sdk):
    created = vast_sdk.create_template(name="a", image="img")
    with pytest.raises(InvalidInput) as exc:
        vast_sdk.update_template(HASH_ID=str(created["id"]), name="x")
    assert "numeric template id" in str(exc.value) and exc.value.status == 400
    with pytest.raises(InvalidInput, match="is a hash_id"):
        vast_sdk.delete_template(template_id=created["hash_id"])
    with pytest.raises(InvalidInput, match="-e VAR1=value1"):
        vast_sdk.create_template(image="img", env="VAR1=value1 VAR2=value2")
    with pytest.raises(InvalidInput, match="not a dict"):
        vast_sdk.create_template(image="img", env={"VAR1": "value1"})
    with pytest.raises(NotFound, match="987654"):
        vast_sdk.delete_template(template_id=987654)


def test_show_user(vast_sdk, alice):
    user = vast_sdk.show_user()
    assert user["id"] == alice.id and user["username"] == "alice" and "api_key" not in user


def test_unreachable_server_is_a_clear_error():
    from gpuyard.sdk.errors import ConnectionFailed

    with VastAI(api_key="k", server_url="http://127.0.0.1:9") as sdk:
        with pytest.raises(ConnectionFailed, match="cannot reach the gpuyard server"):
            sdk.show_user()


def test_config_file_and_environment(tmp_path, monkeypatch, alice):
    from gpuyard.sdk.config import save_config

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("GPUYARD_API_KEY", raising=False)
    monkeypatch.delenv("GPUYARD_URL", raising=False)
    path = save_config(api_key=alice.key, url=alice.url)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with VastAI() as sdk:
        assert sdk.show_user()["username"] == "alice"
    monkeypatch.setenv("GPUYARD_API_KEY", "wrong")
    with VastAI() as sdk, pytest.raises(Exception, match="invalid API key"):
        sdk.show_user()
