"""Instance rules: renting an offer (atomic, with bids and preemption), and every action on an
instance afterwards. Knows nothing of HTTP or runtimes: functions change rows inside the
caller's transaction and return which machines the reconciler must look at afterwards.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from gpuyard.errors import Conflict, InvalidInput, NotFound
from gpuyard.services.accounts import secrets
from gpuyard.services.catalog.templates import resolve_hash
from gpuyard.services.identifiers import require_id
from gpuyard.services.instance_access import jupyter
from gpuyard.services.ledger import billing, usage
from gpuyard.services.market import allocation, offers
from gpuyard.services.rentals import launch, volumes
from gpuyard.store.db import serialized
from gpuyard.store.models import Ask, Instance, Machine, Template, User
from gpuyard.template_flags import direct_ssh
from gpuyard.wire.instances import (
    BidChange,
    BulkDestroy,
    BulkState,
    InstanceEdit,
    InstanceUpdate,
    LaunchRequest,
)
from gpuyard.wire.offers import OfferQuery

RUNTYPE_PORTS = {"jupyter": "8080/tcp"}
SSH_PORT = "22/tcp"  # published for direct runtypes only (docs/access.md, "Direct SSH")


@dataclass
class Outcome:
    """What a change did: the instance it made or touched and the machines to reconcile."""

    instance_id: int | None = None
    machine_ids: set[int] = field(default_factory=set)
    # The instances whose runtime must act now (the ones changed, and bids the change preempted
    # or released); the background sweep would get to them too, just later.
    instance_ids: set[int] = field(default_factory=set)
    launch: dict[str, Any] | None = None
    msg: str = ""
    # Set when the runtime was already brought in line on the rental's own worker thread
    # (settle.settle_here): then what the machine refused, if it did (settle.settle_launch).
    settled: bool = False
    refusal: Exception | None = None
    # (actual_status, status_msg) as the rental's own transaction brought the new instance in
    # line (runtimes that act in memory: Reconciler.act_in); None when the settle does it.
    recorded: tuple[str, str | None] | None = None
    # The new instance's row, held while its transaction runs (the session keeps only the
    # objects someone holds: this spares act_in reading it again); rent_at_once drops it.
    made: Instance | None = field(default=None, repr=False)


# -- templates ---------------------------------------------------------------------------------
def _template(session: Session, user: User, request: LaunchRequest | InstanceUpdate) -> dict[str, Any] | None:
    """The template content a request names: by hash (anyone holding it), or by numeric id
    (its current version; yours or public)."""
    if request.template_hash_id is not None:
        return resolve_hash(session, request.template_hash_id)
    if request.template_id is not None:
        t = session.get(Template, request.template_id)
        if t is None or t.deleted_at is not None or (t.private and t.creator_id != user.id):
            raise NotFound(f"template {request.template_id} not found", "template_not_found")
        return resolve_hash(session, t.hash_id)
    return None


def prepare_launch(session: Session, user: User, request: LaunchRequest) -> dict[str, Any]:
    """The merged launch of a create-instance request (docs/merge-rules.md), computed in a read
    transaction before the rental's write transaction: template versions never change, so the
    merge needs no lock. ``secrets``: the names of the account's secrets the launch gets (a
    secret never overrides the request's or the template's env; values are read only when the
    container is created)."""
    merged = launch.merge(request, _template(session, user, request))
    merged["secrets"] = secrets.for_launch(session, user, merged["env_spec"])
    return merged


def prepare_rental(session: Session, user: User, request: LaunchRequest, ask_ids: list[int],
                   runtime: str) -> tuple[dict[str, Any], dict[int, Any]]:
    """:func:`prepare_launch`, and in the same read transaction what the image check of each
    offer of ``ask_ids`` needs (``settle.image_target``; none for a dry run)."""
    from gpuyard.services.rentals.settle import image_target

    merged = prepare_launch(session, user, request)
    if request.dry_run:
        return merged, {}
    return merged, {ask_id: image_target(session, ask_id, runtime) for ask_id in ask_ids}


@dataclass
class Deferred:
    """A rental :func:`rent_at_once` left for after the image check: the merged launch, and what
    the check asks (``settle.image_target``)."""

    merged: dict[str, Any]
    target: tuple[str, str | None, int] | None


def rent_at_once(session: Session, user: User, ask_id: int, request: LaunchRequest, runtime: str,
                 checks_images: Any, act_in: Any = None) -> Outcome | Deferred:
    """:func:`prepare_rental` and :func:`create_instance` in this one write transaction, when
    nothing has to happen between the two. When the offer's machine runs a runtime that rules on
    the image first (``checks_images(runtime name)``; docker), nothing is written: the merged
    launch comes back (:class:`Deferred`), for the caller to ask the engine with no transaction
    open, then rent (settle.rent_offer). Otherwise ``act_in(session, instance_id)``
    (Reconciler.act_in) brings the new instance's runtime in line in this transaction too."""
    # held, so that the session keeps them for the rental (it keeps only objects someone holds)
    _ask, _machine = offers.read_ask(session, ask_id)
    merged, targets = prepare_rental(session, user, request, [ask_id], runtime)
    target = targets.get(ask_id)
    if target is not None and checks_images(target[0]):
        return Deferred(merged, target)
    outcome = create_instance(session, user, ask_id, request, merged, runtime=runtime)
    if act_in is not None and outcome.instance_id is not None:
        outcome.recorded = act_in(session, outcome.instance_id)
        if outcome.recorded is not None:  # done: the settle has only the bids it preempted left
            outcome.instance_ids.discard(outcome.instance_id)
    outcome.made = None
    return outcome


def _count_launch(session: Session, template_id: int | None, now: float) -> None:
    if template_id is None:
        return
    t = session.get(Template, template_id, with_for_update=True)
    if t is not None:
        t.count_created = (t.count_created or 0) + 1
        t.recent_create_date = now


# -- ports -------------------------------------------------------------------------------------
def _container_ports(merged: dict[str, Any]) -> list[tuple[str, int | None]]:
    """(``"8000/tcp"``, wanted host port or None) for every port the instance publishes."""
    spec = merged["env_spec"]
    wanted = [(key, port.host) for key, port in spec.ports.items()]
    runtype = merged["runtype"] or ""
    for word, key in RUNTYPE_PORTS.items():
        if word in runtype and key not in spec.ports:
            wanted.append((key, None))
    if direct_ssh(runtype) and SSH_PORT not in spec.ports:
        wanted.append((SSH_PORT, None))
    return wanted


def _assign_ports(
    session: Session, machine: Machine, merged: dict[str, Any], keep: Instance | None = None
) -> dict[str, int]:
    """Host ports from the machine's direct port range: the asked-for host port when it is in
    the range and free, else the lowest free one. Ports that live instances hold are taken, and
    so are those of destroyed instances whose container is not removed yet. ``keep``: an instance
    being updated, whose current host ports stay with their container ports."""
    wanted = _container_ports(merged)
    if not wanted or machine.direct_port_count <= 0:
        return {}
    taken = allocation.reserved_ports(session, machine.id, keep.id if keep is not None else None)
    current = dict(keep.port_map or {}) if keep is not None else {}
    wanted = [(key, current.get(key, host)) for key, host in wanted]
    first, count = machine.direct_port_start, machine.direct_port_count
    pool = range(first, first + count)
    assigned: dict[str, int] = {}
    for key, host in wanted:
        if host is not None and host in pool and host not in taken:
            assigned[key] = host
            taken.add(host)
    for key, _host in wanted:
        if key in assigned:
            continue
        free = next((p for p in pool if p not in taken), None)
        if free is None:
            raise Conflict(
                f"machine {machine.id} has no free direct ports left for {key} (range "
                f"{first}-{first + count - 1}); publish fewer ports or pick another offer",
                "no_free_ports",
            )
        assigned[key] = free
        taken.add(free)
    return assigned


# -- renting -----------------------------------------------------------------------------------
def _check_offer(session: Session, ask_id: int, machine: Machine, merged: dict, force: bool) -> None:
    if not force and merged["extra_filters"]:
        failing = offers.failing_filters(
            session, ask_id, merged["extra_filters"], allocated_storage=merged["disk_space"]
        )
        if failing:
            raise InvalidInput(
                f"offer {ask_id} does not satisfy the launch's machine filters: "
                f"{'; '.join(failing)}. Pick an offer that does (search offers with the same "
                "filters), or pass force to launch anyway",
                "offer_filters_unmet",
            )
    free = machine.disk_space - machine.disk_used
    if merged["disk_space"] > free + 1e-9:
        raise InvalidInput(
            f"offer {ask_id} has {free:g} GB of free disk and the launch asks for "
            f"{merged['disk_space']:g} GB; ask for less disk or pick an offer with "
            f"disk_space>={merged['disk_space']:g}",
            "insufficient_disk",
        )


def _check_bid(session: Session, ask_id: int, machine: Machine, gpus: list[int], price: float) -> None:
    minimum = machine.min_bid_per_gpu * len(gpus)
    if price + 1e-12 < minimum:
        raise InvalidInput(
            f"a bid of ${price:g}/hour is below offer {ask_id}'s minimum of ${minimum:g}/hour "
            f"(min_bid = ${machine.min_bid_per_gpu:g} per GPU × {len(gpus)} GPU(s)); bid at "
            "least that much",
            "bid_too_low",
        )
    holders = [
        i for i in allocation.live_instances(session, machine.id)
        if i.is_bid and i.intended_status == "running" and not i.outbid
        and set(allocation.gpu_list(i.gpus)) & set(gpus)
    ]
    if holders:
        best = max(i.bid_price or 0.0 for i in holders)
        if price <= best:
            raise Conflict(
                f"outbid: GPUs of offer {ask_id} run a bid of ${best:g}/hour; bid more than "
                f"${best:g}/hour to take them, or pick another offer",
                "outbid",
            )


def create_instance(
    session: Session, user: User, ask_id: int, request: LaunchRequest, merged: dict[str, Any],
    *, runtime: str,
) -> Outcome:
    """Rent offer ``ask_id`` with the launch ``merged`` from ``request`` (VAST-WIRE §6.1;
    :func:`prepare_launch`)."""
    _read = _check_account(session, user, ask_id, request, merged)  # (held: no second read)
    ask, machine = offers.get_ask(session, ask_id, allocation.GPU)
    machine = allocation.lock_machine(session, machine.id)
    if not serialized(session):  # read it again under the machine's lock: a rival may just
        session.expire(ask)      # have rented it (SQLite's write lock excludes rivals already)
        ask, machine = offers.get_ask(session, ask_id, allocation.GPU)
    gpus = allocation.gpu_list(ask.gpus)
    _check_offer(session, ask_id, machine, merged, bool(request.force))
    if merged["is_bid"]:
        _check_bid(session, ask_id, machine, gpus, merged["bid_price"])

    now = time.time()
    # a dry run makes the instance to show it, then rolls it back
    with session.begin_nested() if request.dry_run else nullcontext() as savepoint:
        volume, mount = (None, None)
        if request.volume_info is not None:
            volume, mount = volumes.for_launch(
                session, user, request.volume_info, machine, reserve=merged["disk_space"]
            )
        inst = Instance(
            owner_id=user.id,
            machine_id=machine.id,
            ask_id=ask.id,
            gpus=ask.gpus,
            num_gpus=len(gpus),
            is_bid=merged["is_bid"],
            bid_price=merged["bid_price"],
            dph_base=machine.dph_per_gpu * len(gpus),
            storage_cost=machine.storage_cost,
            outbid=False,
            label=merged["label"],
            image=merged["image"],
            tag=merged["tag"],
            env=merged["env"],
            onstart=merged["onstart"],
            runtype=merged["runtype"],
            args=merged["args"],
            image_login=merged["image_login"],
            jupyter_token=jupyter.new_token(merged["runtype"]),
            disk_space=merged["disk_space"],
            extra_filters=merged["extra_filters"],
            launch={**{k: merged[k] for k in LAUNCH_EXTRAS}, "extra_env": merged["extra_env"],
                    "secrets": merged.get("secrets") or []},
            template_id=merged["template_id"],
            template_hash_id=merged["template_hash_id"],
            template_name=merged["template_name"],
            port_map=_assign_ports(session, machine, merged),
            volume_id=volume.id if volume else None,
            volume_mount=mount,
            intended_status=request.state,
            actual_status="loading" if request.state == "running" else "stopped",
            cur_state=request.state,
            status_msg="waiting for the machine" if request.state == "running" else None,
            generation=1,
            applied_generation=0,
            runtime=machine.runtime or runtime,
            start_date=now,
            created_at=now,
            updated_at=now,
        )
        session.add(inst)
        session.flush()
        _holdings, changed = allocation.refresh_machine(session, machine)
        preview = None
        if request.dry_run:
            from gpuyard.services.rentals.instance_rows import instance_row

            preview = _dry_run(instance_row(session, inst, machine), ask_id, merged)
            savepoint.rollback()
    if preview is not None:
        return Outcome(launch=preview)
    _count_launch(session, merged["template_id"], now)
    return Outcome(
        instance_id=inst.id,
        made=inst,
        machine_ids={machine.id},
        instance_ids={inst.id, *(i.id for i in changed)},
        msg=f"Instance {inst.id} created on machine {machine.id} ({len(gpus)}× {machine.gpu_name})"
        + (f"; {merged['disk_note']}" if merged.get("disk_note") else ""),
    )


def _check_account(session: Session, user: User, ask_id: Any, request: LaunchRequest,
                   merged: dict[str, Any]) -> tuple[Ask | None, Machine | None]:
    """Credit and quotas for renting ``ask_id`` (services/ledger/billing.py), under the account's lock
    and before the offer's availability: over a quota, no other offer would do either. Returns
    the offer and machine it read (the session keeps only objects someone holds)."""
    ask = session.get(Ask, ask_id) if isinstance(ask_id, int) else None
    machine = session.get(Machine, ask.machine_id) if ask is not None and ask.kind == allocation.GPU else None
    if ask is None or machine is None:
        billing.check(session, user)  # credit only: get_ask says what is wrong with the offer
        return ask, machine
    gpu_price = merged["bid_price"] if merged["is_bid"] else machine.dph_per_gpu * ask.num_gpus
    running = request.state == "running"
    info = request.volume_info
    billing.check(
        session, user,
        gpus=ask.num_gpus if running else 0,
        dph=gpu_price + usage.disk_dph(merged["disk_space"], machine.storage_cost) if running else 0.0,
        volume_gb=float(info.size if info.size is not None else volumes.DEFAULT_LAUNCH_SIZE)
        if info is not None and info.create_new else 0.0,
    )
    return ask, machine


LAUNCH_EXTRAS = (
    "docker_login_repo", "jupyter_dir", "use_jupyter_lab", "python_utf8", "lang_utf8", "extra",
)


def _dry_run(row: dict[str, Any], ask_id: int, merged: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "machine_id", "num_gpus", "gpu_name", "image", "tag", "image_uuid", "env", "extra_env",
        "onstart", "image_runtype", "args", "disk_space", "extra_filters", "template_id",
        "template_hash_id", "template_name", "is_bid", "bid_price", "dph_total", "label",
        "volume_info", "ports", "intended_status",
    )
    preview = {k: row.get(k) for k in keys}
    preview["offer_id"] = ask_id
    preview["runtype"] = merged["runtype"]
    preview["secrets"] = secrets.masked(merged.get("secrets") or [])  # names only, values masked
    return preview


# -- acting on an instance ---------------------------------------------------------------------
def owned(session: Session, user: User, ref: Any, *, lock: bool = True) -> Instance:
    """The caller's live instance ``ref``; anyone else's (or a destroyed one) is not found."""
    instance_id = require_id(ref, "instance id")
    inst = session.get(Instance, instance_id, with_for_update=lock, populate_existing=True)
    if inst is None or inst.owner_id != user.id or inst.destroyed_at is not None:
        raise NotFound(
            f"instance {instance_id} not found among your instances (see 'show instances')",
            "instance_not_found",
        )
    return inst


def _refresh(session: Session, machine_ids: set[int]) -> set[int]:
    """Re-allocate machines; the ids of instances whose bid verdict changed."""
    changed: set[int] = set()
    for machine_id in sorted(machine_ids):
        _holdings, moved = allocation.refresh_machine(session, allocation.lock_machine(session, machine_id))
        changed.update(i.id for i in moved)
    return changed


def set_state(session: Session, user: User, refs: list[Any], state: str) -> Outcome:
    """Start (``"running"``) or stop (``"stopped"``) instances. Starting stopped ones needs
    credit and room in the quotas (services/ledger/billing.py)."""
    if state == "running":
        billing.lock_account(session, user)  # before the instances' locks
    targets = [owned(session, user, ref) for ref in refs]
    if state == "running":
        _check_start(session, user, [i for i in targets if i.intended_status != "running"])
    out = Outcome(machine_ids={i.machine_id for i in targets})
    for inst in targets:
        inst.intended_status = state
        inst.cur_state = state
        inst.updated_at = time.time()
        if state == "running":  # start it even if it had exited on its own
            inst.launch = {**(inst.launch or {}), "pending": "start"}
            inst.generation += 1
    out.instance_ids = {i.id for i in targets} | _refresh(session, out.machine_ids)
    word = "starting" if state == "running" else "stopping"
    out.msg = f"{word} instance(s) {', '.join(str(i.id) for i in targets)}"
    return out


def _check_start(session: Session, user: User, starting: list[Instance]) -> None:
    if starting:
        billing.check(session, user, gpus=sum(i.num_gpus for i in starting),
                      dph=sum(usage.instance_dph(i) for i in starting))


def set_state_bulk(session: Session, user: User, body: BulkState) -> Outcome:
    assert body.ids and body.state  # the model requires them
    return set_state(session, user, body.ids, body.state)


def label(session: Session, user: User, ref: Any, text: str | None) -> Outcome:
    inst = owned(session, user, ref)
    inst.label = text or None
    inst.updated_at = time.time()
    return Outcome(instance_id=inst.id, msg=f"instance {inst.id} labelled {text!r}")


def edit(session: Session, user: User, ref: Any, body: InstanceEdit) -> Outcome:
    """``PUT /instances/{id}/``: a state change and/or a label, as the official client sends."""
    out = Outcome()
    if "label" in body.given():
        out = label(session, user, ref, body.label)
    if body.state is not None:
        state = set_state(session, user, [ref], body.state)
        state.msg = f"{out.msg}; {state.msg}" if out.msg else state.msg
        out = state
    return out


def reboot(session: Session, user: User, ref: Any) -> Outcome:
    billing.lock_account(session, user)  # rebooting a stopped instance starts it
    inst = owned(session, user, ref)
    _check_start(session, user, [inst] if inst.intended_status != "running" else [])
    inst.launch = {**(inst.launch or {}), "pending": "restart"}
    inst.generation += 1
    inst.intended_status = inst.cur_state = "running"
    inst.updated_at = time.time()
    changed = _refresh(session, {inst.machine_id})
    return Outcome(instance_id=inst.id, machine_ids={inst.machine_id}, instance_ids={inst.id} | changed,
                   msg=f"rebooting instance {inst.id}")


def destroy(session: Session, user: User, refs: list[Any]) -> Outcome:
    targets = [owned(session, user, ref) for ref in refs]
    now = time.time()
    for inst in targets:
        inst.destroyed_at = now
        inst.intended_status = inst.cur_state = "stopped"
        inst.status_msg = "destroying"
        inst.updated_at = now
    out = Outcome(machine_ids={i.machine_id for i in targets})
    out.instance_ids = {i.id for i in targets} | _refresh(session, out.machine_ids)
    out.msg = f"destroying instance(s) {', '.join(str(i.id) for i in targets)}"
    return out


def destroy_bulk(session: Session, user: User, body: BulkDestroy) -> Outcome:
    assert body.instance_ids  # the model requires them
    return destroy(session, user, body.instance_ids)


def change_bid(session: Session, user: User, ref: Any, body: BidChange) -> Outcome:
    billing.lock_account(session, user)  # a higher bid counts against the $/hour quota
    inst = owned(session, user, ref)
    price = body.price
    assert price is not None  # the model requires it
    if not inst.is_bid:
        raise InvalidInput(
            f"instance {inst.id} is on-demand; only interruptible instances (created with a price) have a bid"
        )
    machine = allocation.lock_machine(session, inst.machine_id)
    minimum = machine.min_bid_per_gpu * inst.num_gpus
    if price + 1e-12 < minimum:
        raise InvalidInput(
            f"a bid of ${price:g}/hour is below the minimum of ${minimum:g}/hour for {inst.num_gpus} "
            f"GPU(s) on machine {machine.id}",
            "bid_too_low",
        )
    raise_by = price - usage.gpu_price(inst)
    if inst.intended_status == "running" and raise_by > 0:
        billing.check(session, user, dph=raise_by, needs_credit=False)
    inst.bid_price = price
    inst.updated_at = time.time()
    _holdings, moved = allocation.refresh_machine(session, machine)
    state = "outbid, waiting for its GPUs" if inst.outbid else "holding its GPUs"
    return Outcome(
        instance_id=inst.id, machine_ids={machine.id}, instance_ids={inst.id, *(i.id for i in moved)},
        msg=f"bid of instance {inst.id} is now ${price:g}/hour ({state})",
    )


def update_from_template(session: Session, user: User, ref: Any, body: InstanceUpdate) -> Outcome:
    """Re-merge an instance's launch from a template and/or new values (VAST-WIRE §6.7); the
    runtime then recreates it with the new configuration."""
    inst = owned(session, user, ref)
    if body.id not in (None, inst.id):
        raise InvalidInput(f"the body's id {body.id!r} is not the instance in the path ({inst.id})")
    request = body.launch()
    template = _template(session, user, body)
    args = None
    if template is None:  # the instance's own launch is the base
        template = {
            "image": inst.image, "tag": inst.tag, "env": inst.env, "onstart": inst.onstart,
            "runtype": inst.runtype, "args_str": None, "extra_filters": inst.extra_filters,
            "recommended_disk_space": inst.disk_space, "template_id": inst.template_id,
            "hash_id": inst.template_hash_id, "name": inst.template_name,
        }
        args = inst.args
    # the disk was rented with the machine; it stays
    merged = launch.merge(request, template, disk=inst.disk_space, args=args)
    machine = allocation.lock_machine(session, inst.machine_id)
    inst.port_map = _assign_ports(session, machine, merged, keep=inst)
    for key in ("image", "tag", "env", "onstart", "runtype", "args", "template_id", "template_hash_id",
                "template_name", "extra_filters"):
        setattr(inst, key, merged[key])
    inst.jupyter_token = inst.jupyter_token or jupyter.new_token(inst.runtype)
    inst.launch = {**(inst.launch or {}), "pending": "recreate", "extra_env": merged["extra_env"],
                   "secrets": secrets.for_launch(session, user, merged["env_spec"])}
    inst.generation += 1
    inst.updated_at = time.time()
    return Outcome(instance_id=inst.id, machine_ids={machine.id}, instance_ids={inst.id},
                   msg=f"instance {inst.id} updated; it restarts with {merged['image_uuid']}")


def owner_lookup(session: Session, user: User, ref: Any) -> Instance:
    return owned(session, user, ref, lock=False)


def machine_of(session: Session, inst: Instance) -> Machine:
    machine = session.get(Machine, inst.machine_id)
    assert machine is not None
    return machine

def launch_instance(session: Session, user: User, request: LaunchRequest, search: OfferQuery,
                    merged: dict[str, Any], *, runtime: str) -> Outcome:
    """``PUT /api/v0/launch_instance/`` (VAST-WIRE §4.3): search offers with ``search`` and rent
    the first one that takes the launch (in the search's order)."""
    candidates = offers.search_offers(session, user, search)
    if not candidates:
        raise NotFound("no offer matches the launch's query; widen it (see 'search offers')",
                       "no_offer")
    reasons: list[str] = []
    for offer in candidates:
        try:
            return create_instance(session, user, offer["id"], request, merged, runtime=runtime)
        except (Conflict, InvalidInput) as exc:
            if exc.code not in ("offer_unavailable", "offer_filters_unmet", "insufficient_disk",
                                "outbid", "no_free_ports", "bid_too_low"):
                raise
            reasons.append(f"offer {offer['id']}: {exc.msg}")
    raise Conflict("none of the matching offers could be rented: " + " | ".join(reasons[:5]),
                   "no_offer")
