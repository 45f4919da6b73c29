"""Who holds which GPUs of a machine, and what the machine therefore offers.

The rules (docs/instances.md, "GPUs, bids and offers"):

* An on-demand instance holds its GPUs for as long as it exists (stopped included), so that
  starting it again always works.
* Interruptible instances (bids) that want to run compete for their GPUs: the highest price
  wins, then the oldest. A bid runs only when none of its GPUs is held by an on-demand instance
  or by a bid that beats it; otherwise it is *outbid* (stopped, with a message saying so) and
  resumes by itself as soon as its GPUs are free again.
* GPUs not held on demand are offered, to on-demand and bid searches alike; idle GPUs are put
  into bundles before GPUs that a bid holds, so that renting rarely preempts anyone.
* A machine offers bundles of 1, 2, 4, … GPUs and one of all its offerable GPUs. Each bundle is
  an ask row naming specific GPUs; the row keeps its id and is switched off while those GPUs are
  rented, and on again when they are free.
* A destroyed instance whose container is not removed yet (its engine did not answer) may still
  run there: it keeps holding its GPUs (a bid only if it was running) and its host ports until the
  container is gone or the operator declares the machine lost (:func:`lingering_instances`).

Every function runs inside the caller's write transaction; :func:`lock_machine` first.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from gpuyard.errors import NotFound
from gpuyard.store.db import lock_row
from gpuyard.store.models import Ask, Instance, Machine, Volume

GPU = "gpu"
VOLUME = "volume"


def gpu_list(text: str) -> list[int]:
    return [int(g) for g in text.split(",") if g != ""]


def gpu_text(gpus: Iterable[int]) -> str:
    return ",".join(str(g) for g in sorted(gpus))


def lock_machine(session: Session, machine_id: int) -> Machine:
    """The machine row, locked for this transaction (PostgreSQL row lock; SQLite's write lock
    already serializes writers: :func:`~gpuyard.store.db.lock_row`)."""
    machine = lock_row(session, Machine, machine_id)
    if machine is None:
        raise NotFound(f"machine {machine_id} not found", "machine_not_found")
    return machine


def live_instances(session: Session, machine_id: int) -> list[Instance]:
    return list(
        session.scalars(
            select(Instance)
            .where(Instance.machine_id == machine_id, Instance.destroyed_at.is_(None))
            .order_by(Instance.id)
        )
    )


# Built once: the statements every rental runs (building one costs more than running it).
# An instance still on its machine: live, or destroyed with its container not removed yet.
_ON_MACHINE = or_(Instance.destroyed_at.is_(None), Instance.runtime_ref.is_not(None))
_HOLDING = (select(Instance)
            .where(Instance.machine_id == bindparam("machine"), _ON_MACHINE)
            .order_by(Instance.id))
_VOLUME_SIZES = select(Volume.size).where(Volume.machine_id == bindparam("machine"),
                                          Volume.deleted_at.is_(None))
# The asks as plain rows, switched on and off by Core statements: loading them as objects and
# flushing them cost more than the rest of a machine's re-allocation.
_ASKS_TABLE = Ask.__table__
_ASKS = select(_ASKS_TABLE.c.id, _ASKS_TABLE.c.kind, _ASKS_TABLE.c.gpus, _ASKS_TABLE.c.active).where(
    _ASKS_TABLE.c.machine_id == bindparam("machine"))
_SWITCH_ASKS = (update(_ASKS_TABLE).where(_ASKS_TABLE.c.id == bindparam("ask"))
                .values(active=bindparam("on")))
_NEW_ASKS = insert(_ASKS_TABLE)  # (the table's: the ORM's bulk insert costs more than the rows)
_MACHINE_DISK = (update(Machine.__table__).where(Machine.__table__.c.id == bindparam("machine"))
                 .values(disk_used=bindparam("used")))


def holding_instances(session: Session, machine_id: int) -> tuple[list[Instance], list[Instance]]:
    """:func:`live_instances` and :func:`lingering_instances` of the machine, in one query."""
    live: list[Instance] = []
    lingering: list[Instance] = []
    for inst in session.scalars(_HOLDING, {"machine": machine_id}):
        (live if inst.destroyed_at is None else lingering).append(inst)
    return live, lingering


def lingering_instances(session: Session, machine_id: int) -> list[Instance]:
    """Destroyed instances whose runtime leftovers (a container) are not removed yet."""
    return list(
        session.scalars(
            select(Instance)
            .where(Instance.machine_id == machine_id, Instance.destroyed_at.is_not(None),
                   Instance.runtime_ref.is_not(None))
            .order_by(Instance.id)
        )
    )


def still_holds_gpus(inst: Instance) -> bool:
    """Whether a lingering instance's container may still use its GPUs: an on-demand one always
    (as when it lived), a bid when it was last seen running (an outbid one had stopped)."""
    return not inst.is_bid or inst.actual_status in ("running", "loading", "unknown")


_PORT_MAPS = select(Instance.port_map).where(
    Instance.machine_id == bindparam("machine"), _ON_MACHINE, Instance.id != bindparam("other"),
)


def reserved_ports(session: Session, machine_id: int, except_id: int | None = None) -> set[int]:
    """The host ports of the machine's direct port range that its instances hold (all but
    ``except_id``), lingering ones included. (One query of one column: every reconcile reads
    it.)"""
    maps = session.scalars(_PORT_MAPS, {"machine": machine_id,
                                        "other": except_id if except_id is not None else -1})
    return {port for port_map in maps for port in (port_map or {}).values()}


@dataclass
class Holdings:
    """The outcome of allocating one machine's GPUs."""

    on_demand: set[int] = field(default_factory=set)  # GPUs held by on-demand instances
    lingering: set[int] = field(default_factory=set)  # … by containers not removed yet (in on_demand)
    bids: dict[int, Instance] = field(default_factory=dict)  # GPU → the bid that runs on it

    def holder_price(self, gpus: Iterable[int]) -> float | None:
        """The highest running bid among ``gpus`` (None when no bid holds any of them)."""
        prices = [self.bids[g].bid_price or 0.0 for g in gpus if g in self.bids]
        return max(prices) if prices else None


def _bid_rank(instance: Instance) -> tuple[float, int]:
    return (-(instance.bid_price or 0.0), instance.id)


def allocate(instances: list[Instance], lingering: Iterable[int] = (),
             maintenance: str | None = None) -> tuple[Holdings, list[Instance]]:
    """Decide which bids run. ``lingering``: GPUs that containers of destroyed instances may still
    use (held like on-demand ones). ``maintenance``: why no bid runs now (the machine's
    maintenance window has started), or None. Returns the holdings and the instances whose
    ``outbid`` changed (their ``outbid`` and ``outbid_msg`` are set here)."""
    holdings = Holdings(lingering=set(lingering))
    holdings.on_demand.update(holdings.lingering)
    for inst in instances:
        if not inst.is_bid:
            holdings.on_demand.update(gpu_list(inst.gpus))
    changed: list[Instance] = []
    contenders = sorted(
        (i for i in instances if i.is_bid and i.intended_status == "running"), key=_bid_rank
    )
    for inst in contenders:
        if maintenance is not None:
            if not inst.outbid or inst.outbid_msg != maintenance:
                inst.outbid, inst.outbid_msg = True, maintenance
                changed.append(inst)
            continue
        gpus = gpu_list(inst.gpus)
        on_demand = [g for g in gpus if g in holdings.on_demand]
        by_bid = [holdings.bids[g] for g in gpus if g in holdings.bids]
        if on_demand or by_bid:
            if by_bid:
                best = max(b.bid_price or 0.0 for b in by_bid)
                why = f"a higher bid (${best:.4g}/hour)"
            elif all(g in holdings.lingering for g in on_demand):
                why = "a destroyed instance whose container is not removed yet"
            else:
                why = "an on-demand rental"
            msg = (
                f"outbid: GPU {gpu_text(on_demand or [g for g in gpus if g in holdings.bids])} "
                f"taken by {why}; the instance resumes when its GPUs are free again "
                "(or raise the bid with change bid)"
            )
            if not inst.outbid or inst.outbid_msg != msg:
                inst.outbid, inst.outbid_msg = True, msg
                changed.append(inst)
            continue
        for g in gpus:
            holdings.bids[g] = inst
        if inst.outbid:
            inst.outbid, inst.outbid_msg = False, None
            changed.append(inst)
    # Bids the user stopped do not compete, and are not "outbid" either.
    for inst in instances:
        if inst.is_bid and inst.intended_status != "running" and inst.outbid:
            inst.outbid, inst.outbid_msg = False, None
            changed.append(inst)
    return holdings, changed


def bundle_sizes(free: int, min_chunk: int = 1) -> list[int]:
    """1, 2, 4, … below ``free``, then ``free`` itself; none smaller than ``min_chunk`` (the
    owner's minimum GPUs per offer; ``free`` itself is always offered)."""
    sizes, k = [], 1
    while k < free:
        if k >= min_chunk:
            sizes.append(k)
        k *= 2
    if free:
        sizes.append(free)
    return sizes


def maintenance_reason(machine: Machine, now: float) -> str | None:
    """Why bids cannot run on ``machine`` now: its maintenance window has started (else None)."""
    start, end = machine.maint_start, machine.maint_end
    if start is None or end is None or not start <= now < end:
        return None
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(end))
    return (f"stopped for maintenance of machine {machine.id} until {until}; the instance resumes "
            "by itself when the maintenance ends")


def used_disk(session: Session, machine_id: int, instances: list[Instance]) -> float:
    volumes = session.scalars(_VOLUME_SIZES, {"machine": machine_id})
    return sum(i.disk_space for i in instances) + sum(volumes)


def refresh_machine(session: Session, machine: Machine) -> tuple[Holdings, list[Instance]]:
    """Re-allocate a machine after any change: decide which bids run, recount its used disk, and
    switch its asks on and off. Returns the holdings and the instances whose ``outbid`` changed
    (the runtime must act on those)."""
    instances, leftovers = holding_instances(session, machine.id)
    lingering = {g for inst in leftovers if still_holds_gpus(inst) for g in gpu_list(inst.gpus)}
    holdings, changed = allocate(instances, lingering, maintenance_reason(machine, time.time()))
    disk_used = used_disk(session, machine.id, instances)

    bid_held = set(holdings.bids)
    offerable = [g for g in range(machine.num_gpus) if g not in holdings.on_demand]
    offerable.sort(key=lambda g: (g in bid_held, g))
    wanted: set[tuple[str, str]] = set()
    if machine.listed:
        for size in bundle_sizes(len(offerable), machine.min_chunk or 1):
            wanted.add((GPU, gpu_text(offerable[:size])))
        if machine.disk_space - disk_used > 0:
            wanted.add((VOLUME, ""))

    existing = {(a.kind, a.gpus): a for a in session.execute(_ASKS, {"machine": machine.id})}
    switched = [{"ask": a.id, "on": key in wanted} for key, a in existing.items()
                if a.active != (key in wanted)]
    if switched:  # one statement for all of them
        session.execute(_SWITCH_ASKS, switched)
    if machine.disk_used != disk_used:
        session.execute(_MACHINE_DISK, {"machine": machine.id, "used": disk_used})
    new = [{"machine_id": machine.id, "kind": kind, "gpus": gpus, "num_gpus": len(gpu_list(gpus)),
            "active": True} for kind, gpus in sorted(wanted - set(existing))]
    if new:  # one Core statement for all of them (nothing here needs their ids or objects)
        session.execute(_NEW_ASKS, new)
    # what the session holds of them says what was written (without writing it again)
    set_committed_value(machine, "disk_used", disk_used)
    for change in switched:
        held = session.identity_map.get(identity_key(Ask, change["ask"]))
        if held is not None:
            set_committed_value(held, "active", change["on"])
    return holdings, changed
