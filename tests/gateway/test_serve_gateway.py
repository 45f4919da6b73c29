"""``gpuyard serve`` runs the gateway (its host key's fingerprint printed at start, the same
after a restart); ``gpuyard serve --no-gateway`` beside ``gpuyard gateway`` gives the same
access. Real processes, a simulated instance (refused with its reason)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gateway.conftest import SSH_OPTIONS, _free_block

GPUYARD = [sys.executable, "-m", "gpuyard.cli.main"]
FLEET = """
machines:
  - hostname: sim-box
    gpu_name: RTX 3090
    num_gpus: 1
    gpu_ram: 24
    cpu_cores: 8
    cpu_ram: 32
    disk_space: 200
    inet_down: 1000
    inet_up: 1000
    dph_per_gpu: 0.3
    min_bid_per_gpu: 0.1
    runtime: simulated
"""


def _env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GPUYARD_DB"}
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               GPUYARD_SIM_BOOT_SECONDS="0")
    return env


def _start(args: list[str], env) -> tuple[subprocess.Popen, list[str]]:
    """Start a process and read its stderr up to the host key line."""
    proc = subprocess.Popen([*GPUYARD, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env)
    lines = []
    while True:
        line = proc.stderr.readline()
        assert line, f"exited before its host key line: {''.join(lines)}"
        lines.append(line)
        if "SSH host key" in line:
            return proc, lines


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _fingerprint(lines: list[str]) -> str:
    return next(line.split("SSH host key ")[1].strip() for line in lines if "SSH host key" in line)


def _wait_port(base: str, key: str, iid: int) -> int:
    for _ in range(600):
        r = httpx.get(f"{base}/api/v0/instances/{iid}/", params={"owner": "me"},
                      headers={"Authorization": f"Bearer {key}"})
        row = r.json()["instances"]
        if row["ssh_port"] and row["actual_status"] == "running":
            return row["ssh_port"]
        time.sleep(0.1)
    raise AssertionError(row)


def _serve(db: str, port: int, env, log: Path) -> subprocess.Popen:
    """``gpuyard serve --no-gateway`` on ``db``, its stderr in ``log`` (shown if it fails)."""
    with log.open("w") as err:
        return subprocess.Popen([*GPUYARD, "serve", "--db", db, "--port", str(port), "--no-gateway"],
                                stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                                env=env)


def _rent(base: str, key: str, server: subprocess.Popen | None = None, log: Path | None = None) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 180  # a loaded machine can take long to start the server
    while True:
        try:
            offers = httpx.post(f"{base}/api/v0/bundles/", json={}, headers=headers,
                                timeout=30).json()["offers"]
            break
        except httpx.TransportError as exc:
            said = log.read_text() if log is not None and log.exists() else ""
            assert server is None or server.poll() is None, \
                f"the server exited ({server.returncode}) before answering:\n{said}"
            assert time.monotonic() < deadline, f"the server at {base} never answered: {exc!r}\n{said}"
            time.sleep(0.1)
    r = httpx.put(f"{base}/api/v0/asks/{offers[0]['id']}/", headers=headers,
                  json={"client_id": "me", "image": "busybox", "runtype": "ssh"})
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


def _refusal(port: int, key) -> str:
    r = subprocess.run(["ssh", "-i", str(key.path), *SSH_OPTIONS, "-p", str(port),
                        "root@127.0.0.1", "true"], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 255
    return r.stderr


def _setup(tmp_path, env) -> tuple[str, str]:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    (tmp_path / "fleet.yaml").write_text(FLEET)
    made = subprocess.run([*GPUYARD, "admin", "create-user", "alice", "--db", db], env=env,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    loaded = subprocess.run([*GPUYARD, "admin", "load-fleet", str(tmp_path / "fleet.yaml"),
                             "--db", db], env=env, capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    return db, made.stdout.strip()


def test_serve_runs_the_gateway_with_a_stable_host_key(tmp_path, make_keypair):
    env = _env(tmp_path)
    db, key = _setup(tmp_path, env)
    first = _free_block(22)  # the gateway's 20 ports, then the API's
    port = first + 20
    args = ["serve", "--db", db, "--port", str(port), "--ssh-ports", f"{first}-{first + 19}"]
    proc, lines = _start(args, env)
    try:
        fingerprint = _fingerprint(lines)
        assert fingerprint.startswith("SHA256:")
        assert any(f"ports {first}-{first + 19}" in line for line in lines)
        iid = _rent(f"http://127.0.0.1:{port}", key)
        ssh_port = _wait_port(f"http://127.0.0.1:{port}", key, iid)
        assert first <= ssh_port <= first + 19
        assert "simulated instance: no shell" in _refusal(ssh_port, make_keypair("anyone"))
    finally:
        _stop(proc)
    proc, lines = _start(args, env)
    try:
        assert _fingerprint(lines) == fingerprint
    finally:
        _stop(proc)


def test_the_gateway_runs_alone_beside_a_server_without_one(tmp_path, make_keypair):
    env = _env(tmp_path)
    db, key = _setup(tmp_path, env)
    first = _free_block(22)  # the gateway's 20 ports, then the API's
    port = first + 20
    log = tmp_path / "serve.log"
    server = _serve(db, port, env, log)
    gateway, _lines = _start(["gateway", "--db", db, "--ssh-ports", f"{first}-{first + 19}"], env)
    try:
        iid = _rent(f"http://127.0.0.1:{port}", key, server, log)
        ssh_port = _wait_port(f"http://127.0.0.1:{port}", key, iid)
        assert first <= ssh_port <= first + 19
        assert "simulated instance: no shell" in _refusal(ssh_port, make_keypair("anyone"))
    finally:
        _stop(gateway)
        _stop(server)


def test_the_gateway_listens_where_ssh_listen_says_and_rows_show_ssh_host(tmp_path, make_keypair):
    """--ssh-listen: in a container whose ports are published, the gateway listens on 0.0.0.0
    while users reach the host's address (an IP the container does not have)."""
    env = _env(tmp_path)
    db, key = _setup(tmp_path, env)
    first = _free_block(22)  # the gateway's 20 ports, then the API's
    port = first + 20
    log = tmp_path / "serve.log"
    server = _serve(db, port, env, log)
    gateway, lines = _start(["gateway", "--db", db, "--ssh-host", "203.0.113.7", "--ssh-listen",
                             "127.0.0.1", "--ssh-ports", f"{first}-{first + 19}"], env)
    try:
        assert any("SSH gateway at 203.0.113.7" in line and "(listening on 127.0.0.1)" in line
                   for line in lines), lines
        base = f"http://127.0.0.1:{port}"
        iid = _rent(base, key, server, log)
        ssh_port = _wait_port(base, key, iid)
        row = httpx.get(f"{base}/api/v0/instances/{iid}/", params={"owner": "me"},
                        headers={"Authorization": f"Bearer {key}"}).json()["instances"]
        assert row["ssh_host"] == "203.0.113.7"
        assert "simulated instance: no shell" in _refusal(ssh_port, make_keypair("anyone"))
    finally:
        _stop(gateway)
        _stop(server)


def test_the_gateway_alone_ends_cleanly_on_sigterm(tmp_path):
    """``podman stop`` / ``docker stop`` send SIGTERM to the container's first process, which
    ignores a signal it has no handler for: the gateway handles it and exits 0."""
    env = _env(tmp_path)
    db, _key = _setup(tmp_path, env)
    first = _free_block(4)
    gateway, _lines = _start(["gateway", "--db", db, "--ssh-ports", f"{first}-{first + 3}"], env)
    try:
        gateway.terminate()
        assert gateway.wait(timeout=20) == 0
    finally:
        if gateway.poll() is None:
            gateway.kill()
