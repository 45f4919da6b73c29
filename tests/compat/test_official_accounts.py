"""The official ``vastai`` 1.9.1 CLI and SDK, unchanged, with account secrets (VAST-WIRE §14) and
API keys with permissions (§15) on a live gpuyard server. The CLI runs in a subprocess with HOME
and the XDG dirs inside ``tmp_path``; a start costs about a second, so each run checks several
things."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import requests
from vastai import VastAI

VASTAI = Path(sys.executable).with_name("vastai")
if not VASTAI.exists():  # pragma: no cover - only outside the project venv
    VASTAI = Path(shutil.which("vastai") or VASTAI)

PERMISSIONS = {"api": {"misc": {}, "user_read": {}, "instance_read": {
    "api.instance.request_logs": {"constraints": {"id": {"eq": 1227}}}}}}


@pytest.fixture
def home(tmp_path: Path, live_server: str) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def vastai(live_server: str, home: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAST", "XDG_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_STATE_HOME=str(home / "state"), XDG_DATA_HOME=str(home / "data"), VAST_URL=live_server,
               VASTAI_NO_UPDATE_CHECK="1", CI="1", NO_COLOR="1")

    def run(*args: str, key: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VASTAI), "--url", live_server, "--api-key", key, *args], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                              cwd=home)

    return run


def after(prefix: str, out: str) -> str:
    assert out.startswith(prefix), out
    return out[len(prefix):]


def test_official_cli_env_vars(vastai, alice, api):
    r = vastai("show", "env-vars", key=alice.key)
    assert r.stdout.startswith("No environment variables found.") and r.returncode == 0, r.stderr
    r = vastai("create", "env-var", "HF_TOKEN", "hf abc", key=alice.key)
    assert r.stdout == "Environment variable HF_TOKEN created: new instances get it in their env\n", r.stderr
    r = vastai("create", "env-var", "HF_TOKEN", "x", key=alice.key)
    assert r.returncode == 0
    assert "Failed with error 409: a secret named HF_TOKEN already exists" in r.stdout + r.stderr
    r = vastai("update", "env-var", "HF_TOKEN", "hf_new", key=alice.key)
    assert "Environment variable HF_TOKEN updated" in r.stdout, r.stderr
    r = vastai("create", "env-var", "bad-name", "x", key=alice.key)
    assert "Failed with error 400: key 'bad-name' is not an env variable name" in r.stdout + r.stderr

    r = vastai("show", "env-vars", key=alice.key)
    assert "Name: HF_TOKEN\nValue: *****\n---" in r.stdout and "hf_new" not in r.stdout
    assert "Values are hidden" in r.stdout
    r = vastai("show", "env-vars", "-s", key=alice.key)
    assert "Name: HF_TOKEN\nValue: hf_new\n---" in r.stdout and "hidden" not in r.stdout
    assert json.loads(vastai("show", "env-vars", "--raw", key=alice.key).stdout) == {"HF_TOKEN": "*****"}
    shown = json.loads(vastai("show", "env-vars", "--raw", "-s", key=alice.key).stdout)
    assert shown == {"HF_TOKEN": "hf_new"}
    assert api.get("/api/v0/secrets/").json()["secrets"] == {"HF_TOKEN": "hf_new"}

    r = vastai("delete", "env-var", "HF_TOKEN", key=alice.key)
    assert "Environment variable HF_TOKEN deleted" in r.stdout
    r = vastai("delete", "env-var", "HF_TOKEN", key=alice.key)
    assert "Failed with error 404: you have no secret named HF_TOKEN" in r.stdout + r.stderr


def test_official_cli_api_keys(vastai, alice, api, home):
    (home / "perms.json").write_text(json.dumps(PERMISSIONS))
    r = vastai("create", "api-key", "--name", "ci", "--permission_file", "perms.json",
               "--key_params", '{"instance_id": 5}', key=alice.key)
    made = ast.literal_eval(after("api-key created ", r.stdout.strip()))
    assert made["success"] is True and made["name"] == "ci" and made["key_params"] == '{"instance_id": 5}'
    assert made["permissions"] == {"api": {"user_read": {}, "misc": {},
                                           "instance_read": PERMISSIONS["api"]["instance_read"]}}
    key = made["key"]

    listed = json.loads(vastai("show", "api-keys", "--raw", key=alice.key).stdout)
    assert [k["name"] for k in listed["apikeys"]] == [None, "ci"] and key not in json.dumps(listed)
    r = vastai("show", "api-keys", key=alice.key)
    assert ast.literal_eval(r.stdout.strip())["apikeys"][1]["id"] == made["id"]
    one = ast.literal_eval(vastai("show", "api-key", str(made["id"]), key=key).stdout.strip())
    assert one["apikey"]["current"] is True
    summary = "instance_read: api.instance.request_logs (id eq 1227); user_read; misc"
    assert one["apikey"]["summary"] == summary

    # the restricted key: its categories work, the others are a 403 that names what is missing
    r = vastai("show", "user", key=key)
    assert r.returncode == 0 and "alice" in r.stdout
    r = vastai("create", "env-var", "X", "1", key=key)
    assert "Failed with error 403: this API key may not call POST /api/v0/secrets (api.secret.create, " \
           "category user_write): the key lacks the permission user_write" in r.stdout + r.stderr
    r = vastai("create", "api-key", "--name", "wider", "--permission_file", "perms.json", key=key)
    assert "Failed with error 403: this API key may not call POST /api/v0/auth/apikeys" in r.stdout + r.stderr

    (home / "bad.json").write_text('{"api": {"instance_read": {"api.instance.logs": {}}}}')
    r = vastai("create", "api-key", "--name", "bad", "--permission_file", "bad.json", key=alice.key)
    assert "Failed with error 400: permissions: instance_read: unknown route name 'api.instance.logs'" in (
        r.stdout + r.stderr)
    r = vastai("create", "api-key", "--name", "none", "--permission_file", "missing.json", key=alice.key)
    assert "Error: Permission file 'missing.json' not found." in r.stdout

    r = vastai("delete", "api-key", str(made["id"]), key=alice.key)
    assert ast.literal_eval(r.stdout.strip())["success"] is True
    r = vastai("show", "user", key=key)  # refused at once
    assert "Failed with error 401" in r.stdout + r.stderr


def test_official_cli_reset_api_key(vastai, alice, api):
    spare = api.post("/api/v0/auth/apikeys/", json={"name": "spare"}).json()
    r = vastai("reset", "api-key", key=spare["key"])
    new = after("New api-key: ", r.stdout.strip())
    assert len(new) == 64, r.stderr
    assert "Failed with error 401" in vastai("show", "user", key=spare["key"]).stdout + \
        vastai("show", "user", key=spare["key"]).stderr
    with httpx.Client(base_url=alice.url, headers={"Authorization": f"Bearer {new}"}) as c:
        row = c.get(f"/api/v0/auth/apikeys/{spare['id']}/").json()["apikey"]
    assert row["name"] == "spare" and row["current"] is True


@pytest.fixture
def sdk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live_server: str) -> None:
    home = tmp_path / "sdk-home"
    for var, sub in (("HOME", ""), ("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache"),
                     ("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "data")):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("VAST_URL", live_server)
    monkeypatch.delenv("VAST_API_KEY", raising=False)


def status_of(call) -> tuple[int, str]:
    with pytest.raises(requests.HTTPError) as info:
        call()
    return info.value.response.status_code, info.value.response.json()["msg"]


def test_official_sdk_env_vars_and_api_keys(sdk_home, alice):
    sdk = VastAI(api_key=alice.key, server_url=alice.url)
    assert sdk.show_env_vars() == {}
    assert sdk.create_env_var("HF_TOKEN", "hf_abc")["success"] is True
    assert sdk.show_env_vars() == {"HF_TOKEN": "****"}
    assert sdk.show_env_vars(show_values=True) == {"HF_TOKEN": "hf_abc"}
    assert sdk.update_env_var("HF_TOKEN", "hf_new")["success"] is True
    assert status_of(lambda: sdk.create_env_var("HF_TOKEN", "x"))[0] == 409
    assert sdk.delete_env_var("HF_TOKEN")["success"] is True
    assert status_of(lambda: sdk.update_env_var("HF_TOKEN", "x"))[0] == 404

    made = sdk.create_api_key("ci", {"api": {"misc": {}, "user_read": {}}}, key_params={"x": 1})
    assert made["success"] is True and made["key_params"] == {"x": 1}
    keys = sdk.show_api_keys()  # unwrapped from "apikeys"
    assert isinstance(keys, list) and [k["name"] for k in keys] == [None, "ci"]
    assert sdk.show_api_key(made["id"])["apikey"]["name"] == "ci"

    restricted = VastAI(api_key=made["key"], server_url=alice.url)
    assert restricted.show_env_vars(show_values=True) == {}
    code, msg = status_of(lambda: restricted.create_env_var("X", "1"))
    assert code == 403 and "api.secret.create" in msg and "user_write" in msg
    code, msg = status_of(lambda: restricted.create_api_key("all", None))
    assert code == 403 and "api.apikey.create" in msg
    code, msg = status_of(lambda: sdk.create_api_key("bad", {"api": {"instance_reed": {}}}))
    assert code == 400 and "unknown category instance_reed" in msg

    assert sdk.delete_api_key(made["id"])["success"] is True
    assert status_of(restricted.show_user)[0] == 401

    spare = sdk.create_api_key("spare", None)
    assert spare["permissions"] is None
    other = VastAI(api_key=spare["key"], server_url=alice.url)
    answer = other.reset_api_key()
    assert answer["success"] is True and len(answer["new_api_key"]) == 64
    assert status_of(other.show_user)[0] == 401  # the official SDK keeps the old key
    assert VastAI(api_key=answer["new_api_key"], server_url=alice.url).show_user()["username"] == "alice"
