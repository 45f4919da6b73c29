"""SSH keys (VAST-WIRE §13.1, §13.2): a user's account keys, keys attached to one instance, and
the lines that may log into an instance (:func:`authorized_keys`, asked by the SSH gateway on
every authentication and written into containers that run their own SSH server).

An instance accepts its owner's *current* account keys plus the keys attached to it. Nothing is
copied at launch: deleting an account key or detaching a key counts for the next connection.
A disabled account's instances accept no key.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpuyard import openssh_keys
from gpuyard.errors import Conflict, InvalidInput, NotFound
from gpuyard.store.models import Instance, InstanceSshKey, SshKey, User
from gpuyard.template_flags import direct_ssh

MAX_ACCOUNT_KEYS = 100
MAX_INSTANCE_KEYS = 100


# -- what logs in ----------------------------------------------------------------------------------
def authorized_keys(session: Session, instance_id: int) -> list[str]:
    """The OpenSSH public key lines (``type base64 [comment]``) that may log into instance
    ``instance_id``: its owner's current account keys, then the keys attached to it, each
    fingerprint once. ``[]`` for an unknown or destroyed instance, or a disabled owner."""
    row = session.execute(
        select(Instance.owner_id, Instance.destroyed_at, User.disabled_at)
        .join(User, User.id == Instance.owner_id).where(Instance.id == instance_id)
    ).first()
    if row is None or row.destroyed_at is not None or row.disabled_at is not None:
        return []
    account = session.execute(select(SshKey.fingerprint, SshKey.public_key)
                              .where(SshKey.user_id == row.owner_id).order_by(SshKey.id))
    attached = session.execute(select(InstanceSshKey.fingerprint, InstanceSshKey.public_key)
                               .where(InstanceSshKey.instance_id == instance_id)
                               .order_by(InstanceSshKey.id))
    lines: dict[str, str] = {}
    for fingerprint, line in [*account, *attached]:
        lines.setdefault(fingerprint, line)
    return list(lines.values())


def authorized_keys_file(lines: list[str]) -> str:
    """The text of an ``authorized_keys`` file holding ``lines``."""
    return "".join(f"{line}\n" for line in lines)


# -- account keys ----------------------------------------------------------------------------------
def key_row(key: SshKey) -> dict[str, Any]:
    algorithm, _, rest = key.public_key.partition(" ")
    return {"id": key.id, "user_id": key.user_id, "public_key": key.public_key, "key_type": algorithm,
            "comment": rest.partition(" ")[2], "fingerprint": key.fingerprint,
            "created_at": key.created_at}


def list_keys(session: Session, user: User) -> list[dict[str, Any]]:
    """The caller's account keys, oldest first."""
    return [key_row(k) for k in session.scalars(select(SshKey).where(SshKey.user_id == user.id)
                                                .order_by(SshKey.id))]


def _duplicate(key: openssh_keys.PublicKey, other_id: int) -> Conflict:
    return Conflict(f"this key ({key.fingerprint}) is already on your account as ssh key {other_id} "
                    "(see 'show ssh-keys')", "ssh_key_exists")


def _account_key(session: Session, user: User, key_id: int) -> SshKey:
    key = session.get(SshKey, key_id, with_for_update=True)
    if key is None or key.user_id != user.id:
        raise NotFound(f"you have no ssh key {key_id} (see 'show ssh-keys')", "ssh_key_not_found")
    return key


def create_key(session: Session, user: User, text: str) -> dict[str, Any]:
    """Add ``text`` (a public key, already checked at the edge) to the caller's account."""
    key = openssh_keys.parse(text)
    other = session.scalar(select(SshKey.id).where(SshKey.user_id == user.id,
                                                   SshKey.fingerprint == key.fingerprint))
    if other is not None:
        raise _duplicate(key, other)
    count = session.scalar(select(func.count()).select_from(SshKey).where(SshKey.user_id == user.id))
    if (count or 0) >= MAX_ACCOUNT_KEYS:
        raise InvalidInput(f"you have {count} ssh keys, the most an account may keep; delete one first "
                           "('delete ssh-key ID')", "too_many_ssh_keys")
    row = SshKey(user_id=user.id, public_key=key.line, fingerprint=key.fingerprint,
                 created_at=time.time())
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # added by a concurrent request meanwhile
        raise Conflict(f"this key ({key.fingerprint}) is already on your account (see 'show ssh-keys')",
                       "ssh_key_exists") from None
    return {"success": True, "msg": f"ssh key {row.id} added ({key.fingerprint}); it logs into all "
                                    "your instances from the next connection on",
            "key": key_row(row)}


def update_key(session: Session, user: User, key_id: int, text: str) -> dict[str, Any]:
    """Replace the text of the caller's account key ``key_id``."""
    row = _account_key(session, user, key_id)
    key = openssh_keys.parse(text)
    other = session.scalar(select(SshKey.id).where(SshKey.user_id == user.id,
                                                   SshKey.fingerprint == key.fingerprint,
                                                   SshKey.id != row.id))
    if other is not None:
        raise _duplicate(key, other)
    try:
        with session.begin_nested():
            row.public_key, row.fingerprint = key.line, key.fingerprint
    except IntegrityError:  # the same key added by a concurrent request meanwhile
        raise Conflict(f"this key ({key.fingerprint}) is already on your account (see 'show ssh-keys')",
                       "ssh_key_exists") from None
    return {"success": True, "msg": f"ssh key {row.id} replaced ({key.fingerprint}); the old key no "
                                    "longer logs in", "key": key_row(row)}


def delete_key(session: Session, user: User, key_id: int) -> dict[str, Any]:
    row = _account_key(session, user, key_id)
    session.execute(delete(SshKey).where(SshKey.id == row.id))
    return {"success": True, "msg": f"ssh key {key_id} deleted ({row.fingerprint}); it no longer logs "
                                    "into your instances"}


# -- keys attached to one instance -------------------------------------------------------------------
def attached_row(key: InstanceSshKey) -> dict[str, Any]:
    return {"id": key.id, "instance_id": key.instance_id, "public_key": key.public_key,
            "fingerprint": key.fingerprint, "created_at": key.created_at}


def _instance(session: Session, user: User, instance_id: int) -> Instance:
    inst = session.get(Instance, instance_id, with_for_update=True)
    if inst is None or inst.owner_id != user.id or inst.destroyed_at is not None:
        raise NotFound(f"instance {instance_id} not found among your instances (see 'show instances')",
                       "instance_not_found")
    return inst


def attach_key(session: Session, user: User, instance_id: int, text: str) -> dict[str, Any]:
    """Let ``text`` (a public key) log into the caller's instance ``instance_id``."""
    inst = _instance(session, user, instance_id)
    key = openssh_keys.parse(text)
    other = session.scalar(select(InstanceSshKey.id).where(InstanceSshKey.instance_id == inst.id,
                                                           InstanceSshKey.fingerprint == key.fingerprint))
    if other is not None:
        raise Conflict(f"this key ({key.fingerprint}) is already attached to instance {inst.id} as "
                       f"key {other}", "ssh_key_attached")
    count = session.scalar(select(func.count()).select_from(InstanceSshKey)
                           .where(InstanceSshKey.instance_id == inst.id))
    if (count or 0) >= MAX_INSTANCE_KEYS:
        raise InvalidInput(f"instance {inst.id} has {count} attached keys, the most it may have; detach "
                           "one first", "too_many_ssh_keys")
    row = InstanceSshKey(instance_id=inst.id, public_key=key.line, fingerprint=key.fingerprint,
                         created_at=time.time())
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # attached by a concurrent request meanwhile
        raise Conflict(f"this key ({key.fingerprint}) is already attached to instance {inst.id}",
                       "ssh_key_attached") from None
    return {"success": True, "msg": f"key {key.fingerprint} attached to instance {inst.id} as key "
                                    f"{row.id} (detach it with 'detach ssh {inst.id} {row.id}')",
            "key": attached_row(row)}


def detach_key(session: Session, user: User, instance_id: int, key_id: int) -> dict[str, Any]:
    inst = _instance(session, user, instance_id)
    row = session.get(InstanceSshKey, key_id, with_for_update=True)
    if row is None or row.instance_id != inst.id:
        raise NotFound(f"no key {key_id} is attached to instance {inst.id}. Account keys ('show "
                       "ssh-keys') log into all your instances: remove one with 'delete ssh-key ID'",
                       "ssh_key_not_found")
    session.execute(delete(InstanceSshKey).where(InstanceSshKey.id == row.id))
    return {"success": True, "msg": f"key {key_id} ({row.fingerprint}) detached from instance {inst.id}"}


def direct_instances(session: Session, user: User, instance_id: int | None = None) -> list[int]:
    """The ids of the user's running instances with a direct-SSH runtype (``instance_id``: that
    one only): the containers whose ``authorized_keys`` follow the keys."""
    stmt = select(Instance.id, Instance.runtype).where(
        Instance.owner_id == user.id, Instance.destroyed_at.is_(None), Instance.actual_status == "running")
    if instance_id is not None:
        stmt = stmt.where(Instance.id == instance_id)
    return [iid for iid, runtype in session.execute(stmt.order_by(Instance.id)) if direct_ssh(runtype)]
