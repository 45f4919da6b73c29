"""A Docker host reached over ``ssh://``, for real: an OpenSSH server on 127.0.0.1 (a throw-away
host key, one authorized key) in front of the test engine. The gpuyard server reaches it as a
real one does (docs/docker-hosts.md): the ``docker`` package runs the system ``ssh`` client, and
``docker system dial-stdio`` on the far side connects to the engine's socket. There, as with
Debian's ``podman-docker`` package, ``docker`` is Podman (a two-line shim on the session's PATH
that also names the test engine's socket)."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_docker_runtime import containers, destroy_all, load_box, logs, rent, wait

from instance_reads import PATIENCE

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _engine_shim(docker_url: str) -> str:
    """The far side's ``docker`` command: Podman (or Docker's CLI) on the test engine's socket."""
    if shutil.which("podman"):
        return f'#!/bin/sh\nexec podman --url {docker_url} "$@"\n'
    if shutil.which("docker"):
        return f'#!/bin/sh\nDOCKER_HOST={docker_url} exec docker "$@"\n'
    pytest.skip("the ssh:// engine test needs podman or docker on this machine (the far side's docker)")


class SSHHost:
    """``sshd`` on 127.0.0.1:``port`` and the client files to reach it without a prompt."""

    def __init__(self, folder: Path, docker_url: str):
        self.folder, self.port, self.user = folder, _free_port(), getpass.getuser()
        self.url = f"ssh://{self.user}@127.0.0.1:{self.port}"
        self.log = folder / "sshd.log"
        for key in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)],
                           check=True)
        remote_bin = folder / "remote-bin"
        remote_bin.mkdir()
        (remote_bin / "docker").write_text(_engine_shim(docker_url))
        (remote_bin / "docker").chmod(0o755)
        (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
        (folder / "sshd_config").write_text(
            f"ListenAddress 127.0.0.1\nPort {self.port}\nHostKey {folder / 'host_key'}\n"
            f"AuthorizedKeysFile {folder / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile none\n"
            f"SetEnv PATH={remote_bin}:/usr/local/bin:/usr/bin:/bin\n"
        )
        host_key = (folder / "host_key.pub").read_text().split()
        (folder / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_key[0]} {host_key[1]}\n")
        # The server's side: what the operator puts in ~/.ssh/config, given to ssh with -F.
        (folder / "ssh_config").write_text(
            f"Host 127.0.0.1\n  IdentityFile {folder / 'client_key'}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {folder / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
            "  BatchMode yes\n"
        )
        client_bin = folder / "client-bin"
        client_bin.mkdir()
        (client_bin / "ssh").write_text(
            f'#!/bin/sh\nexec {shutil.which("ssh")} -F {folder / "ssh_config"} "$@"\n')
        (client_bin / "ssh").chmod(0o755)
        self.client_bin = str(client_bin)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.folder / "sshd_config")],
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + PATIENCE
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert time.time() < deadline, self.log.read_text()
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def logins(self) -> int:
        return self.log.read_text().count("Accepted publickey for")


@pytest.fixture
def ssh_host(docker_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SSHHost]:
    if not os.path.exists(SSHD) or not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        pytest.skip("the ssh:// engine test needs OpenSSH (Debian: apt-get install openssh-server "
                    "openssh-client; scripts/test installs them)")
    host = SSHHost(tmp_path, docker_url)
    host.start()
    monkeypatch.setenv("PATH", f"{host.client_bin}:{os.environ['PATH']}")
    yield host
    host.stop()


def test_an_instance_on_an_ssh_engine_launches_runs_logs_stops_and_is_destroyed(
        app, api, engine, ssh_host, test_image):
    box = load_box(app, ssh_host.url)
    try:
        iid = rent(api, image=test_image, runtype="ssh", onstart="echo hello-over-ssh")
        running = wait(api, iid, "running")
        assert running["machine_id"] == box["machine_id"]
        assert "hello-over-ssh" in logs(api, iid, until="hello-over-ssh")
        [container] = containers(engine, iid)  # the engine behind sshd has it
        assert container.status == "running"

        assert api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"}).json()["success"]
        wait(api, iid, "stopped")
        [container] = containers(engine, iid)
        assert container.status in ("exited", "stopped")

        assert api.request("DELETE", f"/api/v0/instances/{iid}/", json={}).json()["success"]
        assert containers(engine, iid) == []
        assert ssh_host.logins() > 0  # it all went through sshd
    finally:
        destroy_all(app)
