"""A machine owner's side: their machines as ``show machines`` reads them, and listing (prices,
minimum GPUs per offer, end date) or unlisting them (VAST-WIRE §18).

A machine is its owner's alone: anyone else gets the 404 of a machine that does not exist.
Offers are ask rows priced from the machine row when searched, so a new price reaches every
offer at once; an instance keeps the GPU and storage prices it was rented at (``dph_base``,
``storage_cost`` on the instance row).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from gpuyard.errors import InvalidInput, NotFound
from gpuyard.services.machines import maintenance
from gpuyard.services.market import allocation
from gpuyard.services.market.allocation import GPU, gpu_list
from gpuyard.store.models import Ask, Instance, Machine, User
from gpuyard.wire.machines import MachineListing, duration_seconds

DAY = 86400.0
DEFAULT_LISTED_DAYS = 90.0  # a listing without an end date, as in fleet files


def owned(session: Session, user: User, machine_id: int, *, lock: bool = False) -> Machine:
    """``user``'s machine ``machine_id`` (locked for this transaction when ``lock``); NotFound for
    a machine that does not exist or is someone else's (the two look the same)."""
    machine = session.get(Machine, machine_id)
    if machine is None or machine.owner_id != user.id:
        raise NotFound(f"machine {machine_id} not found among your machines: see show machines",
                       "machine_not_found")
    return allocation.lock_machine(session, machine_id) if lock else machine


def _rentals(session: Session, machine: Machine) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Instance, User.username)
        .join(User, User.id == Instance.owner_id)
        .where(Instance.machine_id == machine.id, Instance.destroyed_at.is_(None))
        .order_by(Instance.id)
    ).all()
    return [
        {"instance_id": inst.id, "renter": name, "gpus": gpu_list(inst.gpus), "is_bid": inst.is_bid,
         "status": inst.actual_status,
         "dph": inst.bid_price if inst.is_bid and inst.bid_price is not None else inst.dph_base}
        for inst, name in rows
    ]


def _occupancy(machine: Machine, rentals: list[dict[str, Any]]) -> str:
    marks = ["-"] * machine.num_gpus
    for rental in rentals:
        for g in rental["gpus"]:
            if 0 <= g < len(marks) and (marks[g] == "-" or not rental["is_bid"]):
                marks[g] = "B" if rental["is_bid"] else "D"
    return " ".join(marks)


def machine_row(session: Session, machine: Machine) -> dict[str, Any]:
    """One machine as its owner sees it (the fields of :class:`~gpuyard.wire.machines.MachineRow`)."""
    specs = machine.specs or {}
    rentals = _rentals(session, machine)
    offers = session.scalar(
        select(func.count()).select_from(Ask)
        .where(Ask.machine_id == machine.id, Ask.kind == GPU, Ask.active == true())
    ) or 0
    owner = session.get(User, machine.owner_id) if machine.owner_id is not None else None
    return {
        "id": machine.id,
        "hostname": machine.hostname,
        "num_gpus": machine.num_gpus,
        "gpu_name": machine.gpu_name,
        "gpu_ram": machine.gpu_ram * 1000,
        "cpu_cores": machine.cpu_cores,
        "cpu_ram": machine.cpu_ram * 1000,
        "cpu_name": specs.get("cpu_name"),
        "disk_space": machine.disk_space,
        "disk_used": machine.disk_used,
        "driver_version": specs.get("driver_version"),
        "os_version": specs.get("ubuntu_version"),
        "gpu_runtime": specs.get("gpu_runtime"),
        "runtime": machine.runtime,
        "docker_url": machine.docker_url,
        "reliability2": machine.reliability,
        "verification": "verified" if machine.verified else "unverified",
        "public_ipaddr": machine.public_ipaddr,
        "geolocation": machine.geolocation,
        "num_reports": 0,
        "listed": machine.listed,
        "listed_gpu_cost": machine.dph_per_gpu,
        "min_bid_price": machine.min_bid_per_gpu,
        "listed_storage_cost": machine.storage_cost,
        "credit_discount_max": 0.0,
        "listed_inet_up_cost": float(specs.get("inet_up_cost") or 0.0),
        "listed_inet_down_cost": float(specs.get("inet_down_cost") or 0.0),
        "min_chunk": machine.min_chunk or 1,
        "end_date": machine.end_date,
        "offers": int(offers) if machine.listed else 0,
        "gpu_occupancy": _occupancy(machine, rentals),
        "rentals": rentals,
        "maintenances": maintenance.windows(session, [machine.id]),
        "owner": owner.username if owner is not None else None,
    }


def list_machines(session: Session, user: User) -> list[dict[str, Any]]:
    """``show machines``: the caller's machines, by id."""
    machines = session.scalars(select(Machine).where(Machine.owner_id == user.id).order_by(Machine.id))
    return [machine_row(session, m) for m in machines]


def show_machine(session: Session, user: User, machine_id: int) -> list[dict[str, Any]]:
    """``show machine ID``: a list of one row (the official client reads a bare list)."""
    return [machine_row(session, owned(session, user, machine_id))]


def _money(value: float) -> str:
    return f"${value:g}"


def list_machine(session: Session, user: User, listing: MachineListing) -> dict[str, Any]:
    """``list machine``: set the given prices, the minimum GPUs per offer and the end date, and
    list the machine; its offers change at once. Returns the official client's answer
    (``success``, ``extended``: how many live rentals' end date moved later, ``msg``)."""
    now = time.time()
    machine = owned(session, user, int(listing.machine), lock=True)
    gpu = listing.price_gpu if listing.price_gpu is not None else machine.dph_per_gpu
    min_bid = listing.price_min_bid if listing.price_min_bid is not None else machine.min_bid_per_gpu
    if min_bid > gpu:
        raise InvalidInput(f"the minimum bid ({_money(min_bid)}/GPU/hour) is above the on-demand "
                           f"price ({_money(gpu)}/GPU/hour): lower -b or raise -g",
                           "min_bid_above_price")
    if listing.end_date is not None:
        end = float(listing.end_date)
    elif listing.duration is not None:
        end = now + duration_seconds(listing.duration)
    elif machine.end_date is not None and machine.end_date > now:
        end = machine.end_date
    else:
        end = now + DEFAULT_LISTED_DAYS * DAY
    if end <= now:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(end))
        raise InvalidInput(f"the end date {when} has passed: give a later one with -e "
                           "(MM/DD/YYYY or epoch seconds)", "end_date_passed")
    before = machine.end_date
    machine.dph_per_gpu, machine.min_bid_per_gpu = float(gpu), float(min_bid)
    if listing.price_disk is not None:
        machine.storage_cost = float(listing.price_disk)
    specs = dict(machine.specs or {})
    if listing.price_inetu is not None:
        specs["inet_up_cost"] = float(listing.price_inetu)
    if listing.price_inetd is not None:
        specs["inet_down_cost"] = float(listing.price_inetd)
    machine.specs = specs
    if listing.min_chunk is not None:
        machine.min_chunk = int(listing.min_chunk)
    machine.end_date = end
    machine.listed = True
    machine.prices_set_at = machine.updated_at = now
    allocation.refresh_machine(session, machine)
    extended = 0
    if before is None or end > before:
        extended = len(allocation.live_instances(session, machine.id))
    chunk = machine.min_chunk or 1
    msg = (f"offers created/updated for machine {machine.id},  @ {_money(machine.dph_per_gpu)}/gpu/hr, "
           f"{_money(float(specs.get('inet_up_cost') or 0))}/GB up, "
           f"{_money(float(specs.get('inet_down_cost') or 0))}/GB down, {chunk}/min gpus, "
           f"storage {_money(machine.storage_cost)}/GB/month, min bid "
           f"{_money(machine.min_bid_per_gpu)}/gpu/hr, until "
           f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(end))}")
    return {"success": True, "extended": extended, "msg": msg}


def unlist_machine(session: Session, user: User, machine_id: int) -> dict[str, Any]:
    """``unlist machine``: withdraw every offer of the machine; its instances keep running."""
    machine = owned(session, user, machine_id, lock=True)
    machine.listed = False
    machine.prices_set_at = machine.updated_at = time.time()
    allocation.refresh_machine(session, machine)
    running = len(allocation.live_instances(session, machine.id))
    rest = f"; its {running} instance(s) keep running" if running else ""
    return {"success": True, "msg": f"all offers for machine {machine.id} removed, machine delisted{rest}."}
