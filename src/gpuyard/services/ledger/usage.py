"""Usage: what instances and volumes accrue, recorded when it changes, charged for any window.

The rules (docs/usage.md):

* **GPU time** accrues while an instance runs (``actual_status`` "running", as the runtime
  reports it), at its GPU price: the bid for an interruptible instance (a changed bid counts
  from the moment it changes), else ``dph_base``, the on-demand price it was rented at (never
  today's machine price).
* **Disk** accrues from creation until destroyed, stopped included: ``disk_space`` GB at the
  ``storage_cost`` ($/GB/month, a month being 720 hours) it was rented at.
* **Volumes** accrue from creation until deleted: ``size`` GB at their ``storage_cost``.

**Recording.** Nothing is written while things keep running. Mapper hooks on
:class:`~gpuyard.store.models.Instance` and :class:`~gpuyard.store.models.Volume` see every
change made through the ORM (services, the reconciler, admin commands alike): when a change
alters what the object accrues, the open :class:`~gpuyard.store.models.UsageInterval` is closed
and a new one opened, in the same transaction as the change. Charges for any window are then
sums over intervals (:func:`pieces`, :func:`charged`). A row written outside the ORM would not be
seen; nothing in gpuyard writes instances or volumes that way.

**The clock.** Interval boundaries come from the session's clock (``session.info``, see
:func:`configure`; ``time.time`` by default), so tests drive a run with a clock they control.
The same ``session.info`` says whether credit is enforced (services/ledger/billing.py).

Importing this module registers the hooks; every service that changes instances or volumes
imports it (through services/ledger/billing.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, event, func, insert, inspect, or_, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session, object_session, sessionmaker
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE, get_history

from gpuyard.store.models import Instance, UsageInterval, Volume

HOURS_PER_MONTH = 30 * 24
DAY = 86400.0
CLOCK = "gpuyard.clock"
CREDIT = "gpuyard.credit"

Clock = Callable[[], float]


# -- the session's context: clock and credit ----------------------------------------------------
def configure(sessions: sessionmaker[Session], **values: Any) -> None:
    """Set ``clock`` (a function returning epoch seconds) and/or ``credit`` (enforce credit) on
    every session ``sessions`` makes from now on. ``None`` puts the default back."""
    info = dict(sessions.kw.get("info") or {})
    for name, value in values.items():
        key = {"clock": CLOCK, "credit": CREDIT}[name]
        if value is None:
            info.pop(key, None)
        else:
            info[key] = value
    sessions.configure(info=info)


def now(session: Session | None) -> float:
    """The session's clock (``time.time`` unless :func:`configure` set another)."""
    clock: Clock | None = session.info.get(CLOCK) if session is not None else None
    return (clock or time.time)()


# -- what an instance or a volume accrues -------------------------------------------------------
def gpu_price(inst: Instance) -> float:
    """The instance's GPU price in $/hour: its bid, else the on-demand price at rental."""
    return inst.bid_price if inst.is_bid and inst.bid_price is not None else inst.dph_base


def disk_dph(gb: float, storage_cost: float) -> float:
    return gb * storage_cost / HOURS_PER_MONTH


def instance_dph(inst: Instance) -> float:
    """What the instance costs per hour while it runs (``dph_total``): GPUs plus disk."""
    return gpu_price(inst) + disk_dph(inst.disk_space, inst.storage_cost)


RATE_FIELDS = ("user_id", "kind", "instance_id", "volume_id", "machine_id", "template_id",
               "template_name", "label", "gpus", "gpu_dph", "disk_gb", "disk_dph")


def instance_rates(inst: Instance) -> dict[str, Any] | None:
    """What the instance accrues now (None once destroyed)."""
    if inst.destroyed_at is not None:
        return None
    running = inst.actual_status == "running"
    return {
        "user_id": inst.owner_id, "kind": "instance", "instance_id": inst.id, "volume_id": None,
        "machine_id": inst.machine_id, "template_id": inst.template_id,
        "template_name": inst.template_name, "label": inst.label,
        "gpus": inst.num_gpus if running else 0,
        "gpu_dph": gpu_price(inst) if running else 0.0,
        "disk_gb": inst.disk_space, "disk_dph": disk_dph(inst.disk_space, inst.storage_cost),
    }


def volume_rates(volume: Volume) -> dict[str, Any] | None:
    if volume.deleted_at is not None:
        return None
    return {
        "user_id": volume.owner_id, "kind": "volume", "instance_id": None, "volume_id": volume.id,
        "machine_id": volume.machine_id, "template_id": None, "template_name": None,
        "label": volume.name, "gpus": 0, "gpu_dph": 0.0, "disk_gb": volume.size,
        "disk_dph": disk_dph(volume.size, volume.storage_cost),
    }


# -- recording ----------------------------------------------------------------------------------
INSTANCE_ATTRS = ("actual_status", "destroyed_at", "is_bid", "bid_price", "dph_base", "num_gpus",
                  "disk_space", "storage_cost", "label", "template_id", "template_name",
                  "machine_id", "owner_id")
VOLUME_ATTRS = ("deleted_at", "size", "storage_cost", "name", "owner_id", "machine_id")
INTERVALS = UsageInterval.__table__


def _changed(target: Any, attrs: Iterable[str]) -> bool:
    """Whether the flush writes a new value to any of ``attrs``. Only the attributes set since
    the row was loaded or last flushed (``committed_state``) can have one; their history says
    (every status change runs this: ``state.attrs`` would build a view of all 45 columns)."""
    state = inspect(target)
    modified = state.committed_state
    return any(name in modified and get_history(target, name, PASSIVE_NO_INITIALIZE).has_changes()
               for name in attrs)


def _statements(key: str) -> tuple[Any, Any, Any]:
    """(the open interval of the object ``:ident``, closing it at ``:at``, giving it the rates
    ``:new_<field>`` in place) for the ``key`` column; built once per column (every status
    change runs them)."""
    column = INTERVALS.c[key]
    is_open = (column == bindparam("ident"), INTERVALS.c.ended_at.is_(None))
    return (select(INTERVALS).where(*is_open).order_by(INTERVALS.c.id.desc()).limit(1),
            update(INTERVALS).where(*is_open).values(ended_at=bindparam("at")),
            update(INTERVALS).where(*is_open).values({f: bindparam(f"new_{f}") for f in RATE_FIELDS}))


_OPEN_CLOSE = {key: _statements(key) for key in ("instance_id", "volume_id")}
_OPEN_NEW = insert(INTERVALS)
# session.info: {(key, ident): rates} of the intervals this transaction opened
OPENED = "gpuyard.usage_opened"


@event.listens_for(Session, "after_transaction_end")
def _forget_opened(session: Session, transaction: Any) -> None:
    """What a transaction opened is its own: forgotten when it or a savepoint ends (not at the
    end of a flush, which SQLAlchemy also runs as an inner transaction)."""
    if transaction.parent is None or transaction.nested:
        session.info.pop(OPENED, None)


def _record(conn: Connection, target: Any, key: str, rates: dict[str, Any] | None, *, new: bool) -> None:
    """Close the open interval of ``target`` and open one at ``rates`` (when they differ). An
    interval this same transaction opened is given the new rates in place instead: no other
    transaction ever saw the rates it opened with (a rental that brings its new instance in line
    at once records one interval, not a closed one of a few microseconds and a second)."""
    session = object_session(target)
    at = now(session)
    ident = target.id
    opened = session.info.setdefault(OPENED, {}) if session is not None else {}
    if not new:
        find_open, close, rewrite = _OPEN_CLOSE[key]
        mine = opened.get((key, ident))
        if mine is not None and rates is not None:
            if mine != rates:
                conn.execute(rewrite, {"ident": ident, **{f"new_{f}": rates[f] for f in RATE_FIELDS}})
                opened[(key, ident)] = rates
            return
        open_row = conn.execute(find_open, {"ident": ident}).first()
        if open_row is not None:
            if rates is not None and all(getattr(open_row, k) == rates[k] for k in RATE_FIELDS):
                return  # nothing it accrues changed
            conn.execute(close, {"ident": ident, "at": max(at, open_row.started_at)})
    if rates is not None:
        conn.execute(_OPEN_NEW, {**rates, "started_at": at, "ended_at": None})
        opened[(key, ident)] = rates
    else:
        opened.pop((key, ident), None)


@event.listens_for(Instance, "after_insert")
def _instance_made(_mapper: Any, conn: Connection, inst: Instance) -> None:
    _record(conn, inst, "instance_id", instance_rates(inst), new=True)


@event.listens_for(Instance, "after_update")
def _instance_changed(_mapper: Any, conn: Connection, inst: Instance) -> None:
    if _changed(inst, INSTANCE_ATTRS):
        _record(conn, inst, "instance_id", instance_rates(inst), new=False)


@event.listens_for(Volume, "after_insert")
def _volume_made(_mapper: Any, conn: Connection, volume: Volume) -> None:
    _record(conn, volume, "volume_id", volume_rates(volume), new=True)


@event.listens_for(Volume, "after_update")
def _volume_changed(_mapper: Any, conn: Connection, volume: Volume) -> None:
    if _changed(volume, VOLUME_ATTRS):
        _record(conn, volume, "volume_id", volume_rates(volume), new=False)


@event.listens_for(Instance, "before_update")
def _keep_stop_reason(_mapper: Any, _conn: Connection, inst: Instance) -> None:
    """An instance gpuyard stopped itself (``stop_reason``, e.g. "out of credit") says so in its
    status_msg, whatever the runtime reports, until it is started again or destroyed."""
    if inst.stop_reason is None:
        return
    if inst.intended_status == "running" or inst.destroyed_at is not None:
        inst.stop_reason = None
    elif inst.status_msg != inst.stop_reason:
        inst.status_msg = inst.stop_reason


# -- charges --------------------------------------------------------------------------------------
def day_of(t: float) -> float:
    """The UTC midnight starting the day ``t`` is in."""
    return math.floor(t / DAY) * DAY


@dataclass(frozen=True)
class Piece:
    """The part of one interval that falls into one UTC day of a window."""

    row: Row[Any]
    day: float
    start: float
    end: float

    @property
    def hours(self) -> float:
        return (self.end - self.start) / 3600.0

    @property
    def gpu_hours(self) -> float:
        return self.hours * self.row.gpus

    @property
    def disk_gb_hours(self) -> float:
        return self.hours * self.row.disk_gb

    @property
    def gpu_cost(self) -> float:
        return self.hours * self.row.gpu_dph

    @property
    def disk_cost(self) -> float:
        return self.hours * self.row.disk_dph

    @property
    def cost(self) -> float:
        return self.gpu_cost + self.disk_cost


def intervals(session: Session, since: float, until: float,
              user_ids: Iterable[int] | None = None) -> list[Row[Any]]:
    """The intervals that overlap ``[since, until)``, oldest first."""
    stmt = select(INTERVALS).where(INTERVALS.c.started_at < until,
                                   or_(INTERVALS.c.ended_at.is_(None), INTERVALS.c.ended_at > since))
    if user_ids is not None:
        stmt = stmt.where(INTERVALS.c.user_id.in_(list(user_ids)))
    return list(session.execute(stmt.order_by(INTERVALS.c.started_at, INTERVALS.c.id)))


def pieces(rows: Iterable[Row[Any]], since: float, until: float, at: float) -> Iterator[Piece]:
    """Each interval's time within ``[since, min(until, at))`` (an open interval runs until
    ``at``, the clock's now), cut at UTC midnights."""
    stop = min(until, at)
    for row in rows:
        start = max(row.started_at, since)
        end = min(row.ended_at if row.ended_at is not None else at, stop)
        while start < end:
            day = day_of(start)
            cut = min(end, day + DAY)
            yield Piece(row, day, start, cut)
            start = cut


def charged(session: Session, at: float, user_ids: Iterable[int] | None = None) -> dict[int, float]:
    """Every charge up to ``at``, per user ($), summed in the database."""
    end = case((or_(INTERVALS.c.ended_at.is_(None), INTERVALS.c.ended_at > at), at),
               else_=INTERVALS.c.ended_at)
    amount = func.sum((end - INTERVALS.c.started_at) * (INTERVALS.c.gpu_dph + INTERVALS.c.disk_dph))
    stmt = (select(INTERVALS.c.user_id, amount).where(INTERVALS.c.started_at < at)
            .group_by(INTERVALS.c.user_id))
    if user_ids is not None:
        stmt = stmt.where(INTERVALS.c.user_id.in_(list(user_ids)))
    return {user_id: float(total or 0.0) / 3600.0 for user_id, total in session.execute(stmt)}


def accruing(session: Session, user_id: int) -> float:
    """The $/hour the user's open intervals accrue right now."""
    total = session.scalar(select(func.sum(INTERVALS.c.gpu_dph + INTERVALS.c.disk_dph))
                           .where(INTERVALS.c.user_id == user_id, INTERVALS.c.ended_at.is_(None)))
    return float(total or 0.0)
