"""Fixtures for the SSH gateway tests: the engine fixtures of the docker runtime tests, a
gateway on a free port range, a docker machine and a simulated one, and SSH key pairs made
with the system's ssh-keygen."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpuyard.gateway.server import Gateway
from gpuyard.services.market.fleet import load_fleet, parse_yaml
from gpuyard.store.db import transaction
from gpuyard.store.models import Instance
from instance_reads import wait_status
from port_blocks import free_block
from runtimes.conftest import (  # noqa: F401 - fixtures re-used
    _engine_target,
    docker_url,
    engine,
    remove_managed_leftovers,
    test_image,
)

SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=20"]


def _free_block(count: int = 40) -> int:
    """An even start port with ``count`` free ports after it, below the ephemeral range."""
    return free_block(count, host="127.0.0.1")


@dataclass
class KeyPair:
    path: Path
    public: str


@pytest.fixture(scope="session")
def ssh_tools() -> None:
    missing = [t for t in ("ssh", "scp", "sftp", "ssh-keygen") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"OpenSSH client tools missing: {', '.join(missing)} (scripts/test installs "
                    "openssh-client)")


@pytest.fixture(scope="session")
def make_keypair(tmp_path_factory, ssh_tools):
    folder = tmp_path_factory.mktemp("keys")

    def make(name: str) -> KeyPair:
        path = folder / name
        if not path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                            str(path)], check=True)
        return KeyPair(path, (folder / f"{name}.pub").read_text().strip())

    return make


@pytest.fixture
def alice_key(api, make_keypair):
    key = make_keypair("alice")
    r = api.post("/api/v0/ssh/", json={"ssh_key": key.public})
    assert r.status_code == 200, r.text
    return key


@pytest.fixture
def gateway(app, docker_url, tmp_path) -> Iterator[Gateway]:  # noqa: F811
    first = _free_block()
    gw = Gateway(app.state.sessions, tmp_path / "gateway-data", public_host="127.0.0.1",
                 first_port=first, last_port=first + 39, default_docker_url=docker_url,
                 poll_seconds=0.2)
    gw.start()
    app.state.reconciler.on_wake.append(gw.wake)
    app.state.gateway = gw  # as gpuyard serve has it: the console shows its host key
    yield gw
    app.state.gateway = None
    app.state.reconciler.on_wake.remove(gw.wake)
    gw.stop()


@pytest.fixture
def machines(app, docker_url) -> Iterator[dict[str, int]]:  # noqa: F811
    fleet = f"""
machines:
  - hostname: gw-docker
    gpu_name: RTX 4090
    num_gpus: 2
    gpu_ram: 24
    cpu_cores: 8
    cpu_ram: 32
    disk_space: 200
    inet_down: 1000
    inet_up: 1000
    dph_per_gpu: 0.5
    min_bid_per_gpu: 0.1
    runtime: docker
    docker_url: {docker_url}
    gpu_runtime: none
    direct_port_start: {_free_block(20) + 20}
    direct_port_count: 10
    public_ipaddr: 127.0.0.1
  - hostname: gw-sim
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
    with transaction(app.state.sessions) as session:
        result = load_fleet(session, parse_yaml(fleet))
    yield dict(result.machine_ids)
    with transaction(app.state.sessions) as session:
        for inst in session.query(Instance).filter(Instance.destroyed_at.is_(None)):
            inst.destroyed_at = time.time()
            inst.intended_status = "stopped"
    app.state.reconciler.sweep()


def rent(api, gpu_name: str, **body) -> int:
    offers = api.post("/api/v0/bundles/", json={"gpu_name": {"eq": gpu_name},
                                                "order": [["id", "asc"]]}).json()["offers"]
    launch = {"client_id": "me", "image": None, "env": {}, "price": None, "disk": 1,
              "label": None, "onstart": None, "force": False, "template_hash_id": None, **body}
    r = api.put(f"/api/v0/asks/{offers[0]['id']}/", json=launch)
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


def running_with_port(api, gateway: Gateway, instance_id: int) -> dict:
    """The instance's row once it runs and the gateway listens on its port."""
    row = wait_status(api, instance_id, "running")
    gateway.sync_now()
    row = wait_status(api, instance_id, "running")
    assert row["ssh_port"] and gateway.listening().get(row["ssh_port"]) == instance_id, row
    return row


def ssh(key: KeyPair, port: int, *args: str, user: str = "root", input: bytes | None = None,
        options: list[str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["ssh", "-i", str(key.path), *(options or SSH_OPTIONS), "-p", str(port),
         f"{user}@127.0.0.1", *args],
        input=input, capture_output=True, timeout=120, stdin=None if input is not None
        else subprocess.DEVNULL)
