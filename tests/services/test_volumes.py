"""Volume rules: create from a volume offer, list, delete, and volumes at instance creation."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpuyard.errors import Conflict, InvalidInput, NotFound
from gpuyard.services.accounts.users import create_user
from gpuyard.services.market.allocation import refresh_machine
from gpuyard.services.rentals import volumes as svc
from gpuyard.store.db import transaction
from gpuyard.store.models import Ask, Instance, Machine, User, Volume
from gpuyard.wire.base import parse
from gpuyard.wire.types import to_id
from gpuyard.wire.volumes import VolumeCreate, VolumeLaunch


def create_volume(session: Session, user: User, body: Any) -> dict[str, Any]:
    """The service's create, with the body checked as the API checks it."""
    return svc.create_volume(session, user, parse(VolumeCreate, body))


def for_launch(session: Session, user: User, info: Any, machine: Machine, **kw: Any):
    return svc.for_launch(session, user, parse(VolumeLaunch, info), machine, **kw)


def add_machine(session: Session, hostname: str, disk: float = 100.0, **kw: Any) -> Machine:
    now = time.time()
    fields: dict[str, Any] = dict(
        hostname=hostname, gpu_name="RTX 4090", num_gpus=2, gpu_ram=24.0, cpu_cores=16,
        cpu_ram=64.0, disk_space=disk, inet_down=900.0, inet_up=800.0, dph_per_gpu=0.4,
        min_bid_per_gpu=0.1, storage_cost=0.15, reliability=0.99, geolocation="SE",
        specs={"disk_name": "Samsung 990", "driver_version": "550.54.15"},
        created_at=now, updated_at=now,
    )
    fields.update(kw)
    machine = Machine(**fields)
    session.add(machine)
    session.flush()
    refresh_machine(session, machine)
    return machine


def volume_ask(session: Session, machine: Machine) -> Ask:
    return session.scalars(select(Ask).where(Ask.machine_id == machine.id, Ask.kind == "volume")).one()


def gpu_ask(session: Session, machine: Machine) -> Ask:
    return session.scalars(
        select(Ask).where(Ask.machine_id == machine.id, Ask.kind == "gpu").order_by(Ask.id)
    ).first()


def add_instance(
    session: Session, owner: User, machine: Machine, volume: Volume | None = None, disk: float = 10.0
) -> Instance:
    now = time.time()
    inst = Instance(
        owner_id=owner.id, machine_id=machine.id, gpus="0", num_gpus=1, dph_base=0.4,
        storage_cost=machine.storage_cost, image="ubuntu", tag="22.04", disk_space=disk,
        runtime="simulated", start_date=now, created_at=now, updated_at=now,
        volume_id=volume.id if volume else None, volume_mount="/data" if volume else None,
    )
    session.add(inst)
    session.flush()
    refresh_machine(session, machine)
    return inst


@pytest.fixture
def db(app):
    """A session in one transaction, committed at the end of the test."""
    with transaction(app.state.sessions) as session:
        yield session


@pytest.fixture
def users(db: Session) -> tuple[User, User]:
    alice, _ = create_user(db, "alice")
    bob, _ = create_user(db, "bob")
    return alice, bob


def free(machine: Machine) -> float:
    return machine.disk_space - machine.disk_used


# ---------------------------------------------------------------- create


def test_create_default_size_and_row(db, users):
    alice, _ = users
    m = add_machine(db, "m1", disk=100)
    ask = volume_ask(db, m)
    row = create_volume(db, alice, {"id": ask.id, "name": "data"})
    assert row["disk_space"] == 15 and row["machine_id"] == m.id
    assert row["name"] == row["label"] == "data"
    assert row["status"] == "available" and row["instances"] == [] and row["mount_path"] is None
    assert row["storage_cost"] == 0.15 and row["cluster_id"] is None
    assert row["disk_name"] == "Samsung 990" and row["driver_version"] == "550.54.15"
    assert row["verification"] == "verified" and row["reliability2"] == 0.99
    assert isinstance(row["start_date"], float)
    assert m.disk_used == 15 and free(m) == 85


def test_create_size_limits(db, users):
    alice, _ = users
    m = add_machine(db, "m1", disk=40)
    ask = volume_ask(db, m)
    row = create_volume(db, alice, {"id": ask.id, "size": 40})
    assert row["disk_space"] == 40
    assert not volume_ask(db, m).active  # the whole disk is taken: no volume offer
    m2 = add_machine(db, "m2", disk=40)
    with pytest.raises(InvalidInput, match="at most 40 GB"):
        create_volume(db, alice, {"id": volume_ask(db, m2).id, "size": 41})


@pytest.mark.parametrize(
    "body, match",
    [
        ({"id": "ASK", "size": 0}, "positive"),
        ({"id": "ASK", "size": -3}, "positive"),
        ({"id": "ASK", "size": "10"}, "number of GB"),
        ({"id": "ASK", "size": True}, "number of GB"),
        ({"id": "ASK", "size": float("nan")}, "number of GB"),
        ({"size": 10}, "id is required"),
        ({"id": "12", "size": 10}, "integer id"),
        ({"id": 1.5}, "integer id"),
        ({"id": "ASK", "name": 5}, "name must be a string"),
        ({"id": "ASK", "colour": "red"}, "unknown create-volume key"),
    ],
)
def test_create_rejects_bad_input(db, users, body, match):
    alice, _ = users
    m = add_machine(db, "m1")
    body = {k: (volume_ask(db, m).id if v == "ASK" else v) for k, v in body.items()}
    with pytest.raises(InvalidInput, match=match):
        create_volume(db, alice, body)
    assert db.scalar(select(func.count(Volume.id))) == 0


def test_create_from_gpu_offer_or_unknown_offer(db, users):
    alice, _ = users
    m = add_machine(db, "m1")
    with pytest.raises(InvalidInput, match="search volumes"):
        create_volume(db, alice, {"id": gpu_ask(db, m).id})
    with pytest.raises(NotFound):
        create_volume(db, alice, {"id": 999999})


# ---------------------------------------------------------------- list


def test_list_own_only_and_types(db, users):
    alice, bob = users
    m = add_machine(db, "m1")
    ask = volume_ask(db, m).id
    mine = create_volume(db, alice, {"id": ask, "size": 10})
    create_volume(db, bob, {"id": ask, "size": 10})
    for kind in ("all_volume", "local_volume", None):
        rows = svc.list_volumes(db, alice, kind)
        assert [r["id"] for r in rows] == [mine["id"]]
        assert isinstance(rows[0]["start_date"], float)
    assert svc.list_volumes(db, alice, "network_volume") == []
    with pytest.raises(InvalidInput, match="type must be one of"):
        svc.list_volumes(db, alice, "all")


def test_list_shows_attachment(db, users):
    alice, _ = users
    m = add_machine(db, "m1")
    row = create_volume(db, alice, {"id": volume_ask(db, m).id})
    inst = add_instance(db, alice, m, db.get(Volume, row["id"]))
    [shown] = svc.list_volumes(db, alice)
    assert shown["status"] == "in_use" and shown["instances"] == [inst.id]
    assert shown["mount_path"] == "/data"
    inst.destroyed_at = time.time()
    [shown] = svc.list_volumes(db, alice)
    assert shown["status"] == "available" and shown["instances"] == []


# ---------------------------------------------------------------- delete


def test_delete_frees_disk(db, users):
    alice, _ = users
    m = add_machine(db, "m1", disk=50)
    row = create_volume(db, alice, {"id": volume_ask(db, m).id, "size": 50})
    assert not volume_ask(db, m).active
    gone = svc.delete_volume(db, alice, row["id"])
    assert gone["id"] == row["id"]
    assert volume_ask(db, m).active and free(m) == 50
    assert svc.list_volumes(db, alice) == []
    with pytest.raises(NotFound):  # deleting twice
        svc.delete_volume(db, alice, row["id"])


def test_delete_other_users_or_unknown_is_404(db, users):
    alice, bob = users
    m = add_machine(db, "m1")
    row = create_volume(db, alice, {"id": volume_ask(db, m).id})
    with pytest.raises(NotFound):
        svc.delete_volume(db, bob, row["id"])
    with pytest.raises(NotFound):
        svc.delete_volume(db, alice, 424242)
    with pytest.raises(InvalidInput):
        to_id("abc", "id (the volume)")
    assert db.get(Volume, row["id"]).deleted_at is None


def test_delete_in_use_is_409(db, users):
    alice, _ = users
    m = add_machine(db, "m1")
    row = create_volume(db, alice, {"id": volume_ask(db, m).id})
    inst = add_instance(db, alice, m, db.get(Volume, row["id"]))
    with pytest.raises(Conflict, match=f"destroy instance {inst.id} first"):
        svc.delete_volume(db, alice, row["id"])
    inst.destroyed_at = time.time()  # the volume outlives its instance
    svc.delete_volume(db, alice, row["id"])


# ---------------------------------------------------------------- instance creation


def test_for_launch_create(db, users):
    alice, _ = users
    m = add_machine(db, "m1")
    info = {"mount_path": "root/vol", "create_new": True, "volume_id": volume_ask(db, m).id,
            "name": "N", "size": 20}
    volume, mount = for_launch(db, alice, info, m)
    assert mount == "/root/vol"
    assert volume.machine_id == m.id and volume.size == 20 and volume.name == "N"
    assert volume.owner_id == alice.id and volume.id is not None
    default, _ = for_launch(
        db, alice, {"mount_path": "/v", "create_new": True, "volume_id": volume_ask(db, m).id}, m
    )
    assert default.size == 15


def test_for_launch_link(db, users):
    alice, _ = users
    m = add_machine(db, "m1")
    row = create_volume(db, alice, {"id": volume_ask(db, m).id})
    volume, mount = for_launch(
        db, alice, {"mount_path": "/data/", "create_new": False, "volume_id": row["id"]}, m
    )
    assert volume.id == row["id"] and mount == "/data"
    inst = add_instance(db, alice, m, volume)
    assert svc.instance_volume_info(db, inst) == [
        {"id": row["id"], "name": None, "mount_path": "/data", "avail_space": 15.0,
         "total_space": 15.0}
    ]
    assert svc.instance_volume_info(db, add_instance(db, alice, m)) == []


def test_for_launch_same_machine(db, users):
    alice, _ = users
    m1, m2 = add_machine(db, "m1"), add_machine(db, "m2")
    with pytest.raises(InvalidInput, match=f"on machine {m2.id}.*machine {m1.id}.*machine_id={m1.id}"):
        for_launch(db, alice, {"mount_path": "/v", "create_new": True,
                                   "volume_id": volume_ask(db, m2).id}, m1)
    row = create_volume(db, alice, {"id": volume_ask(db, m2).id})
    with pytest.raises(InvalidInput, match=f"volume {row['id']} is on machine {m2.id}"):
        for_launch(db, alice, {"mount_path": "/v", "create_new": False, "volume_id": row["id"]}, m1)


def test_for_launch_in_use_and_not_mine(db, users):
    alice, bob = users
    m = add_machine(db, "m1")
    row = create_volume(db, alice, {"id": volume_ask(db, m).id})
    link = {"mount_path": "/v", "create_new": False, "volume_id": row["id"]}
    inst = add_instance(db, alice, m, db.get(Volume, row["id"]))
    with pytest.raises(Conflict, match=f"instance {inst.id}"):
        for_launch(db, alice, link, m)
    with pytest.raises(NotFound):
        for_launch(db, bob, link, m)
    inst.destroyed_at = time.time()
    svc.delete_volume(db, alice, row["id"])
    with pytest.raises(NotFound):
        for_launch(db, alice, link, m)


def test_for_launch_size_over_free_disk(db, users):
    alice, _ = users
    m = add_machine(db, "m1", disk=30)
    add_instance(db, alice, m, disk=20)
    info = {"mount_path": "/v", "create_new": True, "volume_id": volume_ask(db, m).id, "size": 15}
    with pytest.raises(InvalidInput, match="at most 10 GB"):
        for_launch(db, alice, info, m)
    with pytest.raises(InvalidInput, match="besides the instance's 4 GB.*at most 6 GB"):
        for_launch(db, alice, {**info, "size": 7}, m, reserve=4)
    volume, _ = for_launch(db, alice, {**info, "size": 6}, m, reserve=4)
    assert volume.size == 6


@pytest.mark.parametrize(
    "info, match",
    [
        ("x", "must be an object"),
        ([], "must be an object"),
        ({"create_new": True, "volume_id": 1}, "mount_path is required"),
        ({"mount_path": 5, "create_new": True, "volume_id": 1}, "mount_path must be a string"),
        ({"mount_path": "/", "create_new": True, "volume_id": 1}, "not a valid Unix path"),
        ({"mount_path": "/a//b", "create_new": True, "volume_id": 1}, "not a valid Unix path"),
        ({"mount_path": "/a/../b", "create_new": True, "volume_id": 1}, "not a valid Unix path"),
        ({"mount_path": "/v", "volume_id": 1}, "create_new must be true"),
        ({"mount_path": "/v", "create_new": "yes", "volume_id": 1}, "create_new must be true"),
        ({"mount_path": "/v", "create_new": True}, "volume_id is required"),
        ({"mount_path": "/v", "create_new": True, "volume_id": "7"}, "must be an integer"),
        ({"mount_path": "/v", "create_new": True, "volume_id": "ASK", "size": 0}, "positive"),
        ({"mount_path": "/v", "create_new": True, "volume_id": "ASK", "size": "big"}, "number of GB"),
        ({"mount_path": "/v", "create_new": True, "volume_id": "ASK", "name": 3}, "must be a string"),
        ({"mount_path": "/v", "create_new": False, "volume_id": 1, "size": 5}, "only applies"),
        ({"mount_path": "/v", "create_new": True, "volume_id": "ASK", "ro": 1}, "unknown volume_info"),
    ],
)
def test_for_launch_validation(db, users, info, match):
    alice, _ = users
    m = add_machine(db, "m1")
    if isinstance(info, dict):
        info = {k: (volume_ask(db, m).id if v == "ASK" else v) for k, v in info.items()}
    with pytest.raises(InvalidInput, match=match):
        for_launch(db, alice, info, m)
    assert db.scalar(select(func.count(Volume.id))) == 0


def test_for_launch_from_gpu_offer(db, users):
    alice, _ = users
    m = add_machine(db, "m1")
    info = {"mount_path": "/v", "create_new": True, "volume_id": gpu_ask(db, m).id}
    with pytest.raises(InvalidInput, match="search volumes"):
        for_launch(db, alice, info, m)
