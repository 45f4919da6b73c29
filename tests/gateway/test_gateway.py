"""The SSH gateway end to end: the system's OpenSSH clients (ssh, scp, sftp) against instances
running in Podman busybox containers, keys from the SSH key API."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.conftest import SSH_OPTIONS, _free_block, rent, running_with_port, ssh
from gpuyard.gateway.server import Gateway
from instance_reads import wait_status


@pytest.fixture
def box(api, gateway, machines, alice_key, test_image):
    """A running docker instance of alice's with an env variable, reachable through the gateway."""
    iid = rent(api, "RTX 4090", image=test_image, runtype="ssh", env={"GREETING": "hello gateway"})
    row = running_with_port(api, gateway, iid)
    return {"id": iid, "port": row["ssh_port"], "row": row}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def test_row_carries_the_gateway_address_and_no_direct_port(box):
    row = box["row"]
    assert row["ssh_host"] == "127.0.0.1" and row["image_runtype"] == "ssh"
    assert "22/tcp" not in row["ports"]


def test_command_sees_the_merged_env_with_exit_status_and_separate_stderr(box, alice_key):
    r = ssh(alice_key, box["port"], 'echo "$GREETING"; echo to-stderr >&2; exit 3')
    assert r.returncode == 3, r.stderr
    assert r.stdout == b"hello gateway\n"
    assert b"to-stderr" in r.stderr and b"to-stderr" not in r.stdout


def test_stdin_reaches_the_command_and_its_end_ends_it(box, alice_key):
    r = ssh(alice_key, box["port"], "cat > /tmp/in.txt; wc -c < /tmp/in.txt", input=b"x" * 100000)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == b"100000"


def test_interactive_shell_gets_a_terminal(box, alice_key):
    r = ssh(alice_key, box["port"], input=b'test -t 0 && echo "tty:$TERM"; exit 4\n',
            options=[*SSH_OPTIONS, "-tt"])
    assert r.returncode == 4, r.stderr
    assert b"tty:" in r.stdout


def test_scp_100_mb_both_ways_with_equal_checksums(box, alice_key, tmp_path):
    src = tmp_path / "up.bin"
    with src.open("wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
    target = "root@127.0.0.1:/tmp/big.bin"
    opts = ["-i", str(alice_key.path), *SSH_OPTIONS, "-P", str(box["port"])]
    up = subprocess.run(["scp", *opts, str(src), target], capture_output=True, timeout=300)
    assert up.returncode == 0, up.stderr
    back = tmp_path / "down.bin"
    down = subprocess.run(["scp", *opts, target, str(back)], capture_output=True, timeout=300)
    assert down.returncode == 0, down.stderr
    assert _sha256(back) == _sha256(src)
    # legacy scp (-O) through the same file access
    legacy = tmp_path / "legacy.bin"
    r = subprocess.run(["scp", "-O", *opts, target, str(legacy)], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert _sha256(legacy) == _sha256(src)


def _sftp(key, port: int, batch: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "batch"
    script.write_text(batch)
    return subprocess.run(["sftp", "-i", str(key.path), *SSH_OPTIONS, "-P", str(port), "-b",
                           str(script), "root@127.0.0.1"], capture_output=True, text=True,
                          timeout=120)


def test_sftp_lists_creates_renames_and_removes(box, alice_key, tmp_path):
    made = ssh(alice_key, box["port"], "mkdir -p /tmp/work && echo data > /tmp/work/a.txt")
    assert made.returncode == 0, made.stderr
    r = _sftp(alice_key, box["port"], "ls -l /tmp/work\nmkdir /tmp/work/sub\n"
              "rename /tmp/work/a.txt /tmp/work/sub/b.txt\nls /tmp/work/sub\n", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "a.txt" in r.stdout and "b.txt" in r.stdout
    r = _sftp(alice_key, box["port"], "rm /tmp/work/sub/b.txt\nrmdir /tmp/work/sub\n", tmp_path)
    assert r.returncode == 0, r.stderr
    listing = ssh(alice_key, box["port"], "ls -A /tmp/work")
    assert listing.stdout == b""


def test_a_file_of_the_gateway_host_is_invisible_through_sftp(box, alice_key, tmp_path):
    secret_dir = tmp_path / "host-only"
    secret_dir.mkdir()
    (secret_dir / "secret.txt").write_text("host secret")
    r = _sftp(alice_key, box["port"], f"get {secret_dir}/secret.txt {tmp_path}/stolen.txt\n",
              tmp_path)
    assert r.returncode != 0 and not (tmp_path / "stolen.txt").exists()
    r = _sftp(alice_key, box["port"], f"ls {secret_dir}\n", tmp_path)
    assert r.returncode != 0 and "secret.txt" not in r.stdout
    r = _sftp(alice_key, box["port"], f"-df {secret_dir}\n", tmp_path)  # statvfs: refused
    assert "host secret" not in r.stdout


def test_local_forwarding_reaches_the_containers_own_port(api, gateway, machines, alice_key,
                                                           test_image):
    iid = rent(api, "RTX 4090", image=test_image, runtype="ssh",
               onstart="mkdir -p /www && echo from-the-container > /www/index.html && "
                       "httpd -p 8080 -h /www")
    port = running_with_port(api, gateway, iid)["ssh_port"]
    local = _free_block(2)
    tunnel = subprocess.Popen(["ssh", "-i", str(alice_key.path), *SSH_OPTIONS, "-N", "-L",
                               f"{local}:localhost:8080", "-p", str(port), "root@127.0.0.1"],
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        body = None
        for _ in range(200):  # until the tunnel listens
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10).read()
                break
            except OSError:
                assert tunnel.poll() is None, tunnel.stderr.read()
                time.sleep(0.1)
        assert body == b"from-the-container\n"
    finally:
        tunnel.terminate()
        tunnel.wait(10)


def test_another_users_key_is_refused(box, bob, make_keypair):
    bobs = make_keypair("bob")
    with bob.http() as client:
        r = client.post("/api/v0/ssh/", json={"ssh_key": bobs.public})
    assert r.status_code == 200, r.text
    attempt = ssh(bobs, box["port"], "echo in")
    assert attempt.returncode == 255 and b"in\n" != attempt.stdout
    assert b"Permission denied" in attempt.stderr


def test_only_root_may_log_in(box, alice_key):
    r = ssh(alice_key, box["port"], "echo in", user="ubuntu")
    assert r.returncode == 255 and b"log in as root" in r.stderr


def test_access_ends_when_the_instance_is_destroyed(api, box, alice_key, gateway):
    assert ssh(alice_key, box["port"], "true").returncode == 0
    r = api.request("DELETE", f"/api/v0/instances/{box['id']}/", json={})
    assert r.status_code == 200, r.text
    attempt = ssh(alice_key, box["port"], "echo still-in")
    assert attempt.returncode == 255 and b"still-in" not in attempt.stdout
    gateway.sync_now()
    assert box["port"] not in gateway.listening()


def test_simulated_instance_is_refused_with_a_reason(api, gateway, machines, alice_key):
    iid = rent(api, "RTX 3090", image="pytorch/pytorch", runtype="ssh")
    port = running_with_port(api, gateway, iid)["ssh_port"]
    r = ssh(alice_key, port, "echo in")
    assert r.returncode == 255
    assert b"simulated instance: no shell" in r.stderr


def test_stopped_instance_is_refused_with_a_reason(api, box, alice_key):
    r = api.put(f"/api/v0/instances/{box['id']}/", json={"state": "stopped"})
    assert r.status_code == 200, r.text
    wait_status(api, box["id"], "stopped")
    attempt = ssh(alice_key, box["port"], "echo in")
    assert attempt.returncode == 255 and b"is not running" in attempt.stderr


def test_host_key_is_the_same_after_a_restart(app, box, alice_key, tmp_path, gateway, docker_url):
    known = tmp_path / "known_hosts"
    strict = ["-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={known}",
              "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
    assert ssh(alice_key, box["port"], "true", options=strict).returncode == 0
    data_dir = gateway.data_dir
    fingerprint = gateway.fingerprint
    gateway.stop()
    again = Gateway(app.state.sessions, data_dir, public_host="127.0.0.1",
                    first_port=gateway.first_port, last_port=gateway.last_port,
                    default_docker_url=docker_url)
    again.start()
    try:
        again.sync_now()
        assert again.fingerprint == fingerprint
        strict[1] = "StrictHostKeyChecking=yes"
        r = ssh(alice_key, box["port"], "echo same-key", options=strict)
        assert r.returncode == 0 and r.stdout == b"same-key\n", r.stderr
    finally:
        again.stop()
