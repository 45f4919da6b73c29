"""SSH keys: which key lines log into an instance (asked by the gateway on every login), and the
rules of account and attached keys."""

from __future__ import annotations

import time

import asyncssh
import pytest
from sqlalchemy.orm import Session

from gpuyard.errors import Conflict, InvalidInput, NotFound
from gpuyard.services.access import ssh_keys as svc
from gpuyard.services.accounts.users import create_user
from gpuyard.store.db import transaction
from gpuyard.store.models import Instance, Machine, User


def add_machine(session: Session, hostname: str) -> Machine:
    now = time.time()
    machine = Machine(hostname=hostname, gpu_name="RTX 4090", num_gpus=2, gpu_ram=24.0, cpu_cores=16,
                      cpu_ram=64.0, disk_space=100.0, inet_down=900.0, inet_up=800.0, dph_per_gpu=0.4,
                      min_bid_per_gpu=0.1, storage_cost=0.15, reliability=0.99, geolocation="SE",
                      specs={}, created_at=now, updated_at=now)
    session.add(machine)
    session.flush()
    return machine


def add_instance(session: Session, owner: User, machine: Machine) -> Instance:
    now = time.time()
    inst = Instance(owner_id=owner.id, machine_id=machine.id, gpus="0", num_gpus=1, dph_base=0.4,
                    storage_cost=0.15, image="ubuntu", tag="22.04", disk_space=10.0, runtime="simulated",
                    start_date=now, created_at=now, updated_at=now)
    session.add(inst)
    session.flush()
    return inst


def public(comment: str = "", kind: str = "ssh-ed25519", **kw) -> str:
    key = asyncssh.generate_private_key(kind, comment=comment or None, **kw)
    return key.export_public_key().decode().strip()


@pytest.fixture
def db(app):
    with transaction(app.state.sessions) as session:
        yield session


@pytest.fixture
def users(db: Session) -> tuple[User, User]:
    alice, _ = create_user(db, "alice")
    bob, _ = create_user(db, "bob")
    return alice, bob


@pytest.fixture
def machine(db: Session):
    return add_machine(db, "m1")


def test_an_instance_accepts_its_owners_current_keys_and_its_attached_ones(db, users, machine):
    alice, bob = users
    mine, other = add_instance(db, alice, machine), add_instance(db, alice, machine)
    assert svc.authorized_keys(db, mine.id) == []
    k1, k2, guest = public("alice@laptop"), public(), public("guest@x")
    first = svc.create_key(db, alice, k1)["key"]
    svc.create_key(db, alice, k2 + "\n")
    svc.create_key(db, bob, public("bob@x"))  # bob's keys open nothing of alice's
    attached = svc.attach_key(db, alice, mine.id, guest)["key"]
    assert svc.authorized_keys(db, mine.id) == [k1, k2, guest]
    assert svc.authorized_keys(db, other.id) == [k1, k2]  # attached to one instance only
    svc.delete_key(db, alice, first["id"])
    svc.detach_key(db, alice, mine.id, attached["id"])
    assert svc.authorized_keys(db, mine.id) == [k2]
    assert svc.authorized_keys_file([k2]) == k2 + "\n"


def test_no_keys_for_unknown_destroyed_or_disabled(db, users, machine):
    alice, _ = users
    inst = add_instance(db, alice, machine)
    svc.create_key(db, alice, public())
    assert svc.authorized_keys(db, 999999) == []
    alice.disabled_at = time.time()
    db.flush()
    assert svc.authorized_keys(db, inst.id) == []
    alice.disabled_at = None
    assert len(svc.authorized_keys(db, inst.id)) == 1
    db.get(Instance, inst.id).destroyed_at = time.time()
    db.flush()
    assert svc.authorized_keys(db, inst.id) == []


def test_a_key_attached_and_on_the_account_is_listed_once(db, users, machine):
    alice, _ = users
    inst = add_instance(db, alice, machine)
    key = public("x@y")
    svc.create_key(db, alice, key)
    svc.attach_key(db, alice, inst.id, key)
    assert svc.authorized_keys(db, inst.id) == [key]


def test_keys_are_normalised_with_their_fingerprint(db, users):
    alice, _ = users
    key = public("me@host")
    algorithm, body, comment = key.split()
    row = svc.create_key(db, alice, f"  {algorithm}   {body}  {comment}\n")["key"]
    assert row["public_key"] == key and row["key_type"] == "ssh-ed25519" and row["comment"] == "me@host"
    assert row["fingerprint"] == asyncssh.import_public_key(key).get_fingerprint("sha256")
    assert row["fingerprint"].startswith("SHA256:")
    assert [r["id"] for r in svc.list_keys(db, alice)] == [row["id"]]


def test_duplicates_are_refused(db, users, machine):
    alice, bob = users
    key = public()
    svc.create_key(db, alice, key)
    with pytest.raises(Conflict, match="already on your account"):
        svc.create_key(db, alice, key + " another comment")
    svc.create_key(db, bob, key)  # another account may hold the same key
    inst = add_instance(db, alice, machine)
    svc.attach_key(db, alice, inst.id, key)
    with pytest.raises(Conflict, match="already attached"):
        svc.attach_key(db, alice, inst.id, key)


def test_update_replaces_the_key(db, users):
    alice, _ = users
    old, new = public(), public()
    row = svc.create_key(db, alice, old)["key"]
    other = svc.create_key(db, alice, public())["key"]
    assert svc.update_key(db, alice, row["id"], new)["key"]["public_key"] == new
    with pytest.raises(Conflict):
        svc.update_key(db, alice, other["id"], new)


def test_others_keys_and_instances_are_not_found(db, users, machine):
    alice, bob = users
    row = svc.create_key(db, alice, public())["key"]
    inst = add_instance(db, alice, machine)
    attached = svc.attach_key(db, alice, inst.id, public())["key"]
    with pytest.raises(NotFound):
        svc.delete_key(db, bob, row["id"])
    with pytest.raises(NotFound):
        svc.update_key(db, bob, row["id"], public())
    with pytest.raises(NotFound):
        svc.attach_key(db, bob, inst.id, public())
    with pytest.raises(NotFound):
        svc.detach_key(db, bob, inst.id, attached["id"])
    with pytest.raises(NotFound, match="delete ssh-key"):
        svc.detach_key(db, alice, inst.id, attached["id"] + 100)


@pytest.mark.parametrize("text,words", [
    ("key.pub", "looks like a file name"),
    ("~/.ssh/id_ed25519.pub", "looks like a file name"),
    ("not a key at all", "not an OpenSSH public key"),
    ("ssh-ed25519 AAAA", "not an OpenSSH public key"),
    ("AAAAC3NzaC1lZDI1NTE5AAAAIBp/Z5LihtbRYBxxUZtgABJTBHsCC+lSzKE88UzO81UU", "only the key's base64 part"),
    ("", "required"),
])
def test_what_is_not_a_public_key_says_to_send_the_key_text(db, users, text, words):
    alice, _ = users
    with pytest.raises(InvalidInput, match=words) as caught:
        svc.create_key(db, alice, text)
    assert '"$(cat ~/.ssh/id_ed25519.pub)"' in caught.value.msg


def test_private_keys_weak_rsa_and_other_types_are_refused(db, users):
    alice, _ = users
    private = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    with pytest.raises(InvalidInput, match="PRIVATE key") as caught:
        svc.create_key(db, alice, private)
    assert caught.value.code == "private_key"
    with pytest.raises(InvalidInput, match="1024 bits"):
        svc.create_key(db, alice, public(kind="ssh-rsa", key_size=1024))
    svc.create_key(db, alice, public(kind="ssh-rsa", key_size=2048))
    svc.create_key(db, alice, public(kind="ecdsa-sha2-nistp256"))
    with pytest.raises(InvalidInput, match="one public key per request"):
        svc.create_key(db, alice, public() + "\n" + public())
    with pytest.raises(InvalidInput, match="not accepted"):
        svc.create_key(db, alice, "ssh-dss AAAAB3NzaC1kc3MAAACBAP")
