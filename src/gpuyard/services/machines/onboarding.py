"""Onboarding a machine by probing its Docker engine (``gpuyard admin add-machine`` and
``probe-machine``, docs/hosts.md).

:func:`probe` reads the engine (runtimes/engine_probe.py) with no database open and turns what it
said into a :class:`Found`: CPU, RAM, disk, OS and the GPUs with their model's specs from the GPU
model table. :func:`register` stores a new machine from it (with offers, like a fleet entry);
:func:`reprobe` updates an existing machine's hardware and keeps its prices, owner and listing.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpuyard.errors import Conflict, InvalidInput, NotFound
from gpuyard.query.fields import parse_version
from gpuyard.services.machines import smi
from gpuyard.services.market import allocation, fleet
from gpuyard.services.market.gpu_models import MODELS, default_specs
from gpuyard.store.models import Machine

CPU_ONLY = "CPU only"
DEFAULT_IMAGE = "ubuntu:24.04"  # nvidia-smi needs glibc, which busybox images lack
#: Spec keys a probe measures (a re-probe replaces these and keeps the rest).
HARDWARE_SPECS = ("cpu_name", "cpu_arch", "ubuntu_version", "gpu_runtime", "driver_version",
                  "driver_vers", "compute_cap", "pci_gen", "gpu_max_power", "cuda_max_good",
                  "total_flops", "dlperf", "gpu_mem_bw", "bw_nvlink", "pcie_bw", "gpu_max_temp")
_NO_GPU_FIGURES = {"total_flops": 0.0, "dlperf": 0.0, "gpu_mem_bw": 0.0, "gpu_max_power": 0.0,
                   "bw_nvlink": 0.0, "compute_cap": 0, "cuda_max_good": 0.0, "gpu_max_temp": 0.0,
                   "driver_version": None, "driver_vers": None, "gpu_arch": "none"}
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass
class Found:
    """What a probe found on one engine."""

    url: str
    hostname: str
    cpu_cores: int
    cpu_ram: float  # GB
    disk_space: float  # GB of the engine's container storage
    os: str
    kernel: str
    arch: str
    engine: str
    cpu_name: str | None
    gpu_runtime: str
    gpus: list[smi.Gpu] = field(default_factory=list)
    why_no_gpus: str | None = None

    @property
    def gpu_name(self) -> str:
        return self.gpus[0].model if self.gpus else CPU_ONLY

    @property
    def gpu_ram(self) -> float:
        return min(g.memory_gb for g in self.gpus) if self.gpus else 0.0

    def specs(self) -> dict[str, Any]:
        """The machine's ``specs``: the GPU model's defaults, overridden by what was measured."""
        specs = default_specs(self.gpu_name)
        if not self.gpus:
            specs.update(_NO_GPU_FIGURES)
        else:
            first = self.gpus[0]
            measured = {"driver_version": first.driver_version, "compute_cap": first.compute_cap,
                        "pci_gen": first.pci_gen, "gpu_max_power": first.power_w}
            specs.update({k: v for k, v in measured.items() if v is not None})
            specs["driver_vers"] = parse_version(specs["driver_version"])
        specs.update(cpu_arch=_ARCH.get(self.arch, self.arch), gpu_runtime=self.gpu_runtime,
                     ubuntu_version=os_version(self.os))
        if self.cpu_name:
            specs["cpu_name"] = self.cpu_name
        return specs

    def report(self) -> str:
        """What was found, in words (the ``--dry-run`` output)."""
        lines = [
            f"engine:   {self.url} ({self.engine})",
            f"hostname: {self.hostname}",
            f"os:       {self.os} (kernel {self.kernel}, {self.arch})",
            f"cpu:      {self.cpu_cores} cores" + (f", {self.cpu_name}" if self.cpu_name else ""),
            f"ram:      {self.cpu_ram:g} GB",
            f"disk:     {self.disk_space:g} GB (container storage)",
        ]
        if not self.gpus:
            lines.append(f"gpus:     none: CPU-only ({self.why_no_gpus})")
            return "\n".join(lines)
        lines.append(f"gpus:     {len(self.gpus)} x {self.gpu_name} ({self.gpu_ram:g} GB each, "
                     f"driver {self.gpus[0].driver_version or 'unknown'}, via {self.gpu_runtime})")
        for g in self.gpus:
            lines.append(f"  {g.index}: {g.name}, {g.memory_mib:g} MiB"
                         + (f", {g.uuid}" if g.uuid else ""))
        if self.gpu_name not in MODELS:
            lines.append(f"note:     {self.gpu_name} is not in the GPU model table: its TFLOPS, "
                         "DLPerf and bandwidth are generic defaults")
        return "\n".join(lines)


def os_version(os_name: str) -> str:
    """``Ubuntu 22.04.4 LTS`` → ``22.04`` (what offers show as os_version); other systems as
    the engine names them."""
    match = re.search(r"Ubuntu (\d+\.\d+)", os_name)
    return match.group(1) if match else os_name[:60]


def _disk_gb(df_line: str) -> float:
    parts = df_line.split()
    if len(parts) >= 2 and parts[1].isdigit():
        return round(int(parts[1]) / 1024 / 1024, 1)
    return 0.0


def facts_to_found(facts: Any) -> Found:
    """A :class:`Found` from the engine's facts (runtimes/engine_probe.py ``EngineFacts``)."""
    info = facts.info
    gpus: list[smi.Gpu] = []
    why = facts.smi_error
    if facts.smi_output is not None:
        gpus = smi.parse(facts.smi_output)
        if not gpus:
            why = "nvidia-smi listed no GPUs"
    models = sorted({g.model for g in gpus})
    if len(models) > 1:
        raise InvalidInput(f"the host has GPUs of several models ({', '.join(models)}); a gpuyard "
                           "machine has one GPU model: register each model's GPUs as a machine of "
                           "its own (an engine per model, or fleet file entries)", "mixed_gpus")
    cpu = facts.cpu_line.split(":", 1)[1].strip() if ":" in facts.cpu_line else None
    return Found(
        url=facts.url,
        hostname=str(info.get("Name") or "host"),
        cpu_cores=int(info.get("NCPU") or 0),
        cpu_ram=round(float(info.get("MemTotal") or 0) / 2**30, 1),
        disk_space=_disk_gb(facts.df_line),
        os=str(info.get("OperatingSystem") or "unknown"),
        kernel=str(info.get("KernelVersion") or "unknown"),
        arch=str(info.get("Architecture") or "unknown"),
        engine=f"engine version {info.get('ServerVersion') or 'unknown'}",
        cpu_name=cpu,
        gpu_runtime=facts.gpu_runtime if gpus else "none",
        gpus=gpus,
        why_no_gpus=None if gpus else why,
    )


def probe(url: str, image: str = DEFAULT_IMAGE) -> Found:
    """Read the engine at ``url`` (no database open while it answers)."""
    from gpuyard.runtimes.engine_probe import read_engine

    if not url.startswith(fleet.DOCKER_SCHEMES):
        raise InvalidInput(f"{url!r} is not an engine URL: use unix:///var/run/docker.sock, "
                           "ssh://user@host or tcp://host:2376 (TLS from DOCKER_CERT_PATH)",
                           "bad_engine_url")
    return facts_to_found(read_engine(url, image, smi.COMMAND))


@dataclass(frozen=True)
class Listing:
    """What ``add-machine`` lists a new machine with (owners change it with list machine)."""

    name: str | None = None
    owner: str | None = None
    price_gpu: float = 0.40
    price_disk: float = 0.10
    public_ip: str | None = None
    ports: tuple[int, int] | None = None  # direct port range (first, last)


def register(session: Session, found: Found, listing: Listing) -> tuple[int, str]:
    """Store a new machine from a probe, with offers. Returns its id and a summary."""
    hostname = listing.name or found.hostname
    if not fleet._HOSTNAME.fullmatch(hostname) or len(hostname) > 255:
        raise InvalidInput(f"{hostname!r} is not a usable machine name: use letters, digits, '.', "
                           "'-' and '_' (give one with --name)", "bad_machine_name")
    existing = session.scalar(select(Machine.id).where(Machine.hostname == hostname))
    if existing is not None:
        raise Conflict(f"a machine named {hostname} exists already (id {existing}): re-read its "
                       f"hardware with gpuyard admin probe-machine {existing}, or pick another "
                       "--name", "machine_exists")
    first, last = listing.ports or (40000, 39999)
    entry = {
        "hostname": hostname, "gpu_name": found.gpu_name, "num_gpus": len(found.gpus),
        "gpu_ram": found.gpu_ram, "cpu_cores": found.cpu_cores, "cpu_ram": found.cpu_ram,
        "disk_space": found.disk_space, "inet_down": 1000.0, "inet_up": 1000.0,
        "dph_per_gpu": listing.price_gpu, "min_bid_per_gpu": round(listing.price_gpu / 2, 4),
        "storage_cost": listing.price_disk, "reliability": 0.99, "geolocation": None,
        "verified": True, "direct_port_start": first, "direct_port_count": last - first + 1,
        "runtime": "docker", "docker_url": found.url, "public_ipaddr": listing.public_ip,
        "host_id": 1, "listed": True, "listed_days": 90.0, "owner": listing.owner,
        "specs": found.specs(),
    }
    result = fleet.apply_fleet(session, [entry])
    machine_id = result.machine_ids[hostname]
    machine = session.get(Machine, machine_id)
    owner = "no owner (no administrator exists)" if machine.owner_id is None else \
        f"owner {fleet_owner_name(session, machine.owner_id)}"
    if found.gpus:
        what = (f"{len(found.gpus)} x {found.gpu_name}, offered at ${listing.price_gpu:g}/GPU/hour "
                f"({result.gpus_offered} GPUs offered)")
    else:
        what = ("CPU-only: no GPUs found, so no GPU offers; its disk is offered for volumes "
                f"({found.why_no_gpus})")
    return machine_id, f"Machine {machine_id} ({hostname}) added, {owner}: {what}."


def fleet_owner_name(session: Session, user_id: int) -> str:
    from gpuyard.store.models import User

    user = session.get(User, user_id)
    return user.username if user is not None else f"#{user_id}"


def target(session: Session, machine_ref: Any) -> tuple[int, str]:
    """The id and engine URL of a docker machine to re-probe."""
    from gpuyard.services.identifiers import require_id

    machine_id = require_id(machine_ref, "machine id")
    machine = session.get(Machine, machine_id)
    if machine is None:
        raise NotFound(f"machine {machine_id} not found", "machine_not_found")
    if not machine.docker_url:
        raise InvalidInput(f"machine {machine_id} ({machine.hostname}) has no docker_url: only "
                           "machines on a Docker engine can be probed", "no_engine")
    return machine_id, machine.docker_url


def reprobe(session: Session, machine_id: int, found: Found) -> str:
    """Update a machine's hardware from a new probe; prices, owner and listing stay. Refused when
    GPUs that live instances hold are gone."""
    machine = allocation.lock_machine(session, machine_id)
    where = f"machine {machine.id} ({machine.hostname})"
    fleet._check_shrink(session, machine, len(found.gpus), where)
    before = (machine.num_gpus, machine.gpu_name, machine.cpu_cores, machine.cpu_ram,
              machine.disk_space)
    machine.num_gpus, machine.gpu_name, machine.gpu_ram = len(found.gpus), found.gpu_name, found.gpu_ram
    machine.cpu_cores, machine.cpu_ram, machine.disk_space = (found.cpu_cores, found.cpu_ram,
                                                              found.disk_space)
    fresh = found.specs()
    specs = dict(machine.specs or {})
    if before[1] != found.gpu_name:
        specs.update(fresh)  # another GPU model: all its figures
    else:
        specs.update({k: fresh.get(k) for k in HARDWARE_SPECS if k in fresh})
    machine.specs = specs
    machine.updated_at = time.time()
    allocation.refresh_machine(session, machine)
    after = (machine.num_gpus, machine.gpu_name, machine.cpu_cores, machine.cpu_ram, machine.disk_space)
    if after == before:
        return f"Machine {machine.id} ({machine.hostname}): hardware unchanged; specs re-read."
    return (f"Machine {machine.id} ({machine.hostname}) updated: {before[0]} x {before[1]} → "
            f"{after[0]} x {after[1]}, {after[2]} cores, {after[3]:g} GB RAM, {after[4]:g} GB disk.")
