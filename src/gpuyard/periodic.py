"""Periodic jobs that run once per period, however many server processes run them.

Each process runs a :class:`PeriodicJob` thread that wakes every ``period`` seconds and tries to
take the job's turn: a row of ``leases`` whose ``expires_at`` it moves forward by a period, in a
short transaction, only when the row has expired (:func:`claim`). Whoever moves it runs the job;
the others see a lease that has not expired and wait for the next period. A process that dies
simply stops renewing, and the next process to wake after the expiry takes over.

The turn lasts 90% of a period, so the process that holds it is not skipped over by its own
timer jitter. Lease times are wall-clock times (``time.time``): processes on several hosts need
roughly synchronized clocks, as any lease does.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from prometheus_client import Counter
from sqlalchemy import exc
from sqlalchemy.orm import Session, sessionmaker

from gpuyard.store.db import transaction
from gpuyard.store.models import Lease

log = logging.getLogger("gpuyard.periodic")
TURN = 0.9  # of a period


def holder_name() -> str:
    """This process, as lease rows name it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claim(sessions: sessionmaker[Session], name: str, seconds: float, holder: str,
          now: float | None = None) -> bool:
    """Take the turn of job ``name`` for ``seconds`` when nobody holds it; whether we did."""
    at = time.time() if now is None else now
    try:
        with transaction(sessions) as session:
            lease = session.get(Lease, name, with_for_update=True)
            if lease is None:
                session.add(Lease(name=name, holder=holder, expires_at=at + seconds))
                session.flush()  # two first claims at once: one of them fails here
                return True
            if lease.expires_at > at:
                return False
            lease.holder, lease.expires_at = holder, at + seconds
            return True
    except exc.IntegrityError:
        return False


class StopBudget:
    """The time a shutting-down process gives its background threads, shared by all of them:
    the clock starts at the first :meth:`left`, so a job stuck on a database lock costs at most
    the budget once, not a join timeout per thread (their threads are daemons: what has not
    ended by then ends with the process)."""

    def __init__(self, seconds: float):
        self.seconds = max(0.0, seconds)
        self._deadline: float | None = None

    def left(self) -> float:
        if self._deadline is None:
            self._deadline = time.monotonic() + self.seconds
        return max(0.0, self._deadline - time.monotonic())


def stop_budget(app: object) -> float:
    """What is left of ``app``'s stop budget (10 s when it has none)."""
    budget = getattr(getattr(app, "state", None), "stop_budget", None)
    return budget.left() if budget is not None else 10.0


class PeriodicJob:
    """``work()`` every ``period`` seconds in a background thread, when this process gets the
    turn (:func:`claim`). An exception is logged and the job goes on. With ``runs`` (a counter
    labelled by job, ``Metrics.periodic_runs``) every turn taken is counted."""

    def __init__(self, name: str, period: float, work: Callable[[], object],
                 sessions: sessionmaker[Session], runs: Counter | None = None):
        self.name = name
        self.period = period
        self.work = work
        self.sessions = sessions
        self.runs = runs
        self.holder = holder_name()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        """Take the turn and run the job; whether it ran."""
        if not claim(self.sessions, self.name, self.period * TURN, self.holder):
            return False
        if self.runs is not None:
            self.runs.labels(self.name).inc()
        self.work()
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the database may be briefly unavailable; try next period
                log.exception("periodic job %s failed", self.name)
            self._stop.wait(self.period)

    def start(self) -> None:
        if self._thread is None:
            if self.runs is not None:
                self.runs.labels(self.name)  # on /metrics from 0, before the first turn
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"gpuyard-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
