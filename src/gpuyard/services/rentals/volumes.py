"""Local volumes: disk on one machine, owned by one user, created from a volume offer (an ``Ask``
of kind "volume") or at instance creation, and attached to at most one live instance at a time.

Volumes outlive instances and never move: an instance can only mount a volume of its own
machine. Every function runs inside the caller's transaction and raises typed errors.
"""

from __future__ import annotations

import math
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpuyard.errors import Conflict, InvalidInput, NotFound
from gpuyard.services.ledger import billing
from gpuyard.services.market import offers
from gpuyard.services.market.allocation import (
    VOLUME,
    live_instances,
    lock_machine,
    refresh_machine,
    used_disk,
)
from gpuyard.store.models import Ask, Instance, Machine, User, Volume
from gpuyard.wire.volumes import TYPES, VolumeCreate, VolumeLaunch

#: GB of a volume created at launch without a size.
DEFAULT_LAUNCH_SIZE = 15

# ---------------------------------------------------------------- lookups


def _not_a_gpu_offer(ask: Ask | None) -> None:
    if ask is not None and ask.kind != VOLUME:
        raise InvalidInput(
            f"offer {ask.id} is a GPU offer, not a volume offer; use an id from 'search volumes'",
            "volume_offer_expected",
        )


def _get_ask(session: Session, ask_id: int) -> tuple[Ask, Machine]:
    """The active volume offer ``ask_id`` and its machine (the offer service's lookup). A GPU
    offer's id is answered here first, so that the message points to 'search volumes'."""
    _not_a_gpu_offer(session.get(Ask, ask_id))
    return offers.get_ask(session, ask_id, VOLUME)


def _own_volume(session: Session, user: User, volume_id: int) -> Volume:
    volume = session.get(Volume, volume_id)
    if volume is None or volume.owner_id != user.id or volume.deleted_at is not None:
        raise NotFound(
            f"volume {volume_id} not found among your volumes (see 'show volumes')",
            "volume_not_found",
        )
    return volume


def _attachments(session: Session, volume_ids: list[int]) -> dict[int, list[Instance]]:
    """Live instances using each volume, oldest first."""
    out: dict[int, list[Instance]] = {}
    if not volume_ids:
        return out
    rows = session.scalars(
        select(Instance)
        .where(Instance.volume_id.in_(volume_ids), Instance.destroyed_at.is_(None))
        .order_by(Instance.id)
    )
    for inst in rows:
        out.setdefault(inst.volume_id or 0, []).append(inst)
    return out


def free_disk(session: Session, machine: Machine) -> float:
    """GB of the machine's disk not taken by live instances and volumes, counted now."""
    return machine.disk_space - used_disk(session, machine.id, live_instances(session, machine.id))


def _fits(session: Session, machine: Machine, size: float, where: str, reserve: float = 0.0) -> None:
    """``size`` GB fit in the machine's free disk, ``reserve`` GB (an instance's disk) aside."""
    free = free_disk(session, machine) - reserve
    if size > free + 1e-9:
        raise InvalidInput(
            f"{where} {size:g} GB is more than machine {machine.id} has free ({max(free, 0):g} GB"
            + (f" besides the instance's {reserve:g} GB of disk" if reserve else "")
            + "); "
            f"choose a size of at most {max(math.floor(free), 0)} GB or another volume offer",
            "not_enough_disk",
        )


def _new_volume(user: User, machine: Machine, ask_id: int, size: float, name: str | None) -> Volume:
    return Volume(
        owner_id=user.id,
        machine_id=machine.id,
        ask_id=ask_id,
        name=name,
        size=size,
        storage_cost=machine.storage_cost,
        created_at=time.time(),
    )


# ---------------------------------------------------------------- rows


def volume_row(volume: Volume, machine: Machine, attached: list[Instance]) -> dict[str, Any]:
    specs = machine.specs or {}
    return {
        "id": volume.id,
        "machine_id": volume.machine_id,
        "host_id": machine.host_id,
        "disk_space": volume.size,
        "name": volume.name,
        "label": volume.name,
        "status": "in_use" if attached else "available",
        "storage_cost": volume.storage_cost,
        "start_date": volume.created_at,
        "disk_name": specs.get("disk_name", ""),
        "driver_version": str(specs.get("driver_version", "")),
        "inet_up": machine.inet_up,
        "inet_down": machine.inet_down,
        "reliability2": machine.reliability,
        "geolocation": machine.geolocation,
        "verification": "verified" if machine.verified else "unverified",
        "cluster_id": None,
        "instances": [i.id for i in attached],
        "mount_path": attached[0].volume_mount if attached else None,
    }


def _row(session: Session, volume: Volume) -> dict[str, Any]:
    machine = session.get(Machine, volume.machine_id)
    assert machine is not None
    return volume_row(volume, machine, _attachments(session, [volume.id]).get(volume.id, []))


# ---------------------------------------------------------------- the API's operations


def create_volume(session: Session, user: User, body: VolumeCreate) -> dict[str, Any]:
    """``PUT /api/v0/volumes/`` with ``{"size": GB, "id": volume offer id, "name"?}``; returns
    the new volume's row. Needs credit and room in the volume quota (services/ledger/billing.py)."""
    assert body.id is not None  # the model requires it
    billing.check(session, user, volume_gb=body.size, action="create a volume")  # the lock first
    ask, machine = _get_ask(session, body.id)
    machine = lock_machine(session, machine.id)
    _fits(session, machine, body.size, "size")
    volume = _new_volume(user, machine, ask.id, body.size, body.name)
    session.add(volume)
    session.flush()
    refresh_machine(session, machine)
    return volume_row(volume, machine, [])


def list_volumes(session: Session, user: User, type: Any = "all_volume") -> list[dict[str, Any]]:
    """The caller's volumes (``type`` all_volume, local_volume or network_volume), oldest first."""
    kind = "all_volume" if type is None else type
    if kind not in TYPES:
        raise InvalidInput(f"type must be one of {', '.join(TYPES)}, not {type!r}")
    if kind == "network_volume":
        return []  # only local volumes exist here
    volumes = list(
        session.scalars(
            select(Volume)
            .where(Volume.owner_id == user.id, Volume.deleted_at.is_(None))
            .order_by(Volume.id)
        )
    )
    machine_ids = {v.machine_id for v in volumes}
    machines = {
        m.id: m for m in session.scalars(select(Machine).where(Machine.id.in_(machine_ids)))
    } if machine_ids else {}
    attached = _attachments(session, [v.id for v in volumes])
    return [volume_row(v, machines[v.machine_id], attached.get(v.id, [])) for v in volumes]


def delete_volume(session: Session, user: User, vid: int) -> dict[str, Any]:
    """``DELETE /api/v0/volumes/?id=N``: frees the volume's disk; returns its last row."""
    volume = _own_volume(session, user, vid)
    machine = lock_machine(session, volume.machine_id)
    attached = _attachments(session, [vid]).get(vid, [])
    if attached:
        inst = attached[0]
        raise Conflict(
            f"volume {vid} is in use by instance {inst.id} (mounted at {inst.volume_mount}); "
            f"destroy instance {inst.id} first, then delete the volume",
            "volume_in_use",
        )
    row = volume_row(volume, machine, [])
    volume.deleted_at = time.time()
    session.flush()
    refresh_machine(session, machine)
    return row


# ---------------------------------------------------------------- instances


def for_launch(
    session: Session, user: User, info: VolumeLaunch, machine: Machine, *, reserve: float = 0.0
) -> tuple[Volume, str]:
    """The volume an instance being created on ``machine`` mounts, and its mount path.

    ``info`` (checked at the edge) creates a volume from a volume offer of this machine
    (``create_new`` true) or links one of the user's free volumes on this machine (a name
    renames it). The caller holds the machine's lock, sets ``Instance.volume_id``/
    ``volume_mount`` and calls ``refresh_machine`` afterwards (a new volume takes disk).
    ``reserve`` is disk the caller is about to take on the machine (the new instance's), so that
    both fit."""
    target = int(info.volume_id)
    if info.create_new:
        size = float(info.size if info.size is not None else DEFAULT_LAUNCH_SIZE)
        volume = _create_for_launch(session, user, machine, target, size, info.name, reserve)
    else:
        volume = _link_for_launch(session, user, machine, target)
        if info.name is not None:
            volume.name = info.name
    return volume, info.mount_path


def _create_for_launch(
    session: Session,
    user: User,
    machine: Machine,
    ask_id: int,
    size: float,
    name: str | None,
    reserve: float,
) -> Volume:
    ask, ask_machine = _get_ask(session, ask_id)
    if ask_machine.id != machine.id:
        raise InvalidInput(
            f"volume offer {ask_id} is on machine {ask_machine.id}, but the instance's offer is on "
            f"machine {machine.id}: a volume lives on its machine. Use a volume offer of machine "
            f"{machine.id} ('search volumes machine_id={machine.id}')",
            "volume_machine_mismatch",
        )
    _fits(session, machine, size, "volume_info.size", reserve)
    volume = _new_volume(user, machine, ask.id, size, name)
    session.add(volume)
    session.flush()
    return volume


def _link_for_launch(session: Session, user: User, machine: Machine, volume_id: int) -> Volume:
    volume = _own_volume(session, user, volume_id)
    if volume.machine_id != machine.id:
        raise InvalidInput(
            f"volume {volume_id} is on machine {volume.machine_id}, but the instance's offer is on "
            f"machine {machine.id}: a volume lives on its machine and can only be mounted there. "
            f"Rent an offer of machine {volume.machine_id} ('search offers machine_id="
            f"{volume.machine_id}') or create a new volume ('search volumes machine_id={machine.id}')",
            "volume_machine_mismatch",
        )
    attached = _attachments(session, [volume_id]).get(volume_id, [])
    if attached:
        raise Conflict(
            f"volume {volume_id} is in use by instance {attached[0].id}; a volume is mounted by one "
            f"instance at a time: destroy instance {attached[0].id} first or create a new volume",
            "volume_in_use",
        )
    return volume


def instance_volume_info(session: Session, instance: Instance) -> list[dict[str, Any]]:
    """What an instance row shows as ``volume_info``: ``[{id, name, mount_path, avail_space,
    total_space}]`` in GB, or ``[]`` without a volume."""
    if instance.volume_id is None:
        return []
    volume = session.get(Volume, instance.volume_id)
    if volume is None or volume.deleted_at is not None:
        return []
    return [
        {
            "id": volume.id,
            "name": volume.name,
            "mount_path": instance.volume_mount,
            "avail_space": volume.size,
            "total_space": volume.size,
        }
    ]
