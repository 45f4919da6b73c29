"""gpuyard's container image (Containerfile), built on the local Debian base and run for real:
it serves, is ready on /readyz against its database, runs as a non-root user, and its
HEALTHCHECK passes."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from image import podman

PATIENCE = 120.0  # seconds: a bound for a failing test, not a speed target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, container: str) -> httpx.Response:
    deadline = time.time() + PATIENCE
    while True:
        try:
            answer = httpx.get(url, timeout=5)
            if answer.status_code == 200:
                return answer
        except httpx.HTTPError:
            pass
        state = subprocess.run([podman(), "inspect", "--format", "{{.State.Status}}", container],
                               capture_output=True, text=True).stdout.strip()
        if state not in ("running", "created", "configured") or time.time() > deadline:
            log = subprocess.run([podman(), "logs", container], capture_output=True, text=True)
            pytest.fail(f"{url} never answered 200 (container {state}):\n{log.stdout}{log.stderr}")
        time.sleep(0.2)


@pytest.fixture
def served(image: str, scratch_db: str | None) -> Iterator[tuple[str, str]]:
    """(container name, base URL) of ``gpuyard serve`` in the image, on the host's network."""
    port = _free_port()
    name = f"gpuyard-image-test-{port}"
    env = ["-e", f"GPUYARD_HEALTH_URL=http://127.0.0.1:{port}/readyz"]
    if scratch_db:
        env += ["-e", f"GPUYARD_DB={scratch_db}"]
    subprocess.run([podman(), "run", "-d", "--name", name, "--network", "host", *env, image,
                    "serve", "--host", "127.0.0.1", "--port", str(port)],
                   check=True, capture_output=True)
    try:
        yield name, f"http://127.0.0.1:{port}"
    finally:
        subprocess.run([podman(), "rm", "-f", "-t", "0", "-v", name], capture_output=True)


def test_the_image_serves_ready_as_a_non_root_user_and_passes_its_healthcheck(served, scratch_db):
    name, base = served
    ready = _wait_ready(f"{base}/readyz", name)
    assert ready.json()["status"] == "ready"
    logs = subprocess.run([podman(), "logs", name], capture_output=True, text=True)
    expected = "postgresql" if scratch_db else "sqlite:////var/lib/gpuyard/"
    assert f"gpuyard: database {expected}" in logs.stderr + logs.stdout

    uid = subprocess.run([podman(), "exec", name, "id", "-u"], capture_output=True, text=True, check=True)
    assert uid.stdout.strip() not in ("", "0")

    config = json.loads(subprocess.run([podman(), "image", "inspect", served_image(name)],
                                       capture_output=True, text=True, check=True).stdout)[0]
    healthcheck = config.get("Healthcheck") or config["Config"]["Healthcheck"]  # Podman / Docker
    assert "GPUYARD_HEALTH_URL" in " ".join(healthcheck["Test"])  # which is /readyz by default:
    assert "GPUYARD_HEALTH_URL=http://127.0.0.1:8686/readyz" in config["Config"]["Env"]
    check = subprocess.run([podman(), "healthcheck", "run", name], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    health = subprocess.run([podman(), "inspect", "--format", "{{.State.Health.Status}}", name],
                            capture_output=True, text=True, check=True)
    assert health.stdout.strip() == "healthy"

    # The same check fails when the server does not answer (here: a port nothing serves).
    kind, *command = healthcheck["Test"]
    assert kind == "CMD"
    dead = subprocess.run([podman(), "exec", "-e", f"GPUYARD_HEALTH_URL=http://127.0.0.1:{_free_port()}/readyz",
                           name, *command], capture_output=True, text=True)
    assert dead.returncode != 0


def served_image(container: str) -> str:
    return subprocess.run([podman(), "inspect", "--format", "{{.ImageName}}", container],
                          capture_output=True, text=True, check=True).stdout.strip()
