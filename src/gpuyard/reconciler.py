"""The reconciler: drives each instance's runtime toward what its row asks for.

Services only change rows (the intent). The reconciler reads a row in one short transaction,
calls the runtime with no transaction open, and records what the runtime reported in another
short transaction (docs/runtime.md); a runtime that keeps its instances in memory (simulated)
brings a new instance in line inside the rental's own transaction instead
(:meth:`Reconciler.act_in`). The API runs it for the machines a request touched before
answering, so a rental's preemptions are visible in its answer; a background thread also sweeps
every few hundred milliseconds (boot delays, failures, restarts of the server).

Several processes may run it on one PostgreSQL database (API replicas, workers): each one takes
the instance's lease (gpuyard/control/leases.py) before it calls the runtime, so exactly one acts
on an instance at a time. Calls go through a thread pool with a bound per engine
(:class:`EngineSlots`), so a slow or dead engine holds at most that many threads and never
stalls the other machines.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, event, insert, or_, select, true
from sqlalchemy.orm import Session, sessionmaker, undefer

from gpuyard.control.leases import Claim, InstanceLeases, LocalLeases
from gpuyard.envspec import env_from_pairs, parse_env
from gpuyard.runtimes.base import EngineUnreachable, LaunchSpec, Runtime, RuntimeError_, RuntimeState
from gpuyard.services.access import ssh_keys
from gpuyard.services.accounts import secrets
from gpuyard.services.market.allocation import gpu_list, lock_machine, refresh_machine, reserved_ports
from gpuyard.store.db import transaction
from gpuyard.store.models import Instance, InstanceEvent, InstanceLease, Machine, Volume
from gpuyard.template_flags import direct_ssh

log = logging.getLogger("gpuyard.reconciler")
RETRY_AFTER_FAILURE = 15.0
ORPHAN_MIN_AGE = 60.0  # a container younger than this may belong to a create in flight
FULL_SWEEP_EVERY = 10.0
PROBE_EVERY = 1.0  # an engine that does not answer is tried again this often (one instance)
PER_ENGINE = 4  # runtime calls in flight at once on one engine
THREADS = 16  # runtime calls in flight at once in all
UNKNOWN = "unknown"  # the actual status of an instance whose engine does not answer


def unreachable_msg(since: float) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
    return f"engine unreachable since {stamp}"


@dataclass(frozen=True)
class Snapshot:
    instance_id: int
    runtime: str
    ref: str | None
    destroyed: bool
    want_running: bool
    pending: str | None
    generation: int
    actual: str
    status_msg: str | None
    outbid_msg: str | None
    volume_id: int | None
    spec: LaunchSpec
    direct_ssh: bool = False
    secrets: tuple[str, ...] = ()  # the names of the account secrets its launch gets


def launch_spec(inst: Instance, machine: Machine, volume: Volume | None,
                reserved: frozenset[int] = frozenset()) -> LaunchSpec:
    """The runtime's spec of ``inst``; ``reserved``: host ports other instances of the machine
    hold (a runtime that finds a port taken moves it to a free one of the range, not to those)."""
    pairs = (inst.launch or {}).get("extra_env")
    # the pairs stored at launch: a sweep costs the same for a 10-byte env as for a 64 KiB one
    env = env_from_pairs(pairs) if pairs is not None else parse_env(inst.env, limit=None)
    return LaunchSpec(
        instance_id=inst.id,
        owner_id=inst.owner_id,
        machine_id=inst.machine_id,
        image=inst.image,
        tag=inst.tag,
        env=dict(env.variables),
        ports=dict(inst.port_map or {}),
        port_range=(machine.direct_port_start, machine.direct_port_count)
        if machine.direct_port_count > 0 else None,
        reserved_ports=reserved,
        options=tuple(env.options),
        onstart=inst.onstart,
        runtype=inst.runtype or "ssh",
        args=tuple(inst.args) if inst.args is not None else None,
        disk_gb=inst.disk_space,
        gpus=tuple(gpu_list(inst.gpus)),
        gpu_name=machine.gpu_name,
        image_login=inst.image_login,
        volume_ref=(volume.runtime_ref or f"gpuyard-vol{volume.id}-{uuid.uuid4().hex[:8]}")
        if volume else None,
        volume_mount=inst.volume_mount if volume else None,
        docker_url=machine.docker_url,
        gpu_runtime=(machine.specs or {}).get("gpu_runtime"),
        public_ip=machine.public_ipaddr or machine.hostname,
        jupyter_token=inst.jupyter_token,
        jupyter_dir=(inst.launch or {}).get("jupyter_dir"),
        jupyter_lab=bool((inst.launch or {}).get("use_jupyter_lab")),
    )


def _moved(snap: Snapshot, state: RuntimeState) -> bool:
    """Whether the runtime published the instance's ports on other host ports than its row says
    (a host port was taken on the machine)."""
    ports = state.ports
    return (ports is not None and not snap.destroyed and set(ports) == set(snap.spec.ports)
            and ports != snap.spec.ports)


def _needs_work():
    running = Instance.intended_status == "running"
    return or_(
        and_(Instance.destroyed_at.is_not(None), Instance.runtime_ref.is_not(None)),
        and_(
            Instance.destroyed_at.is_(None),
            or_(
                Instance.generation != Instance.applied_generation,
                Instance.actual_status.in_(("loading", UNKNOWN)),
                and_(running, ~Instance.outbid, Instance.actual_status.not_in(("running", "exited"))),
                and_(or_(~running, Instance.outbid), Instance.actual_status.in_(("running", "loading"))),
            ),
        ),
    )


EngineKey = tuple[str, str | None]
_NEW_EVENTS = insert(InstanceEvent.__table__)  # (Core: the ORM's bulk insert costs more than the rows)


def engine_key(runtime: str, endpoint: str | None, machine_id: int) -> EngineKey:
    """What one engine is, for the per-engine bound: a docker URL (machines may share one), or
    the machine itself for runtimes without one (the simulated runtime)."""
    return (runtime, endpoint) if runtime == "docker" else (runtime, f"machine:{machine_id}")


class EngineSlots:
    """A thread pool whose tasks are bounded per engine: an instance is queued once, and an
    engine has at most ``per_engine`` tasks in flight (:meth:`submit` says no beyond)."""

    def __init__(self, per_engine: int = PER_ENGINE, threads: int = THREADS):
        self.per_engine = per_engine
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="gpuyard-reconcile")
        self._busy: defaultdict[EngineKey, int] = defaultdict(int)
        self._queued: set[int] = set()
        self._lock = threading.Lock()

    def queued(self, instance_id: int) -> bool:
        with self._lock:
            return instance_id in self._queued

    def submit(self, key: EngineKey, instance_id: int, work: Callable[[], Any]) -> Future | None:
        with self._lock:
            if instance_id in self._queued or self._busy[key] >= self.per_engine:
                return None
            self._queued.add(instance_id)
            self._busy[key] += 1

        def run() -> Any:
            try:
                return work()
            finally:
                with self._lock:
                    self._queued.discard(instance_id)
                    self._busy[key] -= 1
                    if not self._busy[key]:
                        del self._busy[key]

        return self._pool.submit(run)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Reconciler:
    def __init__(self, sessions: sessionmaker[Session], runtimes: dict[str, Runtime],
                 poll_seconds: float = 0.25,
                 leases: InstanceLeases | LocalLeases | None = None,
                 metrics: Any = None, per_engine: int = PER_ENGINE, threads: int = THREADS):
        self.sessions = sessions
        self.runtimes = runtimes
        self.poll_seconds = poll_seconds
        self.leases = leases if leases is not None else LocalLeases()
        self.metrics = metrics  # gpuyard.metrics.Metrics (or None): lag, takeovers, engine errors
        self.slots = EngineSlots(per_engine, threads)
        self._first_seen: dict[int, float] = {}  # needing work since (monotonic), for the lag
        self._recheck: dict[int, EngineKey] = {}  # found out of line by a refresh, not queued yet
        self._locks: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        self._failed: dict[int, float] = {}
        # engines that did not answer: (runtime, endpoint) → when to try one of theirs again
        self._down: dict[tuple[str, str | None], float] = {}
        self._noted: set[int] = set()  # destroyed instances whose removal failure is in the log
        self._recorded = threading.local()  # what this thread's last reconcile wrote (recorded())
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Called on every wake (after a change in this process): the SSH gateway looks at new
        # and ended instances at once.
        self.on_wake: list = []
        self._thread: threading.Thread | None = None

    # -- one instance --------------------------------------------------------------------------
    def _lock(self, instance_id: int) -> threading.Lock:
        with self._locks_guard:
            return self._locks[instance_id]

    def _snapshot(self, instance_id: int) -> Snapshot | None:
        with transaction(self.sessions, write=False) as session:
            return self._snapshot_in(session, instance_id)

    @staticmethod
    def _snapshot_in(session: Session, instance_id: int) -> Snapshot | None:
        inst = session.get(Instance, instance_id, options=[undefer(Instance.image_login)])
        if inst is None:
            return None
        machine = session.get(Machine, inst.machine_id)
        volume = session.get(Volume, inst.volume_id) if inst.volume_id else None
        pending = None
        if inst.generation != inst.applied_generation:
            pending = (inst.launch or {}).get("pending")
        return Snapshot(
            instance_id=inst.id,
            runtime=inst.runtime,
            ref=inst.runtime_ref,
            destroyed=inst.destroyed_at is not None,
            want_running=inst.intended_status == "running" and not inst.outbid,
            pending=pending or ("create" if inst.applied_generation == 0 else None),
            generation=inst.generation,
            actual=inst.actual_status,
            status_msg=inst.status_msg,
            outbid_msg=inst.outbid_msg,
            volume_id=inst.volume_id,
            direct_ssh=inst.direct_ssh,
            secrets=tuple((inst.launch or {}).get("secrets") or ()),
            # the ports others hold matter only to an instance that publishes some (one query
            # fewer for every other reconcile)
            spec=launch_spec(inst, machine, volume,
                             frozenset(reserved_ports(session, inst.machine_id, inst.id))
                             if inst.port_map else frozenset()),
        )

    def runtime_for(self, name: str, endpoint: str | None = None) -> Runtime:
        """The runtime called ``name``; for one with several engines (docker), the one at
        ``endpoint`` (the machine's docker_url, else the runtime's default)."""
        runtime = self.runtimes.get(name)
        if runtime is None:
            raise RuntimeError_(
                f"the {name} runtime is not available on this server (available: "
                f"{', '.join(sorted(self.runtimes))}); start the server with --runtime {name}"
            )
        at = getattr(runtime, "at", None)
        return at(endpoint) if at is not None else runtime

    def checks_images(self, name: str) -> bool:
        """Whether a rental on a machine of the runtime called ``name`` goes through
        settle.check_image first: every runtime but one that keeps its instances in memory
        (simulated); docker's engines pull or refuse the image, and a runtime this server does
        not have is refused there."""
        return not getattr(self.runtimes.get(name), "in_memory", False)

    def reconcile(self, instance_id: int, keys_changed: bool = False) -> bool:
        """Bring the instance's runtime in line with its row, holding its lease; False when
        another process holds the lease (it acts on the instance now). ``keys_changed``: the keys
        that log into it changed, so a container running its own SSH server gets them now."""
        self._recorded.row = None
        with self._lock(instance_id):
            shared = isinstance(self.leases, InstanceLeases)
            with transaction(self.sessions, write=shared) as session:  # one round trip for both
                claim = self.leases.claim_in(session, instance_id)
                snap = self._snapshot_in(session, instance_id) if claim is not None else None
            if claim is None:
                return False
            self.leases.claimed(claim)
            busy: Callable[[], bool] | None = None
            released = False
            try:
                if snap is not None:
                    busy, released = self._reconcile(snap, claim, keys_changed)
            finally:
                if released:  # given back with the record
                    self.leases.forget(instance_id)
                elif busy is not None and busy():  # a pull or create goes on: keep the lease
                    self.leases.keep(instance_id, busy)
                else:
                    self.leases.release(instance_id)
            return True

    def _engine_error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.engine_errors.labels(kind).inc()

    def _reconcile(self, snap: Snapshot, claim: Claim,
                   keys_changed: bool = False) -> tuple[Callable[[], bool] | None, bool]:
        """One pass; returns what says whether the runtime still works for the instance (its
        lease is kept while it does), and whether the lease was given back with the record."""
        instance_id = snap.instance_id
        events: list[str] = []
        engine = (snap.runtime, snap.spec.docker_url)
        runtime: Any = None
        try:
            runtime = self.runtime_for(snap.runtime, snap.spec.docker_url)
            if claim.takeover and hasattr(runtime, "remove_strays"):
                removed = runtime.remove_strays(instance_id, snap.ref)
                if removed:
                    events.append(f"removed {len(removed)} container(s) a stopped gpuyard process "
                                  "left behind")
            if snap.destroyed:
                if snap.ref:
                    runtime.destroy(snap.ref)
                    events.append("removed from the machine")
                self._down.pop(engine, None)
                self._noted.discard(instance_id)
                self._record(snap, RuntimeState("stopped", "destroyed", None), events, clear_ref=True,
                             release=True)
                return None, True
            state = self._act(runtime, snap, events)
            state = self._direct_ssh(runtime, snap, state, events, keys_changed)
        except EngineUnreachable as exc:
            self._engine_error("unreachable")
            self._down[engine] = time.monotonic() + PROBE_EVERY
            self._record_unreachable(snap, exc)
            return None, False
        except RuntimeError_ as exc:
            self._record(snap, self._refused(snap, exc, events), events)
            return None, False
        except Exception as exc:  # a runtime bug must not kill the loop
            log.exception("reconciling instance %s failed", instance_id)
            self._engine_error("error")
            self._failed[instance_id] = time.monotonic()
            self._record(snap, RuntimeState("exited", f"error: {exc}", snap.ref), [f"error: {exc}"])
            return None, False
        self._failed.pop(instance_id, None)
        self._down.pop(engine, None)
        is_busy = getattr(runtime, "busy", None)
        ref = state.ref
        busy = (lambda: is_busy(ref)) if is_busy is not None and ref and is_busy(ref) else None
        self._record(snap, state, events, release=busy is None)
        return busy, busy is None

    def _refused(self, snap: Snapshot, exc: RuntimeError_, events: list[str]) -> RuntimeState:
        """What to record when the runtime refused to act on the instance: an error, in its
        status and its events (tried again after RETRY_AFTER_FAILURE)."""
        self._engine_error("error")
        self._failed[snap.instance_id] = time.monotonic()
        events.append(f"error: {exc.msg}")
        return RuntimeState("exited", f"error: {exc.msg}", snap.ref)

    def _record_unreachable(self, snap: Snapshot, exc: EngineUnreachable) -> None:
        """The engine did not answer: the instance reads "unknown" (not "exited": it may well
        still run), with the time the engine stopped answering; its ports, its reference and its
        pending changes stay, to be carried out when the engine answers again."""
        with transaction(self.sessions) as session:
            inst = session.get(Instance, snap.instance_id, with_for_update=True)
            if inst is None:
                return
            now = time.time()
            if inst.destroyed_at is not None:
                if snap.instance_id not in self._noted:  # said once, not at every retry
                    session.add(InstanceEvent(instance_id=inst.id, at=now,
                                              text=f"not removed yet: {exc.msg}"))
                    self._noted.add(snap.instance_id)
                return
            if inst.actual_status == UNKNOWN and (inst.status_msg or "").startswith("engine unreachable"):
                return  # since the first time
            session.add(InstanceEvent(instance_id=inst.id, at=now, text=f"error: {exc.msg}"))
            session.add(InstanceEvent(instance_id=inst.id, at=now,
                                      text=f"{inst.actual_status} → {UNKNOWN}"))
            inst.actual_status = UNKNOWN
            inst.status_msg = unreachable_msg(exc.since)

    def _act(self, runtime: Runtime, snap: Snapshot, events: list[str],
             session: Session | None = None) -> RuntimeState:
        ref = snap.ref
        state = runtime.status(ref) if ref else RuntimeState("missing", None, None)
        if snap.pending == "recreate" and ref:
            runtime.destroy(ref)
            events.append("recreating with the updated configuration")
            state, ref = RuntimeState("missing", None, None), None
        if state.status == "exited" and (state.msg or "").startswith("error") and snap.pending == "start":
            runtime.destroy(ref)  # it never ran: a start makes it again
            events.append("trying again after the error")
            state, ref = RuntimeState("missing", None, None), None
        if state.status == "missing":
            if not snap.want_running:
                return RuntimeState("stopped", None, None)
            if ref:
                events.append("the runtime lost the instance; creating it again")
            state = runtime.create(self._with_secrets(snap, session))
            events.append(f"created from {snap.spec.image_uuid}")
            return state
        if snap.want_running:
            if snap.pending == "restart":
                events.append("rebooting")
                return runtime.restart(ref)
            if state.status == "stopped" or (state.status == "exited" and snap.pending == "start"):
                events.append("starting")
                return runtime.start(ref)
            return state
        if state.status in ("running", "loading"):
            events.append("stopping" + (f" ({snap.outbid_msg})" if snap.outbid_msg else ""))
            return runtime.stop(ref)
        return state

    def _direct_ssh(self, runtime: Runtime, snap: Snapshot, state: RuntimeState, events: list[str],
                    keys_changed: bool) -> RuntimeState:
        """For a direct-SSH runtype on a runtime that can (docker): once the container runs (made,
        started or restarted: its SSH server is gone then), write its authorized keys and start
        the image's SSH server; again whenever the keys change. The verdict goes in the state."""
        install = getattr(runtime, "install_ssh", None)
        if (install is None or state.status != "running" or state.ref is None
                or not direct_ssh(snap.spec.runtype)):
            return state
        if snap.actual == "running" and snap.direct_ssh and not events and not keys_changed:
            return state  # set up already, and nothing restarted it
        with transaction(self.sessions, write=False) as session:
            keys = ssh_keys.authorized_keys_file(ssh_keys.authorized_keys(session, snap.instance_id))
        setup = install(state.ref, keys)
        if setup.server:
            if not snap.direct_ssh or events:
                events.append(f"direct SSH: {setup.server} listens on port 22")
            return replace(state, direct_ssh=True)
        if setup.msg == "not running":
            return state
        return replace(state, direct_ssh=False, msg=f"{state.msg}; {setup.msg}" if state.msg else setup.msg)

    def _with_secrets(self, snap: Snapshot, session: Session | None = None) -> LaunchSpec:
        """The owner's account secrets added to the env, read now, for the container about to be
        created (rows never hold their values); no transaction for a launch that gets none, and
        none of its own when ``session`` is given (:meth:`act_in`)."""
        names = secrets.wanted(snap.spec, snap.secrets)
        if not names:
            return snap.spec
        if session is not None:
            return secrets.with_secrets(session, snap.spec, names)
        with transaction(self.sessions, write=False) as fresh:
            return secrets.with_secrets(fresh, snap.spec, names)

    def _record(
        self, snap: Snapshot, state: RuntimeState, events: list[str], clear_ref: bool = False,
        release: bool = False,
    ) -> None:
        moved = _moved(snap, state)
        written = None
        with transaction(self.sessions) as session:
            machine = None
            if moved or (clear_ref and snap.ref):
                # the machine first (as a rental does): its port assignment reads port_map, and a
                # removed container gives back what its destroyed instance held
                machine = lock_machine(session, snap.spec.machine_id)
            inst = session.get(Instance, snap.instance_id, with_for_update=True)
            if release:
                self.leases.release_in(session, snap.instance_id)
            if inst is None:
                return
            written = self._apply(session, snap, state, events, inst, machine, clear_ref)
        self._recorded.row = written  # committed

    def _apply(self, session: Session, snap: Snapshot, state: RuntimeState, events: list[str],
               inst: Instance, machine: Machine | None, clear_ref: bool) -> tuple | None:
        """Write what the runtime reported on the (locked) row ``inst``, with its events; the
        machine (locked, or None) is re-allocated when a destroyed instance's container is gone.
        Returns (id, actual_status, status_msg) as written for a live instance, else None."""
        status = "stopped" if state.status == "missing" else state.status
        if status == "exited" and not snap.want_running and not (state.msg or "").startswith("error"):
            status = "stopped"  # it ended because it was stopped
        ports = state.ports
        now = time.time()
        if _moved(snap, state) and ports is not None and set(ports) == set(inst.port_map or {}):
            for key, port in sorted(ports.items()):
                old = (inst.port_map or {}).get(key)
                if old != port:
                    events.append(f"host port {old} for {key} is taken on the machine; "
                                  f"published on {port} instead")
            inst.port_map = dict(ports)
        if clear_ref:
            inst.runtime_ref = None
        elif state.ref is not None or snap.ref is not None:
            inst.runtime_ref = state.ref
        if inst.destroyed_at is None:
            if status != inst.actual_status:
                events.append(f"{inst.actual_status} → {status}")
            inst.actual_status = status
            if status != "running":
                inst.direct_ssh = False  # its SSH server (if any) does not run
            elif state.direct_ssh is not None:
                inst.direct_ssh = state.direct_ssh
            msg = state.msg
            if inst.outbid and status != "running":
                msg = inst.outbid_msg
            elif status == "stopped" and inst.intended_status == "stopped":
                msg = "stopped"
            inst.status_msg = msg
            inst.cur_state = "running" if status in ("running", "loading") else "stopped"
        if snap.volume_id and state.ref and snap.spec.volume_ref:
            volume = session.get(Volume, snap.volume_id)
            if volume is not None and volume.runtime_ref is None:
                volume.runtime_ref = snap.spec.volume_ref
        if inst.applied_generation < snap.generation:
            inst.applied_generation = snap.generation
        if status != snap.actual and UNKNOWN not in (snap.actual, status):
            inst.updated_at = now  # (an engine that did not answer changed nothing itself)
        if events:  # one statement for all of them
            session.execute(_NEW_EVENTS,
                            [{"instance_id": inst.id, "at": now, "text": text} for text in events])
        if machine is not None and clear_ref and inst.destroyed_at is not None:
            _holdings, changed = refresh_machine(session, machine)
            if changed:  # bids that can run again
                self.wake()
        if inst.destroyed_at is not None:
            return None
        session.flush()  # (the row's hooks may still change its status_msg)
        return (inst.id, inst.actual_status, inst.status_msg)

    def act_in(self, session: Session, instance_id: int) -> tuple[str, str | None] | None:
        """Bring an instance made in ``session``'s transaction (not committed yet) in line at
        once, in that transaction, when its runtime keeps its instances in memory (simulated):
        the rental and its first reconcile then cost one transaction. No other process can see
        the row before the commit, so no lease is taken; if the transaction rolls back, the
        runtime's instance is removed again. A refusal of the runtime is recorded as the
        reconcile records it (settle.failed_fast then undoes the rental). Returns
        (actual_status, status_msg) as written, or None when this was not done (another
        runtime: the usual settle after the commit does it)."""
        snap = self._snapshot_in(session, instance_id)
        runtime = self.runtimes.get(snap.runtime) if snap is not None else None
        if snap is None or not getattr(runtime, "in_memory", False):
            return None
        events: list[str] = []
        try:
            state = self._act(runtime, snap, events, session)
        except EngineUnreachable:
            return None  # (not from a runtime in memory) the settle records it as it does
        except RuntimeError_ as exc:  # refused: recorded here; the rental answers it
            state = self._refused(snap, exc, events)
        else:
            self._failed.pop(instance_id, None)
            if state.ref is not None and state.ref != snap.ref:  # undone if the rental is
                ref = state.ref
                event.listen(session, "after_rollback", lambda _s: runtime.destroy(ref), once=True)
        inst = session.get(Instance, instance_id)  # made by this transaction: ours, no lock
        written = self._apply(session, snap, state, events, inst, None, clear_ref=False)
        return (written[1], written[2]) if written is not None else None

    def recorded(self, instance_id: int) -> tuple[str, str | None] | None:
        """(actual_status, status_msg) as this thread's last :meth:`reconcile` wrote them, if it
        was of ``instance_id`` and wrote the row of a live instance; else None."""
        row = getattr(self._recorded, "row", None)
        return (row[1], row[2]) if row is not None and row[0] == instance_id else None

    # -- many ----------------------------------------------------------------------------------
    def due(self, everything: bool = False) -> list[tuple[int, EngineKey]]:
        """The instances that need work (all live ones with ``everything``), destroyed ones
        first, with their engine; machines whose engine is offline are left to the heartbeats."""
        with transaction(self.sessions, write=False) as session:
            stmt = select(Instance.id, Instance.runtime, Machine.docker_url, Instance.machine_id).join(
                Machine, Machine.id == Instance.machine_id)
            if everything:
                stmt = stmt.where(or_(Instance.destroyed_at.is_(None), Instance.runtime_ref.is_not(None)))
            else:  # (an instance another process holds the lease of is being worked on)
                leased = select(InstanceLease.instance_id).where(
                    InstanceLease.instance_id == Instance.id, InstanceLease.expires_at > time.time(),
                    InstanceLease.holder != self.leases.holder)
                stmt = stmt.where(_needs_work(), Machine.engine_online == true(), ~leased.exists())
            # destroyed ones first: an engine that answers again gets their leftovers removed
            # before anything else happens on it
            rows = session.execute(stmt.order_by(Instance.destroyed_at.is_(None), Instance.id))
            return [(i, engine_key(runtime, url, machine)) for i, runtime, url, machine in rows]

    def _runnable(self, instance_id: int, key: EngineKey, now: float) -> bool:
        failed = self._failed.get(instance_id)
        if failed is not None and now - failed < RETRY_AFTER_FAILURE:
            return False
        return self._may_try((key[0], None if (key[1] or "").startswith("machine:") else key[1]), now)

    def _submit(self, instance_id: int, key: EngineKey) -> Future | None:
        def work() -> bool:
            acted = self.reconcile(instance_id)
            seen = self._first_seen.pop(instance_id, None)
            if acted and seen is not None and self.metrics is not None:
                self.metrics.reconcile_lag.observe(time.monotonic() - seen)
            return acted

        return self.slots.submit(key, instance_id, work)

    def sweep(self, everything: bool = False) -> int:
        """Reconcile the instances that need it (all live ones with ``everything``), at most
        ``per_engine`` at a time on each engine, and wait for them; how many were tried."""
        rows = self.due(everything)
        if everything:
            self.collect_garbage()
        pending = [(i, key) for i, key in rows if self._runnable(i, key, time.monotonic())]
        futures: set[Future] = set()
        done = 0
        while pending or futures:
            left = []
            for instance_id, key in pending:
                future = self._submit(instance_id, key)
                if future is None:
                    left.append((instance_id, key))
                else:
                    futures.add(future)
                    done += 1
            pending = left
            if futures:
                finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    future.result()
        return done

    def dispatch(self) -> int:
        """The background sweep's step: queue the instances that need work and are not queued
        yet, within each engine's bound, without waiting for them; how many were queued."""
        started = time.monotonic()
        rows = self.due()
        now = time.monotonic()
        queued = 0
        for instance_id, key in rows:
            self._first_seen.setdefault(instance_id, now)
            if self.slots.queued(instance_id) or not self._runnable(instance_id, key, now):
                continue
            if self._lock(instance_id).locked():  # a request of this process is on it now
                continue
            if self._submit(instance_id, key) is not None:
                queued += 1
        self._queue_rechecks()
        if self.metrics is not None:
            self.metrics.sweep_seconds.observe(time.monotonic() - started)
            self.metrics.backlog.set(len(rows))
        return queued

    def refresh(self) -> int:
        """Compare every live instance's recorded status with what its engine reports, one call
        per engine (``states``), and queue those that differ (the background sweep queues those
        whose engine had no room); how many differed. Runtimes without ``states`` have every
        live instance checked one by one."""
        with transaction(self.sessions, write=False) as session:
            rows = session.execute(
                select(Instance.id, Instance.runtime, Machine.docker_url, Instance.machine_id,
                       Instance.runtime_ref, Instance.actual_status)
                .join(Machine, Machine.id == Instance.machine_id)
                .where(Instance.destroyed_at.is_(None), Machine.engine_online == true())
            ).all()
        groups: defaultdict[tuple[str, str | None], list[Any]] = defaultdict(list)
        for row in rows:
            groups[(row.runtime, row.docker_url)].append(row)
        found = 0
        for (name, endpoint), members in groups.items():
            try:
                runtime = self.runtime_for(name, endpoint)
                states = getattr(runtime, "states", None)
                seen = states([r.runtime_ref for r in members if r.runtime_ref]) if states else None
            except EngineUnreachable:
                self._engine_error("unreachable")
                continue  # the heartbeats take the machine offline
            except RuntimeError_:
                continue
            for r in members:
                if seen is not None and not _differs(r.runtime_ref, r.actual_status, seen):
                    continue
                self._recheck[r.id] = engine_key(name, endpoint, r.machine_id)
                found += 1
        self._queue_rechecks()
        return found

    def _queue_rechecks(self) -> None:
        """Queue the instances a refresh found out of line, as their engines have room (those
        without room stay for the next sweep)."""
        for instance_id, key in list(self._recheck.items()):
            if self.slots.queued(instance_id) or self._submit(instance_id, key) is not None:
                self._recheck.pop(instance_id, None)

    def _may_try(self, engine: tuple[str, str | None], now: float) -> bool:
        """Whether to call an engine now: always when it answered last time; once per
        PROBE_EVERY when it did not (the first call that gets an answer lets the rest go)."""
        until = self._down.get(engine)
        return until is None or now >= until

    # -- leftovers -----------------------------------------------------------------------------
    def collect_garbage(self, min_age: float = ORPHAN_MIN_AGE) -> None:
        """Remove what runtimes hold for nothing: containers of engines this server uses that no
        instance row names (made just before a crash, or whose row is gone), and the engine
        volumes of deleted volumes. A container is left alone while it is younger than
        ``min_age`` or while its live instance is leased (a process may be creating it now)."""
        with transaction(self.sessions, write=False) as session:
            refs = set(session.scalars(select(Instance.runtime_ref).where(Instance.runtime_ref.is_not(None))))
            live = set(session.scalars(select(Instance.id).where(Instance.destroyed_at.is_(None))))
            leased = set(session.scalars(select(InstanceLease.instance_id).where(
                InstanceLease.expires_at > time.time())))
            endpoints = set(session.scalars(
                select(Machine.docker_url).where(or_(Machine.runtime == "docker",
                                                     Machine.id.in_(select(Instance.machine_id).where(
                                                         Instance.runtime == "docker"))))
            ))
            dead_volumes = [
                (v.id, v.runtime_ref, m.docker_url, m.runtime)
                for v, m in session.execute(
                    select(Volume, Machine).join(Machine, Machine.id == Volume.machine_id).where(
                        Volume.deleted_at.is_not(None), Volume.runtime_ref.is_not(None)))
            ]
        for endpoint in endpoints:
            if not self._may_try(("docker", endpoint), time.monotonic()):
                continue
            try:
                engine = self.runtime_for("docker", endpoint)
            except RuntimeError_:
                continue
            containers = getattr(engine, "containers", None)
            if containers is None:
                continue
            try:
                found = containers()
            except RuntimeError_ as exc:
                log.warning("cannot list containers at %s: %s", endpoint, exc.msg)
                continue
            now = time.time()
            for item in found:
                name = item.name
                if name in refs or engine.busy(name) or now - item.created < min_age:
                    continue
                if item.instance_id in live and item.instance_id in leased:
                    continue  # its instance's lease holder may be creating it
                log.info("removing orphan container %s at %s", name, endpoint)
                try:
                    engine.destroy(name)
                except RuntimeError_ as exc:
                    log.warning("cannot remove orphan container %s: %s", name, exc.msg)
        for volume_id, ref, endpoint, runtime_name in dead_volumes:
            try:
                runtime = self.runtime_for(runtime_name or "docker", endpoint)
                remove = getattr(runtime, "remove_volume", None)
                if remove is not None:
                    remove(ref)
            except RuntimeError_ as exc:
                log.warning("cannot remove volume %s: %s", ref, exc.msg)
                continue
            with transaction(self.sessions) as session:
                volume = session.get(Volume, volume_id)
                if volume is not None:
                    volume.runtime_ref = None

    def logs(self, runtime_name: str, ref: str | None, tail: int | None,
             endpoint: str | None = None) -> str:
        if not ref:
            return ""
        try:
            return self.runtime_for(runtime_name, endpoint).logs(ref, tail)
        except RuntimeError_ as exc:
            return f"(logs unavailable: {exc.msg})\n"

    # -- background ----------------------------------------------------------------------------
    def wake(self) -> None:
        """Sweep now, and tell the listeners (:meth:`notify`)."""
        self._wake.set()
        self.notify()

    def notify(self) -> None:
        """Tell the listeners that instances changed in this process (the SSH gateway looks at
        new and ended instances), without a sweep."""
        for listener in self.on_wake:
            listener()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.dispatch()
            except Exception:  # the database may be briefly unavailable; try again
                log.exception("reconciler sweep failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="gpuyard-reconciler", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None


def _differs(ref: str | None, recorded: str, seen: dict[str, str]) -> bool:
    """Whether an instance's recorded status disagrees with its engine's (``seen``: ref → the
    engine's status of the instances it has)."""
    if recorded in ("loading", UNKNOWN):
        return True
    if ref is None:
        return recorded == "running"
    state = seen.get(ref)
    if state is None:
        return True  # lost
    if state in ("loading", "created", "configured", "initialized"):
        return True
    return (state == "running") != (recorded == "running")

