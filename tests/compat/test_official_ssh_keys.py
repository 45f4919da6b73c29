"""The official ``vastai`` 1.9.1 CLI and SDK, unchanged, with SSH keys (VAST-WIRE §13.1, §13.2) on
a live gpuyard server: create ssh-key (text, and the file name it sends verbatim), show ssh-keys,
update and delete, attach and detach ssh. The CLI runs in a subprocess with HOME and the XDG dirs
inside ``tmp_path``."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest
import requests
from vastai import VastAI

VASTAI = Path(sys.executable).with_name("vastai")
if not VASTAI.exists():  # pragma: no cover - only outside the project venv
    VASTAI = Path(shutil.which("vastai") or VASTAI)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def vastai(live_server: str, home: Path, alice):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAST", "XDG_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_STATE_HOME=str(home / "state"), XDG_DATA_HOME=str(home / "data"),
               VASTAI_NO_UPDATE_CHECK="1", CI="1", NO_COLOR="1")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VASTAI), "--url", live_server, "--api-key", alice.key, *args], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                              cwd=home)

    return run


def public(comment: str = "me@laptop") -> str:
    return asyncssh.generate_private_key("ssh-ed25519", comment=comment).export_public_key().decode().strip()


def printed(prefix: str, out: str) -> dict:
    """The body the CLI printed as a Python repr after ``prefix`` (on a line of its own)."""
    line = next((ln for ln in out.splitlines() if ln.startswith(prefix)), None)
    assert line is not None, out
    return ast.literal_eval(line[len(prefix):])


def test_official_cli_key_commands(vastai, home, api):
    key = public()
    r = vastai("create", "ssh-key", key)
    made = printed("ssh-key created ", r.stdout)["key"]
    assert made["public_key"] == key and made["fingerprint"].startswith("SHA256:"), r.stderr
    assert "Note: You may need to add the new public key" in r.stdout

    # the official CLI sends a file name verbatim: the answer says to send the key text
    (home / "key.pub").write_text(public() + "\n")
    r = vastai("create", "ssh-key", "key.pub")
    assert r.returncode == 0
    assert r.stdout == "Adding provided SSH public key to account...\n"
    assert r.stderr.strip() == (
        "Failed with error 400: ssh_key 'key.pub' looks like a file name, and the server cannot read "
        'your files: pass the public key text, e.g. "$(cat ~/.ssh/id_ed25519.pub)"')
    r = vastai("create", "ssh-key", key)
    assert "Failed with error 409: this key" in r.stdout + r.stderr

    r = vastai("show", "ssh-keys")
    assert made["fingerprint"] in r.stdout and r.returncode == 0, r.stderr
    shown = json.loads(vastai("show", "ssh-keys", "--raw").stdout)
    assert [k["id"] for k in shown["ssh_keys"]] == [made["id"]]

    # update reads a file (get_ssh_key), trailing newline included
    r = vastai("update", "ssh-key", str(made["id"]), str(home / "key.pub"))
    assert r.returncode == 0, r.stderr
    [now] = api.get("/api/v0/ssh/").json()["ssh_keys"]
    assert now["public_key"] == (home / "key.pub").read_text().strip()

    r = vastai("delete", "ssh-key", str(made["id"]))
    assert r.returncode == 0 and "deleted" in r.stdout, r.stderr
    assert api.get("/api/v0/ssh/").json()["ssh_keys"] == []


def test_official_cli_attach_and_detach(vastai, home, api, fleet):
    offers = api.post("/api/v0/bundles/", json={"order": [["id", "asc"]]}).json()["offers"]
    iid = api.put(f"/api/v0/asks/{offers[0]['id']}/", json={"client_id": "me", "image": "busybox"}).json()[
        "new_contract"]
    (home / "guest.pub").write_text(public("guest@x") + "\n")
    r = vastai("attach", "ssh", str(iid), str(home / "guest.pub"))
    body = ast.literal_eval(r.stdout.strip())
    assert body["success"] is True and body["key"]["instance_id"] == iid, r.stderr
    r = vastai("detach", "ssh", str(iid), "abc")
    assert "Failed with error 400: attached key id takes a numeric id" in r.stdout + r.stderr
    r = vastai("detach", "ssh", str(iid), str(body["key"]["id"]))
    assert ast.literal_eval(r.stdout.strip())["success"] is True, r.stderr
    r = vastai("detach", "ssh", str(iid), str(body["key"]["id"]))
    assert "Failed with error 404: no key" in r.stdout + r.stderr


def test_official_sdk(alice, fleet):
    sdk = VastAI(api_key=alice.key, server_url=alice.url)
    key = public()
    made = sdk.create_ssh_key(ssh_key=key)
    assert made["success"] is True and made["key"]["public_key"] == key
    assert sdk.show_ssh_keys()["ssh_keys"][0]["fingerprint"] == made["key"]["fingerprint"]
    with pytest.raises(requests.HTTPError) as caught:
        sdk.create_ssh_key()  # {"ssh_key": null}
    assert caught.value.response.status_code == 400
    assert "ssh_key is required" in caught.value.response.json()["msg"]
    other = public("new")
    assert sdk.update_ssh_key(made["key"]["id"], other)["key"]["public_key"] == other
    assert sdk.delete_ssh_key(made["key"]["id"])["success"] is True
