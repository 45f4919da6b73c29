"""Engine heartbeats: the worker pings every machine's Docker engine; a machine whose engine
failed ``failures`` heartbeats in a row goes offline (its offers hidden, its instances
"unknown" with the time its engine stopped answering), and comes back online by itself at the
first heartbeat its engine answers (its instances are then reconciled again).

Pings run in a thread pool, each with its own short timeout (``DockerEngine.ping``), so one
slow or dead engine costs one thread for at most ``timeout`` seconds and never delays the
others' verdicts. Machines that share an engine URL share one ping. The simulated runtime has no
engine to ping: its machines are always online.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from gpuyard.reconciler import UNKNOWN, unreachable_msg
from gpuyard.runtimes.base import RuntimeError_
from gpuyard.store.db import transaction
from gpuyard.store.models import Instance, InstanceEvent, Machine

log = logging.getLogger("gpuyard.heartbeats")
MAX_PINGS = 32  # engines pinged at once


@dataclass(frozen=True)
class Beat:
    """What one heartbeat found: machine ids that went offline, and that came back."""

    offline: list[int]
    online: list[int]
    checked: int


def _ping(runtime: Any, timeout: float) -> tuple[str, float] | None:
    """None when the engine answered, else why not and since when it does not answer."""
    try:
        runtime.ping(timeout)
    except RuntimeError_ as exc:
        return exc.msg, getattr(exc, "since", None) or time.time()
    except Exception as exc:  # noqa: BLE001 - any failure is a failed heartbeat
        return f"{type(exc).__name__}: {exc}", time.time()
    return None


def check_engines(sessions: sessionmaker[Session], reconciler: Any, *, default_runtime: str,
                  failures: int = 3, timeout: float = 5.0, metrics: Any = None) -> Beat:
    """One heartbeat of every docker machine's engine (see the module's doc)."""
    docker = "docker"
    with transaction(sessions, write=False) as session:
        machines = session.execute(
            select(Machine.id, Machine.docker_url).where(or_(
                Machine.runtime == docker,
                Machine.runtime.is_(None) if default_runtime == docker else Machine.id.is_(None)))
        ).all()
    if not machines:
        return Beat([], [], 0)
    by_url: defaultdict[str | None, list[int]] = defaultdict(list)
    for machine_id, url in machines:
        by_url[url].append(machine_id)
    verdicts: dict[str | None, tuple[str, float] | None] = {}
    with ThreadPoolExecutor(min(MAX_PINGS, len(by_url)), thread_name_prefix="gpuyard-ping") as pool:
        futures = {}
        for url in by_url:
            try:
                runtime = reconciler.runtime_for(docker, url)
            except RuntimeError_ as exc:
                verdicts[url] = exc.msg, time.time()
                continue
            futures[url] = pool.submit(_ping, runtime, timeout)
        for url, future in futures.items():
            verdicts[url] = future.result()
    if metrics is not None:
        for problem in verdicts.values():
            if problem is not None:
                metrics.engine_errors.labels("heartbeat").inc()
    went_offline: list[int] = []
    came_back: list[int] = []
    now = time.time()
    with transaction(sessions) as session:
        for url, ids in by_url.items():
            verdict = verdicts.get(url)
            for machine_id in ids:
                machine = session.get(Machine, machine_id, with_for_update=True)
                if machine is None:
                    continue
                machine.engine_checked_at = now
                if verdict is None:
                    machine.engine_failures = 0
                    machine.engine_error = None
                    if not machine.engine_online:
                        machine.engine_online = True
                        came_back.append(machine_id)
                    continue
                problem, since = verdict
                machine.engine_failures += 1
                machine.engine_error = problem[:500]
                if machine.engine_online and machine.engine_failures >= failures:
                    machine.engine_online = False
                    went_offline.append(machine_id)
                    _instances_unknown(session, machine_id, since, problem)
    for machine_id in went_offline:
        log.warning("machine %s is offline: its engine does not answer", machine_id)
    for machine_id in came_back:
        log.info("machine %s is online again", machine_id)
    if came_back:
        reconciler.wake()
    return Beat(went_offline, came_back, len(by_url))


def _instances_unknown(session: Session, machine_id: int, since: float, problem: str) -> None:
    """The live instances of a machine that went offline read "unknown" (they may well still
    run), with when its engine stopped answering."""
    for inst in session.scalars(select(Instance).where(
            Instance.machine_id == machine_id, Instance.destroyed_at.is_(None),
            Instance.actual_status != UNKNOWN).with_for_update()):
        now = time.time()
        session.add(InstanceEvent(instance_id=inst.id, at=now,
                                  text=f"machine offline: {problem[:300]}"))
        session.add(InstanceEvent(instance_id=inst.id, at=now,
                                  text=f"{inst.actual_status} → {UNKNOWN}"))
        inst.actual_status = UNKNOWN
        inst.status_msg = unreachable_msg(since)
