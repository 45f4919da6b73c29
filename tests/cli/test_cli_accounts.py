"""gpuyard's own CLI and SDK for secrets (env vars) and API keys, with the official client's
command names and flags, in-process against a live server."""

from __future__ import annotations

import json

import pytest

from gpuyard import VastAI
from gpuyard.cli.main import main
from gpuyard.errors import Conflict, Forbidden, NotFound, Unauthorized


@pytest.fixture
def run(alice, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("GPUYARD_URL", alice.url)
    monkeypatch.setenv("GPUYARD_API_KEY", alice.key)

    def go(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return go


def test_env_var_commands(run):
    assert run("show", "env-vars") == (0, "No environment variables found.\n", "")
    code, out, _ = run("create", "env-var", "HF_TOKEN", "hf_abc")
    assert code == 0 and out == "Environment variable HF_TOKEN created: new instances get it in their env\n"
    code, _, err = run("create", "env-var", "HF_TOKEN", "x")
    assert code == 1 and "already exists" in err and "update env-var HF_TOKEN VALUE" in err
    code, out, _ = run("show", "env-vars")
    assert code == 0 and "HF_TOKEN" in out and "*****" in out and "hf_abc" not in out
    assert "-s (--show-values)" in out
    code, out, _ = run("show", "env-vars", "-s")
    assert code == 0 and "hf_abc" in out and "hidden" not in out
    assert json.loads(run("show", "env-vars", "--raw")[1]) == {"HF_TOKEN": "*****"}
    assert json.loads(run("show", "env-vars", "--raw", "--show-values")[1]) == {"HF_TOKEN": "hf_abc"}
    code, out, _ = run("update", "env-var", "HF_TOKEN", "hf_new")
    assert code == 0 and "updated" in out
    assert json.loads(run("show", "env-vars", "-s", "--raw")[1]) == {"HF_TOKEN": "hf_new"}
    code, _, err = run("create", "env-var", "9LIVES", "x")
    assert code == 1 and "not an env variable name" in err
    code, out, _ = run("delete", "env-var", "HF_TOKEN")
    assert code == 0 and "deleted" in out
    code, _, err = run("delete", "env-var", "HF_TOKEN")
    assert code == 1 and "no secret named HF_TOKEN" in err


def test_api_key_commands(run, alice, tmp_path):
    perms = tmp_path / "perms.json"
    perms.write_text(json.dumps({"api": {"misc": {}, "instance_read": {
        "api.instance.request_logs": {"constraints": {"id": {"eq": 1227}}}}}}))
    code, out, _ = run("create", "api-key", "--name", "ci", "--permission_file", str(perms),
                       "--key_params", '{"instance_id": 5}')
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("API key ")
    assert "instance_read: api.instance.request_logs (id eq 1227)" in lines[0]
    key = lines[1]
    assert len(key) == 64 and lines[2] == "Save it now: its text is not shown again."
    code, out, _ = run("show", "api-keys")
    assert code == 0 and "ci" in out and "full access" in out and "(this key)" in out and key not in out
    rows = json.loads(run("show", "api-keys", "--raw")[1])
    ci = next(r for r in rows if r["name"] == "ci")
    assert ci["key_params"] == '{"instance_id": 5}'
    code, out, _ = run("show", "api-key", str(ci["id"]))
    assert code == 0 and "api.instance.request_logs" in out and "never" in out

    missing = str(tmp_path / "missing.json")
    code, _, err = run("create", "api-key", "--name", "x", "--permission_file", missing)
    assert code == 1 and "not found" in err
    (tmp_path / "bad.json").write_text('{"api": {"bogus": {}}}')
    code, _, err = run("create", "api-key", "--permission_file", str(tmp_path / "bad.json"))
    assert code == 1 and "unknown category bogus" in err
    code, out, _ = run("create", "api-key", "--name", "spare")  # no file: a full key
    assert code == 0 and "(full access)" in out

    code, out, _ = run("delete", "api-key", str(ci["id"]))
    assert code == 0 and "refused from now on" in out
    code, _, err = run("show", "api-key", str(ci["id"]))
    assert code == 1 and "not found among your keys" in err

    code, out, _ = run("reset", "api-key")
    assert code == 0 and out.startswith("New api-key: ")
    new = out.splitlines()[0].split(": ")[1]
    code, _, err = run("show", "user")  # GPUYARD_API_KEY still holds the old text
    assert code == 1 and "invalid API key" in err
    code, out, _ = run("show", "user", "--api-key", new)
    assert code == 0 and "alice" in out


def test_sdk_methods(alice, bob):
    sdk = VastAI(api_key=alice.key, server_url=alice.url)
    assert sdk.show_env_vars() == {}
    assert sdk.create_env_var("HF_TOKEN", "hf_abc")["success"] is True
    assert sdk.show_env_vars() == {"HF_TOKEN": "****"}
    assert sdk.show_env_vars(show_values=True) == {"HF_TOKEN": "hf_abc"}
    with pytest.raises(Conflict, match="already exists"):
        sdk.create_env_var("HF_TOKEN", "x")
    assert sdk.update_env_var("HF_TOKEN", "hf_new")["success"] is True
    assert sdk.delete_env_var("HF_TOKEN")["success"] is True
    with pytest.raises(NotFound):
        sdk.delete_env_var("HF_TOKEN")

    made = sdk.create_api_key("reader", {"api": {"user_read": {}}}, key_params={"x": 1})
    assert made["key_params"] == {"x": 1} and made["summary"] == "user_read"
    keys = sdk.show_api_keys()
    assert [k["name"] for k in keys] == [None, "reader"]
    assert sdk.show_api_key(made["id"])["apikey"]["id"] == made["id"]
    reader = VastAI(api_key=made["key"], server_url=alice.url)
    assert reader.show_user()["username"] == "alice"
    with pytest.raises(Forbidden, match="lacks the permission user_write"):
        reader.create_env_var("X", "1")
    assert sdk.delete_api_key(made["id"])["success"] is True
    with pytest.raises(Unauthorized):
        reader.show_user()

    answer = sdk.reset_api_key()  # the SDK switches to the new key
    assert answer["success"] is True and sdk.api_key == answer["new_api_key"]
    assert sdk.show_user()["username"] == "alice"
    with pytest.raises(Unauthorized):
        VastAI(api_key=alice.key, server_url=alice.url).show_user()


def test_the_dry_run_names_the_secrets_a_launch_gets_with_masked_values(run, fleet):
    assert run("create", "env-var", "HF_TOKEN", "hf_abc")[0] == 0
    assert run("create", "env-var", "MODEL_ID", "from-the-account")[0] == 0
    offer = json.loads(run("search", "offers", "gpu_name=RTX_4090", "--raw")[1])[0]["id"]
    code, out, err = run("create", "instance", str(offer), "--image", "busybox", "--env", "-e MODEL_ID=mine",
                         "--dry-run")
    assert code == 0, err
    assert "account secrets  HF_TOKEN=*****" in out and "MODEL_ID=mine" in out
    assert "hf_abc" not in out and "from-the-account" not in out
