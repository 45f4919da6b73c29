"""deploy/compose.yaml brought up whole under podman-compose, for the deployment tests: its own
project (containers, network and volumes named after it), free host ports, local images for
gpuyard (Containerfile), PostgreSQL and Caddy (scripts/images/postgres, scripts/images/caddy:
no registry is reachable), and the helpers an operator's checks need."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from image import ROOT, podman

from port_blocks import free_block

COMPOSE = ROOT / "deploy" / "compose.yaml"
POSTGRES_IMAGE = os.environ.get("GPUYARD_POSTGRES_IMAGE", "localhost/gpuyard-test/postgres:15")
CADDY_IMAGE = os.environ.get("GPUYARD_CADDY_IMAGE", "localhost/gpuyard-test/caddy:2")
PATIENCE = 240.0  # seconds: a bound for a failing test (a loaded 2-core machine), not a target
BUILD_TIMEOUT = 1800
T = TypeVar("T")


def compose_tool() -> str:
    beside = Path(sys.executable).parent / "podman-compose"  # the [test] extra installs it
    found = str(beside) if beside.exists() else shutil.which("podman-compose")
    if not found:
        pytest.skip("the compose tests need podman-compose (pip install -e '.[test]')")
    return found


def service_image(script: str, name: str, variable: str) -> str:
    """A local image the recipe names (PostgreSQL, Caddy), built by scripts/images/SCRIPT (a no-op
    when it is current); the test is skipped, saying why, when it cannot be built."""
    podman()
    made = subprocess.run([str(ROOT / "scripts" / "images" / script)], capture_output=True,
                          text=True, timeout=BUILD_TIMEOUT, env={**os.environ, variable: name})
    if made.returncode != 0:
        pytest.skip(f"the {name} image could not be built (scripts/images/{script}, which needs a "
                    f"Debian mirror and root):\n{made.stderr[-2000:]}")
    return name


def wait_for(what: str, probe: Callable[[], T | None], patience: float = PATIENCE,
             explain: Callable[[], str] = lambda: "") -> T:
    """``probe()`` again until it returns something other than None (errors count as None)."""
    deadline = time.monotonic() + patience
    last: object = None
    while True:
        try:
            got = probe()
            if got is not None:
                return got
        except Exception as exc:  # noqa: BLE001 - not there yet
            last = exc
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {patience:.0f}s (last error: {last!r})\n{explain()}")
        time.sleep(0.25)


class Recipe:
    """One project of deploy/compose.yaml: its environment (the secrets, the local images, free
    ports) and what an operator runs against it."""

    SERVICES = ("db", "api1", "api2", "worker1", "worker2", "gateway", "lb")

    def __init__(self, gpuyard_image: str, ssh_dir: Path):
        first = free_block(6)
        self.project = f"gpuyard-recipe-{secrets.token_hex(4)}"
        self.http_port, self.https_port, self.ssh_first = first, first + 1, first + 2
        self.ssh_ports = (first + 2, first + 5)  # gateway ports: first + 2 and first + 4
        self.password = "pw-" + secrets.token_hex(8)
        self.env = {
            "POSTGRES_PASSWORD": self.password,
            "GPUYARD_SECRET_KEY": secrets.token_hex(32),
            "GPUYARD_IMAGE": gpuyard_image,
            "POSTGRES_IMAGE": service_image("postgres", POSTGRES_IMAGE, "GPUYARD_POSTGRES_IMAGE"),
            "CADDY_IMAGE": service_image("caddy", CADDY_IMAGE, "GPUYARD_CADDY_IMAGE"),
            "GPUYARD_PUBLIC_HOST": "127.0.0.1",
            "GPUYARD_SSH_PORTS": f"{self.ssh_ports[0]}-{self.ssh_ports[1]}",
            "GPUYARD_SITE": ":80",
            "GPUYARD_HTTP_PORT": str(self.http_port),
            "GPUYARD_HTTPS_PORT": str(self.https_port),
            "GPUYARD_SSH_DIR": str(ssh_dir),
            "DOCKER_HOST": "",
        }
        self.volumes: set[str] = set()  # every volume a container of the project mounted
        self._key: str | None = None

    # -- podman-compose and podman ---------------------------------------------------------------
    def compose(self, *args: str, timeout: float = 600, stdin: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in self.env}
        env.update(self.env)
        done = subprocess.run([compose_tool(), "-f", str(COMPOSE), "-p", self.project, *args],
                              capture_output=True, text=True, env=env, timeout=timeout,
                              input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
        if check:
            assert done.returncode == 0, (f"podman-compose {' '.join(args)}: exit {done.returncode}"
                                          f"\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def containers(self) -> dict[str, str]:
        """service → container id, for the project's containers."""
        listed = subprocess.run(
            [podman(), "ps", "-a", "--filter", f"label=io.podman.compose.project={self.project}",
             "--format", "json"], capture_output=True, text=True, check=True)
        out = {}
        for row in json.loads(listed.stdout or "[]"):
            service = (row.get("Labels") or {}).get("com.docker.compose.service")
            if service:
                out[service] = row["Id"]
        return out

    def container(self, service: str) -> str:
        found = self.containers().get(service)
        assert found, f"no container for {service} in {self.project}"
        return found

    def inspect(self, service: str) -> dict:
        done = subprocess.run([podman(), "inspect", self.container(service)], capture_output=True,
                              text=True, check=True)
        return json.loads(done.stdout)[0]

    def address(self, service: str) -> str:
        """The container's address on the project's network (rootful Podman routes to it)."""
        networks = self.inspect(service)["NetworkSettings"]["Networks"]
        return next(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))

    def logs(self, service: str) -> str:
        done = subprocess.run([podman(), "logs", self.container(service)], capture_output=True,
                              text=True)
        return done.stdout + done.stderr

    def all_logs(self) -> str:
        parts = []
        for service in self.containers():
            parts.append(f"---- {service} ----\n{self.logs(service)[-2500:]}")
        return "\n".join(parts)

    def healthcheck(self, service: str) -> bool:
        """The service's own HEALTHCHECK (from the image or the compose file), run now: Podman runs
        them on a timer only under systemd."""
        done = subprocess.run([podman(), "healthcheck", "run", self.container(service)],
                              capture_output=True, text=True, timeout=60)
        return done.returncode == 0

    def note_volumes(self) -> None:
        """Remember the volumes the project's containers mount (``down -v`` leaves the anonymous
        ones: the images' VOLUMEs)."""
        for cid in self.containers().values():
            done = subprocess.run([podman(), "inspect", "--format",
                                   "{{range .Mounts}}{{if .Name}}{{.Name}} {{end}}{{end}}", cid],
                                  capture_output=True, text=True)
            self.volumes.update(done.stdout.split())

    # -- life cycle ------------------------------------------------------------------------------
    def up(self) -> None:
        """``up -d`` as docker compose does it: ``db`` first, the rest once its health check
        passes (``condition: service_healthy``). podman-compose waits for that itself only on
        Podman >= 4.6, and Podman runs health checks by itself only under systemd, so the test
        runs ``db``'s check (``pg_isready``) until it passes."""
        self.compose("up", "-d", "db")
        self.note_volumes()
        wait_for("db's health check (pg_isready)", lambda: self.healthcheck("db") or None,
                 explain=lambda: self.logs("db"))
        self.compose("up", "-d")
        self.note_volumes()

    def down(self) -> None:
        """``down -v``, then whatever it left of the project: containers, its volumes (named and
        anonymous) and its network. Only the project's own; nothing else is touched."""
        self.note_volumes()
        self.compose("down", "-v", "-t", "0", check=False)
        for cid in self.containers().values():
            subprocess.run([podman(), "rm", "-f", "-v", "-t", "0", cid], capture_output=True)
        labelled = subprocess.run(
            [podman(), "volume", "ls", "-q", "--filter",
             f"label=io.podman.compose.project={self.project}"], capture_output=True, text=True)
        for volume in {*self.volumes, *labelled.stdout.split()}:
            subprocess.run([podman(), "volume", "rm", "-f", volume], capture_output=True)
        network = f"{self.project}_default"
        if subprocess.run([podman(), "network", "exists", network]).returncode == 0:
            subprocess.run([podman(), "network", "rm", "-f", network], capture_output=True)

    def leftovers(self) -> list[str]:
        """What of the project is still there after :meth:`down`."""
        left = [f"container {c}" for c in self.containers().values()]
        for volume in self.volumes:
            if subprocess.run([podman(), "volume", "exists", volume]).returncode == 0:
                left.append(f"volume {volume}")
        if subprocess.run([podman(), "network", "exists", f"{self.project}_default"]).returncode == 0:
            left.append(f"network {self.project}_default")
        return left

    # -- what an operator checks -----------------------------------------------------------------
    def url(self, service: str) -> str:
        port = {"api1": 8686, "api2": 8686, "worker1": 8687, "worker2": 8687}[service]
        return f"http://{self.address(service)}:{port}"

    @property
    def lb(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def ready(self, service: str) -> dict:
        url = f"{self.url(service)}/readyz"

        def probe() -> dict | None:
            answer = httpx.get(url, timeout=5)
            return answer.json() if answer.status_code == 200 else None

        return wait_for(f"{service} ready on {url}", probe, explain=lambda: self.logs(service))

    def exec(self, service: str, *command: str, stdin: str | None = None) -> str:
        """``podman-compose exec -T SERVICE COMMAND``: its standard output."""
        done = self.compose("exec", "-T", service, *command, stdin=stdin, timeout=180)
        return done.stdout

    def admin_key(self) -> str:
        """An admin's API key, made once with ``gpuyard admin create-user`` in api1's container."""
        if self._key is None:
            out = self.exec("api1", "gpuyard", "admin", "create-user", "alice", "--admin")
            keys = re.findall(r"^[0-9a-f]{32,}$", out, re.M)
            assert keys, f"create-user printed no key: {out!r}"
            self._key = keys[-1]
        return self._key

    def http(self, service: str) -> httpx.Client:
        base = self.lb if service == "lb" else self.url(service)
        return httpx.Client(base_url=base, timeout=30,
                            headers={"Authorization": f"Bearer {self.admin_key()}"})

    def db_url(self) -> str:
        return f"postgresql+psycopg://gpuyard:{self.password}@{self.address('db')}:5432/gpuyard"

    def host_key_lines(self) -> list[str]:
        """The fingerprints the gateway printed at its starts (``gpuyard: SSH host key …``)."""
        return re.findall(r"SSH host key (SHA256:\S+)", self.logs("gateway"))
