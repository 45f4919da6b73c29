"""Gateway ports in the database: which instance listens where, and handing out new ones.

Each live instance gets its own port from the gateway's range, recorded on its row
(``instances.ssh_port``, unique), so every gateway replica serves every instance's port and
learns new ones from the database. Ports are handed out in steps of two: jupyter runtypes also
listen on the port after theirs, where the official CLI's ``ssh-url`` points (it adds 1 for
them). A port is written to the row only after the gateway listens on it."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, select, union_all, update
from sqlalchemy.orm import Session

from gpuyard.store.models import Instance


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(n) for n in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def parse_range(text: str) -> tuple[int, int]:
    """``FIRST-LAST`` → (first, last); raises ValueError with a message."""
    first, sep, last = text.partition("-")
    try:
        a, b = int(first), int(last)
    except ValueError:
        raise ValueError(f"--ssh-ports {text!r}: write FIRST-LAST, e.g. 2200-2999") from None
    if not sep or not 1 <= a < b <= 65535:
        raise ValueError(f"--ssh-ports {text!r}: write FIRST-LAST with 1 <= FIRST < LAST <= 65535")
    return a, b


def candidates(first: int, last: int) -> list[int]:
    """The ports instances may get: every other port of the range, outside the ephemeral range."""
    low, high = ephemeral_range()
    return [p for p in range(first, last, 2) if not (low <= p <= high or low <= p + 1 <= high)]


def listens_on(port: int, runtype: str | None) -> list[int]:
    return [port, port + 1] if "jupyter" in (runtype or "") else [port]


@dataclass(frozen=True)
class Assigned:
    instance_id: int
    port: int
    runtype: str | None


Ports = tuple[list[Assigned], list[tuple[int, str | None]], set[int]]


_LIVE = (select(Instance.id, Instance.ssh_port, Instance.runtype)
         .where(Instance.destroyed_at.is_(None)).order_by(Instance.id))


Changes = tuple[list[Assigned], list[tuple[int, str | None]]]


def _sort_out(found: Iterable[tuple[int, int | None, str | None]]) -> Changes:
    """(instance, port, runtype) rows, in id order, as the ports assigned and the instances
    waiting for one."""
    rows: list[Assigned] = []
    idle: list[tuple[int, str | None]] = []
    for instance_id, port, runtype in found:
        if port is None:
            idle.append((instance_id, runtype))
        else:
            rows.append(Assigned(instance_id, port, runtype))
    return rows, idle


def current(session: Session) -> Ports:
    """The ports assigned, the instances waiting for one, and the ports taken, from one read of
    the live instances (a look after every change: one pass over them, not three). Call it when
    no destroyed instance holds a port (:func:`destroyed_holding`, :func:`release_destroyed`):
    the ports taken are then those of live instances."""
    rows, idle = _sort_out(session.execute(_LIVE))
    return rows, idle, {row.port for row in rows}


# Built once, as Core statements on the table: a look and a burst of claims run them often
# (building an ORM update, and its evaluation against the session's objects, cost more than
# running it).
_T = Instance.__table__
# Destroyed instances that hold a port: any (``ssh_port > 0`` rather than ``IS NOT NULL``, the
# same rows: SQLite then walks the index of ports, the instances holding one, not every instance
# ever made), or those destroyed since a time (SQLite walks the index of destroyed_at from it).
_DESTROYED_HOLDING = (_T.c.destroyed_at.is_not(None), _T.c.ssh_port > 0)
_DESTROYED_SINCE_HOLDING = (_T.c.destroyed_at >= bindparam("since"), _T.c.ssh_port.is_not(None))
_HOLDING_DESTROYED = select(_T.c.id).where(*_DESTROYED_HOLDING).limit(1)
_HOLDING_DESTROYED_SINCE = select(_T.c.id).where(*_DESTROYED_SINCE_HOLDING).limit(1)
_RELEASE = update(_T).where(*_DESTROYED_HOLDING).values(ssh_port=None).returning(_T.c.id)
_RELEASE_SINCE = update(_T).where(*_DESTROYED_SINCE_HOLDING).values(ssh_port=None).returning(_T.c.id)
_CLAIM = (update(_T).where(_T.c.id == bindparam("instance"), _T.c.ssh_port.is_(None),
                           _T.c.destroyed_at.is_(None))
          .values(ssh_port=bindparam("port"), ssh_host=bindparam("host")))
# What a quick look reads: the instances made since the last look (ids above the highest it
# read, less a margin: on PostgreSQL a rental that took a lower id may commit after a higher
# one), and those waiting for a port at the last look (another replica may have given them one
# since). Two searches by primary key, whatever the number of live instances.
RECENT_MARGIN = 100
_COLUMNS = (_T.c.id, _T.c.ssh_port, _T.c.runtype, _T.c.destroyed_at)
_CHANGED = union_all(
    select(*_COLUMNS).where(_T.c.id > bindparam("since")),
    select(*_COLUMNS).where(_T.c.id.in_(bindparam("watch", expanding=True)),
                            _T.c.id <= bindparam("since")),
)


def destroyed_holding(session: Session, since: float | None = None) -> bool:
    """Whether a destroyed instance still holds a port (one destroyed at ``since`` or later)."""
    if since is None:
        return session.scalar(_HOLDING_DESTROYED) is not None
    return session.scalar(_HOLDING_DESTROYED_SINCE, {"since": since}) is not None


def release_destroyed(session: Session, since: float | None = None) -> list[int]:
    """Free the ports of destroyed instances (destroyed at ``since`` or later); their ids."""
    if since is None:
        return list(session.scalars(_RELEASE))
    return list(session.scalars(_RELEASE_SINCE, {"since": since}))


def changed(session: Session, seen: int, watch: Collection[int]) -> Changes:
    """What a quick look reads instead of every live instance (:func:`current`): the ports
    assigned and the instances waiting, among the live instances made after instance ``seen``
    (less :data:`RECENT_MARGIN`) and those of ``watch``. The rows are the changes, not the
    fleet: a look after a burst of rentals costs the same with ten thousand live instances as
    with ten. (A full look, every few seconds, catches anything else.)"""
    found = session.execute(_CHANGED, {"since": seen - RECENT_MARGIN, "watch": list(watch)})
    return _sort_out((instance_id, port, runtype) for instance_id, port, runtype, destroyed_at
                     in sorted(found, key=lambda row: row[0]) if destroyed_at is None)


def claim(session: Session, instance_id: int, port: int, host: str) -> bool:
    """Record ``port`` for the instance unless it has one (or was destroyed) meanwhile."""
    result = session.execute(_CLAIM, {"instance": instance_id, "port": port, "host": host})
    return bool(result.rowcount)
