"""``nvidia-smi --query-gpu=… --format=csv`` read into GPUs, and GPU names mapped to the GPU model
table (services/market/gpu_models.py).

The query :data:`QUERY` asks for; the parser reads the header, so columns may come in any order,
with or without units (``--format=csv`` writes ``81559 MiB`` and ``700.00 W``; ``nounits``
writes bare numbers), and ``[N/A]`` / ``[Not Supported]`` for what a card does not report.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from gpuyard.errors import InvalidInput
from gpuyard.services.market.gpu_models import MODELS, canonical_name

FIELDS = ("index", "name", "uuid", "memory.total", "driver_version", "compute_cap",
          "pcie.link.gen.max", "power.limit")
QUERY = "--query-gpu=" + ",".join(FIELDS)
COMMAND = ["nvidia-smi", QUERY, "--format=csv"]

#: nvidia-smi's product names → the GPU model table's names (first match wins).
_MODEL_RULES: tuple[tuple[str, str], ...] = (
    (r"H100.*(SXM|HBM3)", "H100 SXM"),
    (r"H100.*PCI", "H100 PCIE"),
    (r"A100.*SXM", "A100 SXM4"),
    (r"A100.*PCI", "A100 PCIE"),
    (r"V100", "Tesla V100"),
    (r"L40S", "L40S"),
    (r"^L4$", "L4"),
    (r"^A40$", "A40"),
    (r"RTX A6000", "RTX A6000"),
    (r"RTX A5000", "RTX A5000"),
    (r"^RTX (3090|4080|4090|5090)$", r"RTX \1"),
)


@dataclass(frozen=True)
class Gpu:
    """One GPU as nvidia-smi reports it, with its model in the GPU model table's words."""

    index: int
    name: str  # as nvidia-smi says: "NVIDIA H100 80GB HBM3"
    model: str  # the table's name when known ("H100 SXM"), else the name without "NVIDIA"
    memory_mib: float
    uuid: str | None = None
    driver_version: str | None = None
    compute_cap: int | None = None  # as Vast writes it: 9.0 → 900
    pci_gen: int | None = None
    power_w: float | None = None

    @property
    def known(self) -> bool:
        return self.model in MODELS

    @property
    def memory_gb(self) -> float:
        return round(self.memory_mib / 1024, 1)


def model_name(name: str) -> str:
    """``NVIDIA GeForce RTX 4090`` → ``RTX 4090``, ``NVIDIA H100 80GB HBM3`` → ``H100 SXM``; a card
    the table does not know keeps its name without the vendor (``NVIDIA H200`` → ``H200``)."""
    short = re.sub(r"^(NVIDIA\s+)?(GEFORCE\s+)?", "", name.strip(), flags=re.IGNORECASE).strip()
    upper = " ".join(short.upper().replace("_", " ").split())
    for pattern, model in _MODEL_RULES:
        match = re.search(pattern, upper)
        if match:
            return match.expand(model)
    return canonical_name(short)


def _missing(text: str) -> bool:
    return text == "" or text.startswith("[") or text.upper() in ("N/A", "NOT SUPPORTED")


def _number(text: str) -> float | None:
    if _missing(text):
        return None
    match = re.match(r"[-+]?[0-9]*\.?[0-9]+", text)
    return float(match.group(0)) if match else None


def _column(header: str) -> str:
    """``memory.total [MiB]`` → ``memory.total``; ``clocks.current.sm [MHz]`` likewise."""
    return header.split("[")[0].strip().lower()


def parse(text: str) -> list[Gpu]:
    """The GPUs of nvidia-smi's CSV output (with its header line), by index. InvalidInput when
    the text is not that output."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    rows = list(csv.reader(io.StringIO("\n".join(lines)), skipinitialspace=True))
    header = [_column(h) for h in rows[0]]
    if "name" not in header or "memory.total" not in header:
        raise InvalidInput("nvidia-smi did not answer with a CSV table with name and memory.total "
                           f"columns; it said: {lines[0][:200]!r}", "nvidia_smi_unreadable")
    gpus = []
    for number, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise InvalidInput(f"nvidia-smi line {number + 2} has {len(row)} columns, the header "
                               f"{len(header)}: {lines[number + 1][:200]!r}", "nvidia_smi_unreadable")
        value = {key: cell.strip() for key, cell in zip(header, row, strict=True)}
        index = _number(value.get("index", ""))
        memory = _number(value["memory.total"])
        cap = _number(value.get("compute_cap", ""))
        gen = _number(value.get("pcie.link.gen.max", ""))
        gpus.append(Gpu(
            index=int(index) if index is not None else number,
            name=value["name"],
            model=model_name(value["name"]),
            memory_mib=memory or 0.0,
            uuid=None if _missing(value.get("uuid", "")) else value["uuid"],
            driver_version=None if _missing(value.get("driver_version", "")) else value["driver_version"],
            compute_cap=round(cap * 100) if cap is not None else None,
            pci_gen=int(gen) if gen is not None else None,
            power_w=_number(value.get("power.limit", "")),
        ))
    return sorted(gpus, key=lambda g: g.index)
