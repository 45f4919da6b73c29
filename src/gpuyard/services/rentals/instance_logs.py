"""Instance logs: what a log request may ask for, the target it reads, and the snapshots the
``result_url`` flow serves (VAST-WIRE §6.6; execute's output is served the same way). Reading
the runtime happens outside, with no transaction open."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy.orm import Session

from gpuyard.errors import InvalidInput, NotFound, Unavailable
from gpuyard.runtimes.base import RuntimeError_
from gpuyard.services.rentals import instances as svc
from gpuyard.store.models import InstanceEvent, LogRequest, User

LOG_TTL = 600.0  # seconds a snapshot stays fetchable


def parse_tail(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        tail = int(str(value))
    except ValueError:
        raise InvalidInput(f"tail must be a number of lines, not {value!r}") from None
    if tail < 0:
        raise InvalidInput("tail must be 0 or more lines")
    return tail or None


def log_target(session: Session, user: User, instance_id: str, daemon: bool) -> dict[str, Any]:
    inst = svc.owner_lookup(session, user, instance_id)
    events = []
    if daemon:
        events = [
            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(e.at))} {e.text}"
            for e in session.query(InstanceEvent).filter_by(instance_id=inst.id).order_by(InstanceEvent.id)
        ]
    machine = svc.machine_of(session, inst)
    return {"id": inst.id, "runtime": inst.runtime, "ref": inst.runtime_ref, "events": events,
            "events_only": daemon, "endpoint": machine.docker_url}


def store_logs(session: Session, _user: User, instance_id: int, text: str) -> str:
    now = time.time()
    session.query(LogRequest).filter(LogRequest.created_at < now - LOG_TTL).delete()
    token = secrets.token_urlsafe(24)
    session.add(LogRequest(token=token, instance_id=instance_id, text=text, created_at=now))
    return token


def fetch_logs(session: Session, token: str) -> str:
    entry = session.get(LogRequest, token)
    if entry is None or entry.created_at < time.time() - LOG_TTL:
        raise NotFound("this result has expired (after 10 minutes) or never existed; request the "
                       "logs or execute the command again", "logs_not_found")
    return entry.text




def read_lines(reconciler: Any, target: dict[str, Any]) -> list[str]:
    """The lines a log request asked for: gpuyard's events for the instance (daemon logs) or
    what its runtime logged. Calls the runtime: run it with no transaction open. Logs that
    cannot be read are an error (503), not an empty or made-up text."""
    if target["events_only"]:
        return list(target["events"])
    if not target["ref"]:
        return []  # nothing runs yet: nothing was logged
    try:
        text = reconciler.runtime_for(target["runtime"], target["endpoint"]).logs(target["ref"], None)
    except RuntimeError_ as exc:
        raise Unavailable(
            f"cannot read the logs of instance {target['id']}: {exc.msg}. What gpuyard did with it "
            "is in its daemon log (logs --daemon-logs)",
            "logs_unavailable",
        ) from None
    return text.splitlines()


def pick(lines: list[str], needle: str | None = None, tail: int | None = None) -> str:
    """Lines containing ``needle``, the last ``tail`` of them, as text."""
    if needle:
        lines = [line for line in lines if needle in line]
    if tail:
        lines = lines[-tail:]
    return "\n".join(lines) + ("\n" if lines else "")
