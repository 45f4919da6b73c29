"""Per-instance leases: exactly one process acts on an instance's runtime at a time.

A lease is a row of ``instance_leases`` (instance id, holder, expiry). A process takes it in a
short transaction before it calls the runtime for the instance (:meth:`InstanceLeases.claim`):
the row is locked (``SELECT … FOR UPDATE``), and taken when it is free, expired, or already
ours. While a process holds leases a renewer thread moves their expiry forward every third of
the lease time, so only a process that died (or lost the database) lets its leases expire; the
next process that wants the instance then takes it over, and knows it did (a *takeover*: the
previous holder may have left work half done, e.g. a container created but not recorded).

A lease is given back as soon as the work is done (``expires_at`` set to 0), except while the
runtime still works for the instance in the background (a pull, a create): it is kept, and
renewed, until that work ends (:meth:`InstanceLeases.keep`).

On SQLite only one gpuyard process may use a database file (``claim_sqlite``), so
:class:`LocalLeases` grants every claim without touching the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from gpuyard.store.db import transaction
from gpuyard.store.models import InstanceLease

log = logging.getLogger("gpuyard.leases")
DEFAULT_SECONDS = 10.0
CLAIM_SQL = text("""
WITH old AS MATERIALIZED (
    SELECT holder, expires_at FROM instance_leases WHERE instance_id = :id FOR UPDATE)
INSERT INTO instance_leases AS l (instance_id, holder, expires_at)
SELECT :id, :me, :until FROM (SELECT count(*) FROM old) AS read_first
ON CONFLICT (instance_id) DO UPDATE SET holder = :me, expires_at = :until
    WHERE l.expires_at <= :now OR l.holder = :me
RETURNING (SELECT holder FROM old) AS old_holder, (SELECT expires_at FROM old) AS old_expires
""")

@dataclass(frozen=True)
class Claim:
    instance_id: int
    takeover: bool  # the lease expired in the hands of another process
    previous: str | None = None


class LocalLeases:
    """Every claim granted: the one process on a SQLite file needs no lease."""

    holder = "local"
    seconds = DEFAULT_SECONDS

    def claim(self, instance_id: int) -> Claim | None:
        return Claim(instance_id, takeover=False)

    def claim_in(self, session: Session, instance_id: int) -> Claim | None:
        return Claim(instance_id, takeover=False)

    def claimed(self, got: Claim) -> None:
        return None

    def release_in(self, session: Session, instance_id: int) -> None:
        return None

    def forget(self, instance_id: int) -> None:
        return None

    def release(self, instance_id: int) -> None:
        return None

    def keep(self, instance_id: int, while_: Callable[[], bool]) -> None:
        return None

    def holders(self, instance_ids: list[int]) -> dict[int, str]:
        return {}

    def start(self) -> None:
        return None

    def stop(self, timeout: float = 10.0) -> None:
        return None


class InstanceLeases:
    """Leases in the database, held by ``holder`` (this process)."""

    def __init__(self, sessions: sessionmaker[Session], holder: str,
                 seconds: float = DEFAULT_SECONDS,
                 on_takeover: Callable[[Claim], None] | None = None,
                 clock: Callable[[], float] = time.time):
        self.sessions = sessions
        self.holder = holder
        self.seconds = seconds
        self.on_takeover = on_takeover
        self.clock = clock
        self._held: dict[int, Callable[[], bool] | None] = {}  # id → "still busy?" once kept
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one lease ---------------------------------------------------------------------------------
    def claim(self, instance_id: int) -> Claim | None:
        """Take the instance's lease; None when another live process holds it."""
        with transaction(self.sessions) as session:
            got = self.claim_in(session, instance_id)
        if got is not None:
            self.claimed(got)
        return got

    def claim_in(self, session: Session, instance_id: int) -> Claim | None:
        """:meth:`claim` in the caller's (write) transaction; call :meth:`claimed` after it
        commits. PostgreSQL: one statement (the row locked, then inserted or taken over when
        free, expired or ours, returning what it held before); elsewhere the row is made free
        when missing, then locked and taken."""
        now = self.clock()
        until = now + self.seconds
        if session.get_bind().dialect.name == "postgresql":
            row = session.execute(CLAIM_SQL, {"id": instance_id, "me": self.holder, "until": until,
                                              "now": now}).first()
            if row is None:
                return None
            previous, expired = row.old_holder, row.old_expires
        else:
            session.execute(sqlite_insert(InstanceLease).values(
                instance_id=instance_id, holder="", expires_at=0.0).on_conflict_do_nothing())
            lease = session.get(InstanceLease, instance_id, with_for_update=True,
                                populate_existing=True)
            if lease is None or (lease.holder != self.holder and lease.expires_at > now):
                return None
            previous, expired = lease.holder, lease.expires_at
            lease.holder, lease.expires_at = self.holder, until
        takeover = previous not in (None, "", self.holder) and (expired or 0) > 0
        return Claim(instance_id, takeover=takeover, previous=previous or None)

    def claimed(self, got: Claim) -> None:
        """The claim's transaction committed: renew the lease from now on."""
        with self._lock:
            self._held[got.instance_id] = None
        if got.takeover:
            log.info("took over instance %s from %s (its lease expired)", got.instance_id,
                     got.previous)
            if self.on_takeover is not None:
                self.on_takeover(got)

    def keep(self, instance_id: int, while_: Callable[[], bool]) -> None:
        """Hold the lease (renewed) for as long as ``while_()`` says the work goes on."""
        with self._lock:
            if instance_id in self._held:
                self._held[instance_id] = while_

    def release(self, instance_id: int) -> None:
        self.forget(instance_id)
        with transaction(self.sessions) as session:
            self.release_in(session, instance_id)

    def release_in(self, session: Session, instance_id: int) -> None:
        """Give the lease back in the caller's transaction (then :meth:`forget` it)."""
        session.execute(update(InstanceLease).where(
            InstanceLease.instance_id == instance_id, InstanceLease.holder == self.holder,
        ).values(expires_at=0.0))

    def forget(self, instance_id: int) -> None:
        """Stop renewing a lease given back."""
        with self._lock:
            self._held.pop(instance_id, None)

    def holders(self, instance_ids: list[int]) -> dict[int, str]:
        """Who holds a live lease on each of ``instance_ids`` (those without one left out)."""
        if not instance_ids:
            return {}
        now = self.clock()
        with transaction(self.sessions, write=False) as session:
            rows = session.execute(select(InstanceLease.instance_id, InstanceLease.holder).where(
                InstanceLease.instance_id.in_(instance_ids), InstanceLease.expires_at > now))
            return {instance_id: holder for instance_id, holder in rows}

    # -- the renewer -------------------------------------------------------------------------------
    def renew(self) -> int:
        """Move the expiry of every lease held forward; give back kept ones whose work ended.
        Returns how many are held."""
        with self._lock:
            held = dict(self._held)
        done = [i for i, busy in held.items() if busy is not None and not busy()]
        for instance_id in done:
            self.release(instance_id)
        alive = [i for i in held if i not in done]
        if alive:
            with transaction(self.sessions) as session:
                result = session.execute(update(InstanceLease).where(
                    InstanceLease.instance_id.in_(alive), InstanceLease.holder == self.holder,
                ).values(expires_at=self.clock() + self.seconds))
                if result.rowcount != len(alive):
                    log.warning("%d lease(s) were taken by another process while held",
                                len(alive) - result.rowcount)
        return len(alive)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew()
            except Exception:  # the database may be briefly unavailable; try again
                log.exception("renewing leases failed")

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="gpuyard-leases", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        with self._lock:
            held, self._held = list(self._held), {}
        for instance_id in held:  # a clean exit gives its leases back at once
            try:
                self.release(instance_id)
            except Exception:  # noqa: BLE001 - they expire anyway
                pass


def leases_for(sessions: sessionmaker[Session], holder: str, seconds: float = DEFAULT_SECONDS,
               on_takeover: Callable[[Claim], None] | None = None) -> InstanceLeases | LocalLeases:
    """Database leases on PostgreSQL (several processes), none on SQLite (one process)."""
    bind = sessions.kw.get("bind")
    if bind is not None and bind.dialect.name == "sqlite":
        return LocalLeases()
    return InstanceLeases(sessions, holder, seconds, on_takeover)
