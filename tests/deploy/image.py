"""gpuyard's own container image for the deployment tests: built from the Containerfile on the
local Debian base (``scripts/images/debian-base``; no registry is needed) and tagged with a hash
of what goes into it, so an unchanged tree reuses the image instead of building it again. Each
image is labelled with the checkout it was built from: a new build untags only that checkout's
older images, never those another checkout of the repository (maybe testing at the same time)
built."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = os.environ.get("GPUYARD_DEBIAN_IMAGE", "localhost/gpuyard-test/debian:bookworm")
REPO = "localhost/gpuyard-test/gpuyard"
TREE_LABEL = "gpuyard.test-checkout"  # the checkout (its path) an image was built from
BUILD_TIMEOUT = 1800  # seconds: the first build installs the dependencies from PyPI


def podman() -> str:
    found = shutil.which("podman")
    if not found:
        pytest.skip("the deployment tests need podman (scripts/test installs it)")
    return found


def content_hash() -> str:
    """What the image is made of: the Containerfile, .containerignore, pyproject.toml, README.md
    and every file under src/ (bytecode aside), and the base image."""
    digest = hashlib.sha256(BASE.encode())
    files = [ROOT / n for n in ("Containerfile", ".containerignore", "pyproject.toml", "README.md")]
    files += sorted(p for p in (ROOT / "src").rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def exists(image: str) -> bool:
    return subprocess.run([podman(), "image", "exists", image]).returncode == 0


def build_args() -> list[str]:
    """Behind a proxy that re-signs TLS, this machine's CA bundle (PIP_CERT, else SSL_CERT_FILE)
    is mounted into the build for pip; elsewhere nothing is added."""
    bundle = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if bundle and os.path.isfile(bundle):
        return ["--volume", f"{bundle}:/run/build-ca.crt:ro", "--build-arg", "PIP_CERT=/run/build-ca.crt"]
    return []


def gpuyard_image() -> str:
    """The image's name, built first when this tree's hash has none yet."""
    tool = podman()
    image = f"{REPO}:{content_hash()}"
    if exists(image):
        return image
    if not exists(BASE):
        made = subprocess.run([str(ROOT / "scripts/images/debian-base")], capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT)
        if made.returncode != 0:
            pytest.fail(f"scripts/images/debian-base failed:\n{made.stderr[-3000:]}")
    built = subprocess.run(
        [tool, "build", "--network", "host", "--format", "docker", "--build-arg", f"BASE={BASE}",
         "--label", f"{TREE_LABEL}={ROOT}", *build_args(), "-t", image, "-f",
         str(ROOT / "Containerfile"), str(ROOT)],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    if built.returncode != 0:
        pytest.fail(f"podman build failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}")
    _forget_older(tool, image)
    return image


def _forget_older(tool: str, keep: str) -> None:
    """Untag the images this checkout built from earlier trees (their layers go with them unless
    shared or in use); those of other checkouts are left alone."""
    listed = subprocess.run([tool, "images", "--filter", f"reference={REPO}", "--filter",
                             f"label={TREE_LABEL}={ROOT}", "--format", "{{.Repository}}:{{.Tag}}"],
                            capture_output=True, text=True)
    for name in listed.stdout.split():
        if name != keep and name.startswith(REPO + ":"):
            subprocess.run([tool, "rmi", name], capture_output=True)
