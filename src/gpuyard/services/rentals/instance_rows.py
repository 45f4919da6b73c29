"""What an instance looks like on the wire (VAST-WIRE §6.3, §6.4, §10), and instance lists."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import case, func, literal, or_, select
from sqlalchemy.orm import Session

from gpuyard.errors import NotFound
from gpuyard.query.sql import compare, compile_order, compile_where
from gpuyard.services.identifiers import require_id
from gpuyard.services.instance_access import jupyter
from gpuyard.services.machines import maintenance
from gpuyard.services.rentals import volumes
from gpuyard.store.models import Instance, Machine, User
from gpuyard.wire.instances import MAX_PAGE, InstanceListQuery  # noqa: F401 - MAX_PAGE for callers

HOURS_PER_MONTH = 30 * 24
SSH_PORT = "22/tcp"


def price_per_hour(inst: Instance) -> float:
    """What the instance costs per hour: its bid (or the on-demand price) plus its disk."""
    gpu = inst.bid_price if inst.is_bid and inst.bid_price is not None else inst.dph_base
    return gpu + inst.storage_cost * inst.disk_space / HOURS_PER_MONTH


def docker_ports(inst: Instance, host_ip: str = "0.0.0.0") -> dict[str, list[dict[str, str]]]:
    """Published ports the way Docker reports them, while the instance runs (or may run: its
    engine does not answer, status "unknown"). ``22/tcp`` only while an SSH server in the
    container takes the instance's keys (docs/access.md, "Direct SSH"): the official CLI's
    ssh-url goes there whenever a row has it."""
    if inst.actual_status not in ("running", "loading", "unknown"):
        return {}
    return {key: [{"HostIp": host_ip, "HostPort": str(port)}] for key, port in sorted(inst.port_map.items())
            if key != SSH_PORT or inst.direct_ssh}


def instance_row(session: Session, inst: Instance, machine: Machine | None = None) -> dict[str, Any]:
    machine = machine or session.get(Machine, inst.machine_id)
    assert machine is not None
    specs = machine.specs or {}
    now = time.time()
    address = machine.public_ipaddr or machine.hostname
    # Without a gateway port, an instance that runs its own SSH server gives its direct port
    # (the SDK's ssh_url then points there too).
    direct_port = (inst.port_map or {}).get(SSH_PORT) if inst.direct_ssh else None
    running_since = inst.updated_at if inst.actual_status == "running" else None
    share = inst.num_gpus / machine.num_gpus if machine.num_gpus else 1.0
    image_uuid = f"{inst.image}:{inst.tag}" if inst.tag else inst.image
    return {
        "id": inst.id,
        "machine_id": inst.machine_id,
        "host_id": machine.host_id,
        "hostname": machine.hostname,
        "num_gpus": inst.num_gpus,
        "gpus": [int(g) for g in inst.gpus.split(",") if g],
        "gpu_name": machine.gpu_name,
        "gpu_ram": machine.gpu_ram * 1000,
        "gpu_totalram": machine.gpu_ram * 1000 * inst.num_gpus,
        "gpu_util": 0.0,
        "gpu_temp": None,
        "cpu_name": specs.get("cpu_name"),
        "cpu_cores": machine.cpu_cores,
        "cpu_cores_effective": machine.cpu_cores * share,
        "cpu_ram": machine.cpu_ram * 1000 * share,
        "cpu_util": 0.0,
        "mem_usage": 0.0,
        "mem_limit": machine.cpu_ram * share,
        "disk_space": inst.disk_space,
        "disk_usage": 0.0,
        "disk_util": 0.0,
        "disk_bw": specs.get("disk_bw"),
        "inet_up": machine.inet_up,
        "inet_down": machine.inet_down,
        "reliability2": machine.reliability,
        "geolocation": machine.geolocation,
        "verification": "verified" if machine.verified else "unverified",
        "cuda_max_good": specs.get("cuda_max_good"),
        "driver_version": specs.get("driver_version"),
        "compute_cap": specs.get("compute_cap"),
        "public_ipaddr": address,
        # The SSH gateway's address for this instance (docs/access.md); None until a gateway
        # listens on its port.
        "ssh_host": inst.ssh_host if inst.ssh_port else address,
        "ssh_port": inst.ssh_port or direct_port,
        "ports": docker_ports(inst),
        "direct_port_start": machine.direct_port_start,
        "direct_port_end": machine.direct_port_start + machine.direct_port_count - 1,
        "image_uuid": image_uuid,
        "image": inst.image,
        "tag": inst.tag,
        "image_args": list(inst.args or []),
        "image_runtype": inst.runtype,
        "env": inst.env,
        "extra_env": (inst.launch or {}).get("extra_env") or _pairs(inst.env),
        "onstart": inst.onstart,
        "args": inst.args,
        "extra_filters": inst.extra_filters,
        "jupyter_dir": (inst.launch or {}).get("jupyter_dir"),
        "jupyter_token": inst.jupyter_token if jupyter.wanted(inst.runtype) else None,
        "jupyter_url": jupyter_url(inst, address),
        "label": inst.label,
        "template_id": inst.template_id,
        "template_hash_id": inst.template_hash_id,
        "template_name": inst.template_name,
        "is_bid": inst.is_bid,
        "bid_price": inst.bid_price,
        "min_bid": machine.min_bid_per_gpu * inst.num_gpus,
        "dph_base": inst.dph_base,
        "dph_total": price_per_hour(inst),
        "storage_cost": inst.storage_cost,
        "intended_status": inst.intended_status,
        "actual_status": inst.actual_status,
        "cur_state": inst.cur_state,
        "next_state": inst.intended_status,
        "status_msg": _with_warning(inst.status_msg, maintenance.warning(machine, now)),
        "start_date": inst.start_date,
        "end_date": machine.end_date,
        "uptime_mins": (now - running_since) / 60 if running_since else 0.0,
        "volume_info": volumes.instance_volume_info(session, inst),
        "runtime": inst.runtime,
        "rentable": False,
    }


def jupyter_url(inst: Instance, address: str | None) -> str | None:
    """The address of the instance's Jupyter, while a docker instance runs (simulated ones run no
    Jupyter)."""
    if inst.runtime != "docker" or inst.actual_status != "running" or not jupyter.wanted(inst.runtype):
        return None
    return jupyter.url(address, (inst.port_map or {}).get(jupyter.PORT_KEY), inst.jupyter_token)


def _with_warning(msg: str | None, warning: str | None) -> str | None:
    if warning is None:
        return msg
    return f"{msg}; {warning}" if msg else warning


def _pairs(env: str | None) -> list[list[str]]:
    from gpuyard.envspec import env_pairs, parse_env

    return env_pairs(parse_env(env, limit=None))  # stored: a merged env may exceed MAX_ENV


# -- lists -------------------------------------------------------------------------------------
def _columns() -> dict[str, Any]:
    gpu_price = case((Instance.is_bid, func.coalesce(Instance.bid_price, Instance.dph_base)),
                     else_=Instance.dph_base)
    return {
        "id": Instance.id,
        "machine_id": Instance.machine_id,
        "host_id": Machine.host_id,
        "num_gpus": Instance.num_gpus,
        "template_id": Instance.template_id,
        "volume_id": Instance.volume_id,
        "actual_status": Instance.actual_status,
        "intended_status": Instance.intended_status,
        "cur_state": Instance.cur_state,
        "label": Instance.label,
        "gpu_name": Machine.gpu_name,
        "image_uuid": case((Instance.tag == "", Instance.image),
                           else_=Instance.image + literal(":") + Instance.tag),
        "template_hash_id": Instance.template_hash_id,
        "template_name": Instance.template_name,
        "geolocation": Machine.geolocation,
        "verification": case((Machine.verified, "verified"), else_="unverified"),
        "image_runtype": Instance.runtype,
        "status_msg": Instance.status_msg,
        "is_bid": Instance.is_bid,
        "dph_total": gpu_price + Instance.storage_cost * Instance.disk_space / HOURS_PER_MONTH,
        "dph_base": Instance.dph_base,
        "bid_price": Instance.bid_price,
        "disk_space": Instance.disk_space,
        "gpu_ram": Machine.gpu_ram * 1000,
        "cpu_ram": Machine.cpu_ram * 1000,
        "start_date": Instance.start_date,
    }


def _null_conditions(terms: list[tuple[str, str, list[Any]]]) -> list[Any]:
    columns = _columns()
    conditions = []
    for name, op, rest in terms:
        col = columns[name]
        # (compare: a number beyond 32 bits matches nothing, as in any other filter, instead of
        # PostgreSQL's "integer out of range")
        term = or_(col.is_(None), compare(col, "in", rest)) if rest else col.is_(None)
        conditions.append(term if op == "in" else ~term)
    return conditions


def list_instances(session: Session, user: User, q: InstanceListQuery) -> dict[str, Any]:
    """``GET /api/v1/instances/``: the caller's instances, filtered, sorted and paged in SQL."""
    columns = _columns()
    conditions = _null_conditions(q.null_terms) + compile_where(q.query, columns)
    base = (
        select(Instance, Machine)
        .join(Machine, Machine.id == Instance.machine_id)
        .where(Instance.owner_id == user.id, Instance.destroyed_at.is_(None), *conditions)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    ordered = base.order_by(
        *compile_order(q.order, columns), *([] if q.order[-1][0] == "id" else [Instance.id.asc()])
    )
    page = session.execute(ordered.offset(q.offset).limit(q.limit)).all()
    label_counts: dict[str, int] = {}
    for label, count in session.execute(
        select(Instance.label, func.count())
        .where(Instance.owner_id == user.id, Instance.destroyed_at.is_(None))
        .group_by(Instance.label)
    ):
        label_counts[label or ""] = count
    rows = [instance_row(session, inst, machine) for inst, machine in page]
    if q.cols is not None:
        rows = [{k: row.get(k) for k in q.cols} for row in rows]
    more = q.offset + len(page) < total
    return {
        "success": True,
        "instances": rows,
        "next_token": str(q.offset + len(page)) if more else None,
        "total_instances": total,
        "label_counts": label_counts,
    }


def get_instance(session: Session, user: User, ref: Any) -> dict[str, Any] | None:
    """One of the caller's instances, or None (the official client expects null, not an error,
    for ``GET /api/v0/instances/{id}/``)."""
    try:
        instance_id = require_id(ref, "instance id")
    except NotFound:
        return None
    inst = session.get(Instance, instance_id)
    if inst is None or inst.owner_id != user.id or inst.destroyed_at is not None:
        return None
    return instance_row(session, inst)


def filter_values(session: Session, user: User) -> list[dict[str, Any]]:
    """The (status, verification, GPU) combinations of the caller's instances."""
    stmt = (
        select(Instance.actual_status, Machine.verified, Machine.gpu_name)
        .join(Machine, Machine.id == Instance.machine_id)
        .where(Instance.owner_id == user.id, Instance.destroyed_at.is_(None))
        .distinct()
    )
    return [
        {"actual_status": s, "verification": "verified" if v else "unverified", "gpu_name": g}
        for s, v, g in session.execute(stmt)
    ]
