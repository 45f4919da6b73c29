"""deploy/compose.yaml, through podman-compose: the recipe resolves to PostgreSQL, two API
replicas, two workers, one gateway and a load balancer, refuses to start without its secrets,
and its API service comes up from the recipe as written (on this machine's network and a
database of its own: no registry is reachable for the PostgreSQL and Caddy images)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from image import ROOT, podman

COMPOSE = ROOT / "deploy" / "compose.yaml"
SECRETS = {"POSTGRES_PASSWORD": "pw-" + secrets.token_hex(8), "GPUYARD_SECRET_KEY": secrets.token_hex(32)}
PATIENCE = 120.0  # seconds: a bound for a failing test, not a speed target


def compose_tool() -> str:
    beside = Path(sys.executable).parent / "podman-compose"  # the [test] extra installs it
    found = str(beside) if beside.exists() else shutil.which("podman-compose")
    if not found:
        pytest.skip("the compose tests need podman-compose (pip install -e '.[test]')")
    return found


def compose(*args: str, files: tuple[Path, ...] = (COMPOSE,), env: dict[str, str] | None = None,
            project: str = "gpuyard-compose-test") -> subprocess.CompletedProcess:
    podman()
    command = [compose_tool()]
    for f in files:
        command += ["-f", str(f)]
    full_env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    full_env.update(env if env is not None else SECRETS)
    return subprocess.run([*command, "-p", project, *args], capture_output=True, text=True,
                          env=full_env, timeout=600)


def test_the_recipe_has_the_database_two_apis_two_workers_a_gateway_and_a_load_balancer():
    done = compose("config")
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert set(services) == {"db", "api1", "api2", "worker1", "worker2", "gateway", "lb"}
    for api in ("api1", "api2"):
        assert services[api]["command"][:3] == ["serve", "--no-worker", "--no-gateway"]
    for worker in ("worker1", "worker2"):
        assert services[worker]["command"][0] == "worker"
    assert services["gateway"]["command"][0] == "gateway"
    db_url = f"postgresql+psycopg://gpuyard:{SECRETS['POSTGRES_PASSWORD']}@db:5432/gpuyard"
    for name in ("api1", "api2", "worker1", "worker2", "gateway"):
        env = services[name]["environment"]
        assert env["GPUYARD_DB"] == db_url  # one database
        assert env["GPUYARD_SECRET_KEY"] == SECRETS["GPUYARD_SECRET_KEY"]  # one server secret
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["db"]["environment"]["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]


def test_the_recipe_refuses_to_start_without_its_secrets():
    done = compose("config", env={})
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD in deploy/.env" in done.stdout + done.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _has_roles(image: str) -> bool:
    """Whether this gpuyard has the separate roles the recipe runs (serve --no-worker)."""
    done = subprocess.run([podman(), "run", "--rm", image, "serve", "--help"], capture_output=True,
                          text=True)
    return "--no-worker" in done.stdout and "--no-gateway" in done.stdout


@pytest.fixture
def api_from_the_recipe(image: str, scratch_db: str | None, tmp_path: Path) -> Iterator[str]:
    """api1 of the recipe, up: its image, command and environment as written, except for the
    database (this test's own), the network (the host's, where that database listens) and the
    port."""
    if scratch_db is None:
        pytest.skip("the recipe runs on PostgreSQL (the PostgreSQL run of scripts/test has one)")
    if not _has_roles(image):
        pytest.skip("this gpuyard has no 'serve --no-worker --no-gateway' (the recipe's API role)")
    port = _free_port()
    (tmp_path / "ssh").mkdir()
    override = tmp_path / "compose.override.yaml"
    override.write_text(yaml.safe_dump({"services": {"api1": {
        "network_mode": "host",
        "environment": {"GPUYARD_DB": scratch_db,
                        "GPUYARD_HEALTH_URL": f"http://127.0.0.1:{port}/readyz"},
        "command": _with_flags(_recipe_command("api1"), {"--host": "127.0.0.1", "--port": str(port)}),
    }}}))
    project = f"gpuyard-compose-{port}"
    env = {**SECRETS, "GPUYARD_IMAGE": image, "GPUYARD_SSH_DIR": str(tmp_path / "ssh")}
    up = compose("up", "-d", "--no-deps", "api1", files=(COMPOSE, override), env=env, project=project)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield f"http://127.0.0.1:{port}"
    finally:
        logs = compose("logs", "api1", files=(COMPOSE, override), env=env, project=project)
        print(logs.stdout, logs.stderr)
        compose("down", "-v", "-t", "0", files=(COMPOSE, override), env=env, project=project)


def _recipe_command(service: str) -> list[str]:
    return yaml.safe_load(compose("config").stdout)["services"][service]["command"]


def _with_flags(command: list[str], values: dict[str, str]) -> list[str]:
    """``command`` with the value after each flag of ``values`` replaced."""
    out = list(command)
    for flag, value in values.items():
        out[out.index(flag) + 1] = value
    return out


def test_the_api_service_of_the_recipe_comes_up_ready(api_from_the_recipe):
    deadline = time.time() + PATIENCE
    while True:
        try:
            answer = httpx.get(f"{api_from_the_recipe}/readyz", timeout=5)
            if answer.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.time() < deadline, "the recipe's api1 never answered /readyz"
        time.sleep(0.2)
    assert answer.json()["status"] == "ready"
    assert httpx.get(f"{api_from_the_recipe}/api/v0/gpu_names/unique").status_code == 200
