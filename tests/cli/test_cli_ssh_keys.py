"""gpuyard's own CLI and SDK for SSH keys (official command names and flags), in-process against
a live server: KEY read from a file, private keys never sent, attach/detach, ssh-url."""

from __future__ import annotations

import json

import asyncssh
import pytest

from gpuyard.cli.main import main
from gpuyard.errors import Conflict, InvalidInput, NotFound


@pytest.fixture
def run(alice, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GPUYARD_URL", alice.url)
    monkeypatch.setenv("GPUYARD_API_KEY", alice.key)

    def go(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return go


def key_pair(folder, name: str = "id_ed25519", comment: str = "me@laptop") -> tuple[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    (folder / name).write_bytes(key.export_private_key())
    public = key.export_public_key().decode()
    (folder / f"{name}.pub").write_text(public)
    return str(folder / name), public.strip()


def test_key_commands_read_files_and_show_fingerprints(run, tmp_path):
    assert run("show", "ssh-keys")[1].startswith("No ssh keys yet")
    code, _, err = run("create", "ssh-key")
    assert code == 1 and "ssh-keygen -t ed25519" in err
    private, public = key_pair(tmp_path / "home" / ".ssh")
    code, out, err = run("create", "ssh-key")  # the default: ~/.ssh/id_ed25519.pub
    assert code == 0 and "ssh key" in out and "SHA256:" in out, err
    code, _, err = run("create", "ssh-key", private + ".pub")
    assert code == 1 and "already on your account" in err
    rows = json.loads(run("show", "ssh-keys", "--raw")[1])
    assert [r["public_key"] for r in rows] == [public]
    code, out, _ = run("show", "ssh-keys")
    assert rows[0]["fingerprint"] in out and "me@laptop" in out and "ssh-ed25519" in out
    code, _, err = run("create", "ssh-key", private)
    assert code == 1 and "PRIVATE key" in err and "id_ed25519.pub" in err
    code, _, err = run("create", "ssh-key", str(tmp_path / "missing.pub"))
    assert code == 1 and "no such file" in err
    _, other = key_pair(tmp_path / "b", comment="new")
    code, out, _ = run("update", "ssh-key", str(rows[0]["id"]), other)  # key text works too
    assert code == 0 and "replaced" in out
    code, out, _ = run("delete", "ssh-key", str(rows[0]["id"]))
    assert code == 0 and "deleted" in out
    assert json.loads(run("show", "ssh-keys", "--raw")[1]) == []


def test_attach_detach_and_urls(run, alice, fleet, tmp_path):
    with alice.sdk() as sdk:
        offer = sdk.search_offers(query="num_gpus=1", order="id")[0]
        iid = sdk.create_instance(offer["id"], image="busybox", disk=10)["new_contract"]
    private, public = key_pair(tmp_path / "k")
    code, out, err = run("attach", "ssh", str(iid), private + ".pub")
    assert code == 0 and f"detach ssh {iid}" in out, err
    key_id = out.split(f"detach ssh {iid} ")[1].split("'")[0]
    code, out, _ = run("detach", "ssh", str(iid), key_id)
    assert code == 0 and "detached" in out
    code, _, err = run("detach", "ssh", str(iid), key_id)
    assert code == 1 and "delete ssh-key" in err
    code, _, err = run("ssh-url", "999999")
    assert code == 1


def test_sdk_methods(alice, fleet):
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    with alice.sdk() as sdk:
        made = sdk.create_ssh_key(key)["key"]
        assert sdk.show_ssh_keys() == [made]
        with pytest.raises(Conflict):
            sdk.create_ssh_key(key)
        with pytest.raises(InvalidInput, match="looks like a file name"):
            sdk.create_ssh_key("key.pub")
        with pytest.raises(InvalidInput, match="required"):
            sdk.create_ssh_key()
        other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        assert sdk.update_ssh_key(made["id"], other)["key"]["public_key"] == other.strip()
        sdk.delete_ssh_key(made["id"])
        with pytest.raises(NotFound):
            sdk.delete_ssh_key(made["id"])
        assert sdk.ssh_url(999999) == ""
