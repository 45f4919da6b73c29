"""Offer fields as SQL expressions over ``asks JOIN machines``: one rule for filtering, sorting and
the values shown in offer rows (docs/offers.md lists the units).

Sizes are stored as the host owner wrote them (GB, $/hour per GPU); these expressions turn them
into wire units (MB for RAM, whole-bundle prices, seconds for duration).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Float, Integer, and_, case, cast, false, literal, null, or_, true

from gpuyard.store.models import Ask, Machine

HOURS_PER_MONTH = 30 * 24
#: Prices below this count as this much when dividing by them (free machines get a finite score).
PRICE_FLOOR = 0.001


def _num(key: str) -> Any:
    return Machine.specs[key].as_float()


def _int(key: str) -> Any:
    return Machine.specs[key].as_integer()


def _str(key: str) -> Any:
    return Machine.specs[key].as_string()


def _bool(key: str) -> Any:
    return Machine.specs[key].as_boolean()


def _const(value: Any, type_: Any) -> Any:
    if value is None:
        return cast(null(), type_)
    # Wrapped in CAST so that ORDER BY never sees a bare 0/1 (SQLite reads that as a column number).
    if isinstance(value, bool):
        return cast(true() if value else false(), type_)
    return cast(literal(value, type_), type_)


def _floor(price: Any) -> Any:
    return case((price > PRICE_FLOOR, price), else_=PRICE_FLOOR)


def offer_end() -> Any:
    """When a machine's offers end: its listing's end date, or the start of its next maintenance
    window when that comes first (docs/hosts.md)."""
    before_end = or_(Machine.end_date.is_(None), Machine.maint_start < Machine.end_date)
    return case((and_(Machine.maint_start.is_not(None), before_end), Machine.maint_start),
                else_=Machine.end_date)


def common_columns(now: float) -> dict[str, Any]:
    """Fields that GPU and volume offers share (machine properties)."""
    return {
        "id": Ask.id,
        "machine_id": Machine.id,
        "host_id": Machine.host_id,
        "disk_space": Machine.disk_space - Machine.disk_used,  # free GB
        "disk_bw": _num("disk_bw"),
        "storage_cost": Machine.storage_cost,
        "inet_up": Machine.inet_up,
        "inet_down": Machine.inet_down,
        "reliability": Machine.reliability,
        "geolocation": Machine.geolocation,
        "verified": Machine.verified,
        "external": _const(False, Boolean),
        "duration": offer_end() - now,
        "driver_version": _int("driver_vers"),  # filters compare 550.54.15 as 550054015
        "cpu_arch": _str("cpu_arch"),
        "gpu_arch": _str("gpu_arch"),
        "pci_gen": _int("pci_gen"),
        "pcie_bw": _num("pcie_bw"),
        "has_avx": _bool("has_avx"),
        "static_ip": _bool("static_ip"),
        "datacenter": _bool("datacenter"),
        "ubuntu_version": _str("ubuntu_version"),
        "cluster_id": _const(None, Integer),
    }


def offer_columns(*, bid: bool, storage: float, now: float) -> dict[str, Any]:
    """Every GPU offer field (the 53 of the official client, plus score) as an expression.

    ``bid``: price with the minimum bid instead of the on-demand price. ``storage``: GB of disk
    whose cost (storage_cost × GB / 720 hours) is added to ``dph_total``.
    """
    n = Ask.num_gpus
    frac = cast(n, Float) / Machine.num_gpus
    price = (Machine.min_bid_per_gpu if bid else Machine.dph_per_gpu) * n
    dph_total = price + Machine.storage_cost * storage / HOURS_PER_MONTH
    dlperf = _num("dlperf") * n
    flops = _num("total_flops") * n
    return {
        **common_columns(now),
        "num_gpus": n,
        "gpu_name": Machine.gpu_name,
        "gpu_ram": Machine.gpu_ram * 1000.0,  # MB per GPU
        "gpu_total_ram": Machine.gpu_ram * 1000.0 * n,
        "gpu_frac": frac,
        "cpu_cores": Machine.cpu_cores,
        "cpu_cores_effective": Machine.cpu_cores * frac,
        "cpu_ram": Machine.cpu_ram * 1000.0,  # MB, the whole machine
        "cpu_ghz": _num("cpu_ghz"),
        "dph_total": dph_total,
        "min_bid": Machine.min_bid_per_gpu * n,
        "inet_up_cost": _num("inet_up_cost"),
        "inet_down_cost": _num("inet_down_cost"),
        "verification": case((Machine.verified == true(), "verified"), else_="unverified"),
        "rentable": _const(True, Boolean),
        "rented": _const(False, Boolean),
        "direct_port_count": Machine.direct_port_count,
        "cuda_max_good": _num("cuda_max_good"),
        "compute_cap": _int("compute_cap"),
        "gpu_mem_bw": _num("gpu_mem_bw"),
        "total_flops": flops,
        "dlperf": dlperf,
        "dlperf_per_dphtotal": dlperf / _floor(dph_total),
        "flops_per_dphtotal": flops / _floor(dph_total),
        "gpu_display_active": _const(False, Boolean),
        "gpu_max_power": _num("gpu_max_power"),
        "gpu_max_temp": _num("gpu_max_temp"),
        "vms_enabled": _bool("vms_enabled"),
        "mobo_name": _str("mobo_name"),
        "bw_nvlink": _num("bw_nvlink"),
        # DLPerf per $/hour, weighted by reliability (docs/offers.md, "Score").
        "score": dlperf / _floor(dph_total) * Machine.reliability,
    }


def volume_columns(now: float) -> dict[str, Any]:
    """Every volume offer field (VOLUME_FIELDS, including the sort-only ones) as an expression."""
    cuda = _num("cuda_max_good")
    return {
        **common_columns(now),
        "cuda_vers": cuda,
        "cuda_max_good": cuda,
        "total_flops": _num("total_flops") * Machine.num_gpus,
        # Local volumes: the network-volume bandwidth figures do not apply.
        "nw_disk_avg_bw": _const(None, Float),
        "nw_disk_max_bw": _const(None, Float),
        "nw_disk_min_bw": _const(None, Float),
        # Reliability per $/GB/month (docs/offers.md, "Volume offers").
        "score": Machine.reliability / _floor(Machine.storage_cost),
    }


def row_extras() -> dict[str, Any]:
    """Values shown in rows that are not filter fields (labels never clash with field names)."""
    return {
        "hostname": Machine.hostname,
        "driver_version_text": _str("driver_version"),
        "cpu_name": _str("cpu_name"),
        "cpu_ghz_": _num("cpu_ghz"),
        "disk_name": _str("disk_name"),
        "gpu_name_": Machine.gpu_name,
        "machine_gpus": Machine.num_gpus,
        "dph_per_gpu": Machine.dph_per_gpu,
        "start_date": Machine.created_at,
        "end_date": offer_end(),
        "public_ipaddr": Machine.public_ipaddr,
        "os_version": _str("ubuntu_version"),
    }
