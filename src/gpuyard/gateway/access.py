"""Who may enter which instance through the gateway: read from the database on every
connection, so a destroyed or stopped instance, a detached key or a deleted account key is
refused from the next connection on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from gpuyard.store.models import Instance, Machine

KeySource = Callable[[Session, int], list[str]]


def account_and_instance_keys(session: Session, instance_id: int) -> list[str]:
    """The OpenSSH public key lines allowed into the instance (its owner's account keys and the
    keys attached to it)."""
    from gpuyard.services.access.ssh_keys import authorized_keys

    return authorized_keys(session, instance_id)


@dataclass
class Entry:
    """What a connection to one instance may do; ``refusal`` says why it may not."""

    instance_id: int
    refusal: str | None = None
    container: str | None = None
    docker_url: str | None = None
    keys: list[str] = field(default_factory=list)


def entry(session: Session, instance_id: int, default_docker_url: str | None,
          keys: KeySource) -> Entry:
    inst = session.get(Instance, instance_id)
    if inst is None or inst.destroyed_at is not None:
        return Entry(instance_id, f"instance {instance_id} was destroyed")
    if inst.runtime == "simulated":
        return Entry(instance_id, "simulated instance: no shell")
    if inst.actual_status != "running" or inst.intended_status != "running" or not inst.runtime_ref:
        state = inst.actual_status if inst.intended_status == "running" else inst.intended_status
        return Entry(instance_id, f"instance {instance_id} is not running ({state}): start it and "
                     "connect again once it runs")
    machine = session.get(Machine, inst.machine_id)
    url = (machine.docker_url if machine is not None else None) or default_docker_url
    if not url:
        return Entry(instance_id, f"instance {instance_id}: its machine has no Docker engine URL")
    if not url.startswith(("unix://", "tcp://", "http://")):
        return Entry(instance_id, f"instance {instance_id}: the gateway does not reach engines at "
                     f"{url.split('://')[0]}:// yet (unix:// and tcp:// only)")
    return Entry(instance_id, None, inst.runtime_ref, url, list(keys(session, instance_id)))
