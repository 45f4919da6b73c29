"""What a Docker engine says about its host, for onboarding a machine (docs/hosts.md).

:func:`read_engine` asks the engine for ``info`` (CPUs, memory, OS, kernel, architecture, the
CDI devices it discovered, its runtimes), then runs short-lived containers of a probe image: one
for the disk and CPU model (``df -Pk /``, ``/proc/cpuinfo``), and, when the engine can hand out
NVIDIA GPUs (CDI devices ``nvidia.com/gpu=…`` or the ``nvidia`` runtime), one with all GPUs that
runs ``nvidia-smi --query-gpu=… --format=csv``. The containers are removed whatever happens.
Plain data out; the interpretation is services/machines/onboarding.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gpuyard.runtimes.base import RuntimeError_
from gpuyard.runtimes.docker import connection_options

PROBE_LABEL = {"gpuyard.probe": "true"}
HOST_SCRIPT = "df -Pk / | tail -n 1; grep -m1 'model name' /proc/cpuinfo || true"


@dataclass
class EngineFacts:
    """What the engine at ``url`` reported."""

    url: str
    info: dict[str, Any]
    df_line: str = ""  # the root filesystem's line of ``df -Pk /`` in a container
    cpu_line: str = ""  # "model name : …" from /proc/cpuinfo, when the kernel writes one
    gpu_runtime: str = "none"  # how GPUs reach containers: "cdi", "nvidia" or "none"
    cdi_devices: list[str] = field(default_factory=list)
    smi_output: str | None = None  # nvidia-smi's CSV, when it ran
    smi_error: str | None = None  # why it did not run or failed


def cdi_gpus(info: dict[str, Any]) -> list[str]:
    """The NVIDIA GPU CDI devices the engine discovered (``nvidia.com/gpu=0`` …, not ``=all``)."""
    found = []
    for device in info.get("DiscoveredDevices") or []:
        ident = str((device or {}).get("ID") or "")
        if (device or {}).get("Source", "cdi") == "cdi" and ident.startswith("nvidia.com/gpu=") \
                and not ident.endswith("=all"):
            found.append(ident)
    return found


def _client(url: str, timeout: float) -> Any:
    import docker

    try:
        return docker.DockerClient(base_url=url, timeout=timeout, **connection_options(url))
    except docker.errors.DockerException as exc:
        raise RuntimeError_(f"cannot reach the Docker engine at {url}: {exc}") from None


def _ensure_image(client: Any, image: str) -> None:
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        try:
            client.images.pull(image)
        except docker.errors.APIError as exc:
            raise RuntimeError_(f"the probe image {image} is not on the engine and cannot be pulled "
                                f"({exc.explanation or exc}); pass one it has with --image") from None


def _run(client: Any, image: str, command: list[str], **kwargs: Any) -> tuple[int, str]:
    """Run ``command`` in a fresh container of ``image``; its exit code and output. The
    container is removed afterwards."""
    container = client.containers.create(image, command=command, labels=PROBE_LABEL,
                                         network_mode="none", **kwargs)
    try:
        container.start()
        code = container.wait(timeout=120).get("StatusCode", 1)
        out = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        return int(code), out
    finally:
        try:
            container.remove(force=True)
        except Exception:  # noqa: BLE001 - best effort: already gone is fine
            pass


def read_engine(url: str, image: str, smi_command: list[str], timeout: float = 60.0) -> EngineFacts:
    """Everything :mod:`gpuyard.services.machines.onboarding` needs from the engine at ``url``.
    RuntimeError_ when the engine does not answer or cannot run the probe image."""
    import docker
    import requests

    client = _client(url, timeout)
    try:
        try:
            info = client.info()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise RuntimeError_(f"the Docker engine at {url} did not answer: {exc}") from None
        facts = EngineFacts(url=url, info=info, cdi_devices=cdi_gpus(info))
        try:
            _ensure_image(client, image)
            code, out = _run(client, image, ["sh", "-c", HOST_SCRIPT])
        except docker.errors.DockerException as exc:
            raise RuntimeError_(f"the probe container did not run on {url}: {exc}") from None
        lines = out.splitlines()
        facts.df_line = next((ln for ln in lines if ln.startswith("/") or " /" in ln), "")
        facts.cpu_line = next((ln for ln in lines if ln.startswith("model name")), "")
        gpu_kwargs: dict[str, Any] | None = None
        if facts.cdi_devices:
            facts.gpu_runtime = "cdi"
            gpu_kwargs = {"devices": list(facts.cdi_devices)}
        elif "nvidia" in (info.get("Runtimes") or {}):
            facts.gpu_runtime = "nvidia"
            gpu_kwargs = {"device_requests": [docker.types.DeviceRequest(
                count=-1, capabilities=[["gpu", "utility"]])]}
        if gpu_kwargs is None:
            facts.smi_error = ("the engine offers no NVIDIA GPUs: it discovered no CDI devices "
                               "nvidia.com/gpu=… and has no nvidia runtime")
            return facts
        try:
            code, out = _run(client, image, smi_command, **gpu_kwargs)
        except docker.errors.DockerException as exc:
            facts.smi_error = f"a container with all GPUs did not run: {exc}"
            return facts
        if code != 0:
            facts.smi_error = f"nvidia-smi exited with {code}: {out.strip()[:300]}"
        else:
            facts.smi_output = out
        return facts
    finally:
        client.close()
