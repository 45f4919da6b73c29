"""Hardware defaults derived from a GPU model, for fleet files that leave the details out.

A fleet file only has to say what a host owner knows (GPU model and count, RAM, disk, network,
prices). Everything else an offer shows (CUDA version, compute capability, DLPerf, TFLOPS,
memory bandwidth, CPU and disk names, …) defaults from this table and can be overridden per
machine. Unknown models get :data:`GENERIC`.
"""

from __future__ import annotations

from typing import Any

DRIVER = "550.54.15"

#: Host-side defaults by machine class: consumer cards sit in desktop boards, data-centre cards
#: in server boards.
HOSTS: dict[str, dict[str, Any]] = {
    "consumer": {
        "cpu_name": "AMD Ryzen 9 7950X 16-Core Processor", "cpu_ghz": 4.5,
        "mobo_name": "ROG STRIX X670E-E GAMING WIFI", "disk_name": "Samsung SSD 990 PRO 2TB",
        "disk_bw": 5000.0,
    },
    "workstation": {
        "cpu_name": "AMD Ryzen Threadripper PRO 5975WX 32-Cores", "cpu_ghz": 3.6,
        "mobo_name": "Pro WS WRX80E-SAGE SE WIFI", "disk_name": "Samsung SSD 980 PRO 2TB",
        "disk_bw": 4500.0,
    },
    "datacenter": {
        "cpu_name": "AMD EPYC 9554 64-Core Processor", "cpu_ghz": 3.1,
        "mobo_name": "H13DSG-O-CPU", "disk_name": "SAMSUNG MZQL27T6HBLA-00A07",
        "disk_bw": 6500.0,
    },
}


def _gpu(host: str, cuda: float, cap: int, flops: float, dlperf: float, mem_bw: float,
         power: float, pci_gen: int, nvlink: float = 0.0, driver: str = DRIVER) -> dict[str, Any]:
    return {
        "host": host, "cuda_max_good": cuda, "driver_version": driver, "compute_cap": cap,
        "total_flops": flops, "dlperf": dlperf, "gpu_mem_bw": mem_bw, "gpu_max_power": power,
        "gpu_max_temp": 90.0 if host == "consumer" else 85.0, "pci_gen": pci_gen,
        "pcie_bw": 50.0 if pci_gen >= 5 else 24.5, "bw_nvlink": nvlink,
    }


#: Per-GPU figures: total_flops in TFLOPS (FP32), dlperf in DLPerf units, gpu_mem_bw in GB/s,
#: gpu_max_power in W, bw_nvlink in GB/s, compute_cap as Vast writes it (8.9 → 890).
MODELS: dict[str, dict[str, Any]] = {
    "RTX 3090": _gpu("consumer", 12.4, 860, 35.6, 26.0, 936.0, 350.0, 4),
    "RTX 4080": _gpu("consumer", 12.4, 890, 48.7, 40.0, 717.0, 320.0, 4),
    "RTX 4090": _gpu("consumer", 12.4, 890, 82.6, 58.0, 1008.0, 450.0, 4),
    "RTX 5090": _gpu("consumer", 12.8, 1200, 104.8, 90.0, 1792.0, 575.0, 5, driver="570.124.04"),
    "RTX A5000": _gpu("workstation", 12.4, 860, 27.8, 22.0, 768.0, 230.0, 4),
    "RTX A6000": _gpu("workstation", 12.4, 860, 38.7, 30.0, 768.0, 300.0, 4),
    "A40": _gpu("datacenter", 12.4, 860, 37.4, 30.0, 696.0, 300.0, 4),
    "L4": _gpu("datacenter", 12.4, 890, 30.3, 20.0, 300.0, 72.0, 4),
    "L40S": _gpu("datacenter", 12.4, 890, 91.6, 62.0, 864.0, 350.0, 4),
    "Tesla V100": _gpu("datacenter", 12.4, 700, 15.7, 20.0, 900.0, 300.0, 3, nvlink=300.0),
    "A100 PCIE": _gpu("datacenter", 12.4, 800, 19.5, 60.0, 1935.0, 300.0, 4),
    "A100 SXM4": _gpu("datacenter", 12.4, 800, 19.5, 70.0, 2039.0, 400.0, 4, nvlink=600.0),
    "H100 PCIE": _gpu("datacenter", 12.4, 900, 51.2, 110.0, 2000.0, 350.0, 5),
    "H100 SXM": _gpu("datacenter", 12.4, 900, 66.9, 150.0, 3350.0, 700.0, 5, nvlink=900.0),
}

#: Defaults for a GPU model not in :data:`MODELS`.
GENERIC = _gpu("consumer", 12.4, 860, 20.0, 15.0, 600.0, 300.0, 4)

#: Defaults that do not depend on the GPU.
COMMON: dict[str, Any] = {
    "cpu_arch": "amd64", "gpu_arch": "nvidia", "has_avx": True, "static_ip": False,
    "vms_enabled": False, "datacenter": False, "ubuntu_version": "22.04",
    "inet_up_cost": 0.0, "inet_down_cost": 0.0,
}


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").upper().split())


_BY_KEY = {_key(name): name for name in MODELS}


def canonical_name(gpu_name: str) -> str:
    """The table's spelling of a known model (``rtx_4090`` → ``RTX 4090``), else the name as given."""
    return _BY_KEY.get(_key(gpu_name), gpu_name)


def default_specs(gpu_name: str) -> dict[str, Any]:
    """Every hardware detail an offer shows, defaulted for ``gpu_name``."""
    model = dict(MODELS.get(canonical_name(gpu_name), GENERIC))
    host = HOSTS[model.pop("host")]
    return {**COMMON, **host, **model}
