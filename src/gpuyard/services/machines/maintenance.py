"""Maintenance windows (``schedule maint`` / ``cancel maint`` / ``show maints``, VAST-WIRE §18).

Every window is a ``machine_maintenances`` row; the machine row carries a copy of its next (or
current) window (``maint_start``, ``maint_end``), which is what the rest of gpuyard reads:

* offers end when the window starts (an offer's ``end_date`` and ``duration`` stop there, and it
  is no longer found from then on, services/market/offer_columns.py);
* renters of the machine see the window in their instance's ``status_msg`` (:func:`warning`);
* bids are stopped while the window lasts and resume by themselves after it
  (``allocation.maintenance_reason``); on-demand instances are left alone.

A window starting or ending is nothing anyone asks for, so a periodic job (:func:`advance`, run
by gpuyard/maintenance.py) re-allocates the machines whose window has started or ended and
moves the copy on to the next window.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from gpuyard.errors import InvalidInput
from gpuyard.services.market import allocation
from gpuyard.store.db import ROW_ID_RANGE, transaction
from gpuyard.store.models import Machine, MachineMaintenance, User
from gpuyard.wire.machines import MaintenanceQuery, MaintenanceWindow

HOUR = 3600.0
DEFAULT_CATEGORY = "not provided"


def _utc(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(when))


def sync_window(session: Session, machine: Machine, now: float | None = None) -> None:
    """Copy the machine's next window that has not ended onto the machine row."""
    at = time.time() if now is None else now
    nxt = session.execute(
        select(MachineMaintenance.start_time, MachineMaintenance.end_time)
        .where(MachineMaintenance.machine_id == machine.id, MachineMaintenance.end_time > at)
        .order_by(MachineMaintenance.start_time, MachineMaintenance.id)
        .limit(1)
    ).first()
    machine.maint_start, machine.maint_end = (nxt[0], nxt[1]) if nxt else (None, None)


def _settle(session: Session, machine: Machine) -> set[int]:
    sync_window(session, machine)
    _holdings, changed = allocation.refresh_machine(session, machine)
    return {inst.id for inst in changed}


def schedule(session: Session, user: User, machine_id: int,
             window: MaintenanceWindow) -> tuple[str, set[int]]:
    """Add a window to one of the caller's machines. Returns the answer's message and the
    instances the runtime must act on (bids stopped because the window has already begun)."""
    from gpuyard.services.machines.hosting import owned

    now = time.time()
    start = float(window.sdate)
    end = start + float(window.duration) * HOUR
    if end <= now:
        raise InvalidInput(f"the window {_utc(start)} to {_utc(end)} has already ended: give a "
                           "start date (--sdate, epoch seconds) in the future", "window_passed")
    machine = owned(session, user, machine_id, lock=True)
    session.add(MachineMaintenance(machine_id=machine.id, start_time=start, end_time=end,
                                   category=window.maintenance_category or DEFAULT_CATEGORY,
                                   created_at=now))
    session.flush()
    touched = _settle(session, machine)
    msg = (f"maintenance of machine {machine.id} scheduled from {_utc(start)} to {_utc(end)}: its "
           "offers end before the window, and bids on it stop while it lasts")
    return msg, touched


def cancel(session: Session, user: User, machine_id: int) -> tuple[str, set[int]]:
    """Cancel every window of one of the caller's machines that has not ended (stopped bids
    resume)."""
    from gpuyard.services.machines.hosting import owned

    now = time.time()
    machine = owned(session, user, machine_id, lock=True)
    gone = session.execute(
        delete(MachineMaintenance)
        .where(MachineMaintenance.machine_id == machine.id, MachineMaintenance.end_time > now)
    ).rowcount
    touched = _settle(session, machine)
    if not gone:
        return f"machine {machine.id} has no maintenance window scheduled; nothing to cancel", touched
    return f"{gone} maintenance window(s) of machine {machine.id} cancelled", touched


def windows(session: Session, machine_ids: Iterable[int], now: float | None = None) -> list[dict[str, Any]]:
    """The windows of ``machine_ids`` that have not ended, by start."""
    at = time.time() if now is None else now
    ids = list(machine_ids)
    if not ids:
        return []
    rows = session.scalars(
        select(MachineMaintenance)
        .where(MachineMaintenance.machine_id.in_(ids), MachineMaintenance.end_time > at)
        .order_by(MachineMaintenance.start_time, MachineMaintenance.id)
    )
    return [
        {"machine_id": m.machine_id, "start_time": m.start_time, "end_time": m.end_time,
         "duration_hours": round((m.end_time - m.start_time) / HOUR, 6),
         "maintenance_category": m.category}
        for m in rows
    ]


def list_windows(session: Session, user: User, query: MaintenanceQuery) -> list[dict[str, Any]]:
    """``show maints``: windows of the caller's machines (those of ``machine_ids`` when given;
    ids that are not the caller's machines are simply not in the answer)."""
    stmt = select(Machine.id).where(Machine.owner_id == user.id)
    if query.machine_ids is not None:
        # ids beyond the INTEGER column name no machine (PostgreSQL refuses them as literals)
        stmt = stmt.where(Machine.id.in_([i for i in query.machine_ids if i in ROW_ID_RANGE]))
    return windows(session, session.scalars(stmt))


def warning(machine: Machine, now: float | None = None) -> str | None:
    """What a renter of the machine is told about its next maintenance window, or None."""
    at = time.time() if now is None else now
    start, end = machine.maint_start, machine.maint_end
    if start is None or end is None or end <= at:
        return None
    hours = (end - start) / HOUR
    when = "in progress until " + _utc(end) if start <= at else f"scheduled for {_utc(start)}"
    return (f"machine maintenance {when} ({hours:g} h): interruptible instances stop during it, "
            "save your work")


def advance(sessions: sessionmaker[Session], now: float | None = None) -> set[int]:
    """The periodic step: machines whose window has started or ended are re-allocated (bids
    stop, or resume) and their copy moves on to the next window. Returns the instances the
    runtime must act on."""
    at = time.time() if now is None else now
    touched: set[int] = set()
    with transaction(sessions, write=False) as session:
        due = list(session.scalars(
            select(Machine.id).where(Machine.maint_start.is_not(None), Machine.maint_start <= at)))
    for machine_id in due:
        with transaction(sessions) as session:
            machine = allocation.lock_machine(session, machine_id)
            sync_window(session, machine, at)
            _holdings, changed = allocation.refresh_machine(session, machine)
            touched.update(inst.id for inst in changed)
    return touched

