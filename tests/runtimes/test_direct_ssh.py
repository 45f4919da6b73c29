"""Direct SSH in real containers (docs/access.md): a direct runtype on an image with Dropbear gets
port 22 published, the instance's keys and a running server; the real OpenSSH client logs in
with an account key or an attached one, and not with any other (nor with a key once detached or
deleted); the official CLI's ssh-url prints the address that works; a reboot starts the server
again. On an image without an SSH server the instance runs and says why direct SSH is off."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_docker_runtime import destroy_all, load_box, logs_daemon, rent

from instance_reads import PATIENCE, show, wait_status

SSH = shutil.which("ssh")
SSH_KEYGEN = shutil.which("ssh-keygen")
DIRECT = "ssh_direc ssh_proxy"


@pytest.fixture(scope="session")
def ssh_image(engine) -> str:
    """The busybox image with Dropbear (built by scripts/test from Debian's packages)."""
    import docker

    name = os.environ.get("GPUYARD_TEST_SSH_IMAGE")
    if not name:
        pytest.skip("GPUYARD_TEST_SSH_IMAGE is not set (scripts/test builds the Dropbear test image)")
    if not (SSH and SSH_KEYGEN):
        pytest.skip("no OpenSSH client (ssh, ssh-keygen): install openssh-client")
    try:
        engine.images.get(name)
    except docker.errors.ImageNotFound:
        pytest.fail(f"GPUYARD_TEST_SSH_IMAGE={name} is not on the test engine")
    return name


@pytest.fixture
def box(app, docker_url) -> Iterator[dict]:
    yield load_box(app, docker_url)
    destroy_all(app)


def key_pair(folder: Path, name: str) -> tuple[Path, str]:
    """A new ed25519 key pair made by ssh-keygen: (private key file, public key text)."""
    path = folder / name
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
                   check=True, capture_output=True)
    return path, (folder / f"{name}.pub").read_text().strip()


def ssh(key: Path, port: int, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SSH, "-i", str(key), "-p", str(port), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
         "-o", "ConnectTimeout=20", "root@127.0.0.1", command],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def why(api, engine, iid: int, r: subprocess.CompletedProcess[str]) -> str:
    """A failed connection's story: ssh's words, the row, the instance's events, the container's
    processes."""
    row = show(api, iid)
    inside = ""
    for container in engine.containers.list(all=True, filters={"label": f"gpuyard.instance={iid}"}):
        code, out = container.exec_run(["sh", "-c", "ps; ls -la /root/.ssh"])
        inside += f"{container.name} {container.status}:\n{out.decode(errors='replace')}"
    return (f"{r.stderr}\nrow: {row['actual_status']} {row['status_msg']} {row['ports']}\n"
            f"events:\n{logs_daemon(api, iid)}\n{inside}")


def direct_port(api, iid: int) -> int:
    """The host port of 22/tcp once the row reports it (the instance runs and its server listens)."""
    deadline = time.time() + PATIENCE
    while True:
        row = show(api, iid)
        if row["actual_status"] == "running" and "22/tcp" in row["ports"]:
            return int(row["ports"]["22/tcp"][0]["HostPort"])
        assert time.time() < deadline, row
        time.sleep(0.2)


def vastai_ssh_url(alice, home: Path, iid: int) -> str:
    vastai = Path(sys.executable).with_name("vastai")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAST", "XDG_"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / "cache"), XDG_CONFIG_HOME=str(home / "config"),
               VASTAI_NO_UPDATE_CHECK="1", CI="1", NO_COLOR="1")
    r = subprocess.run([str(vastai), "--url", alice.url, "--api-key", alice.key, "ssh-url", str(iid)],
                       env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def gpuyard_ssh(alice, home: Path, key: Path, iid: int, *command: str) -> str:
    env = {**os.environ, "HOME": str(home), "GPUYARD_URL": alice.url, "GPUYARD_API_KEY": alice.key,
           "XDG_CONFIG_HOME": str(home / "config")}
    options = [f"-o{o}" for o in ("StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "BatchMode=yes",
                                  "IdentitiesOnly=yes", "LogLevel=ERROR")]
    r = subprocess.run([sys.executable, "-m", "gpuyard.cli.main", "ssh", "-i", str(key), *options, str(iid),
                        "--", *command], env=env, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_direct_ssh_with_account_and_attached_keys(api, alice, box, engine, ssh_image, tmp_path):
    mine, mine_pub = key_pair(tmp_path, "mine")
    guest, guest_pub = key_pair(tmp_path, "guest")
    stranger, _ = key_pair(tmp_path, "stranger")
    account_key = api.post("/api/v0/ssh/", json={"ssh_key": mine_pub}).json()["key"]

    iid = rent(api, image=ssh_image, runtype=DIRECT, env={"GREETING": "hello from gpuyard"})
    port = direct_port(api, iid)
    assert box["ports"] <= port < box["ports"] + 20
    row = show(api, iid)
    assert row["ssh_port"] == port and "SSH" not in row["status_msg"], logs_daemon(api, iid)

    r = ssh(mine, port, "echo connected; id -u; cat /root/.ssh/authorized_keys")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["connected", "0"] and lines[2:] == [mine_pub]
    r = ssh(mine, port, "exit 7")
    assert r.returncode == 7, why(api, engine, iid, r)

    assert ssh(stranger, port, "true").returncode == 255  # a key nobody added
    assert ssh(guest, port, "true").returncode == 255

    # the official CLI's ssh-url gives the direct address, which works as is
    assert vastai_ssh_url(alice, tmp_path / "home", iid) == f"ssh://root@127.0.0.1:{port}"
    # and gpuyard ssh runs the system client with it
    assert gpuyard_ssh(alice, tmp_path / "home", mine, iid, "echo", "via", "gpuyard") == "via gpuyard"

    attached = api.post(f"/api/v0/instances/{iid}/ssh/", json={"ssh_key": guest_pub}).json()["key"]
    r = ssh(guest, port, "echo guest-in")
    assert r.returncode == 0 and r.stdout.strip() == "guest-in", why(api, engine, iid, r)
    api.request("DELETE", f"/api/v0/instances/{iid}/ssh/{attached['id']}/", json={})
    assert ssh(guest, port, "true").returncode == 255  # detached: refused at once
    r = ssh(mine, port, "true")
    assert r.returncode == 0, why(api, engine, iid, r)

    # a reboot ends the server; it is started again with the keys
    assert api.put(f"/api/v0/instances/reboot/{iid}/", json={}).json()["success"]
    port = direct_port(api, iid)
    r = ssh(mine, port, "echo back")
    assert r.returncode == 0 and r.stdout.strip() == "back", why(api, engine, iid, r)

    api.request("DELETE", f"/api/v0/ssh/{account_key['id']}/", json={})
    assert ssh(mine, port, "true").returncode == 255  # the account key is gone: refused at once


def test_stopped_instances_report_no_direct_address(api, box, engine, ssh_image, tmp_path):
    key, public = key_pair(tmp_path, "k")
    api.post("/api/v0/ssh/", json={"ssh_key": public})
    iid = rent(api, image=ssh_image, runtype=DIRECT)
    direct_port(api, iid)
    api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"})
    stopped = wait_status(api, iid, "stopped")
    assert stopped["ports"] == {} and stopped["ssh_port"] is None
    api.put(f"/api/v0/instances/{iid}/", json={"state": "running"})
    port = direct_port(api, iid)
    r = ssh(key, port, "echo again")
    assert r.returncode == 0 and r.stdout.strip() == "again", why(api, engine, iid, r)


def test_an_image_without_an_ssh_server_runs_and_says_so(api, box, test_image):
    iid = rent(api, image=test_image, runtype=DIRECT)
    row = wait_status(api, iid, "running")
    assert "direct SSH needs an SSH server in the image (sshd or dropbear)" in row["status_msg"]
    assert "22/tcp" not in row["ports"] and row["ssh_port"] is None


def test_a_proxy_runtype_publishes_no_ssh_port(api, box, ssh_image):
    iid = rent(api, image=ssh_image, runtype="ssh_proxy")
    row = wait_status(api, iid, "running")
    assert row["ports"] == {} and "SSH" not in row["status_msg"]
