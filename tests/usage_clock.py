"""A clock the tests move by hand, installed on the app's sessions (services/ledger/usage.py), and
helpers shared by the usage, credit and quota tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gpuyard.services.ledger import usage

#: 2026-01-01 00:00 UTC.
T0 = 1767225600.0
HOUR = 3600.0


class ManualClock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t


@contextmanager
def controlled(app, start: float = T0) -> Iterator[ManualClock]:
    """Every session of ``app`` reads time from a clock the test moves, until the block ends."""
    clock = ManualClock(start)
    usage.configure(app.state.sessions, clock=clock)
    try:
        yield clock
    finally:
        usage.configure(app.state.sessions, clock=None)


@contextmanager
def credit_enforced(app) -> Iterator[None]:
    """The app enforces credit (as ``gpuyard serve --credit``) until the block ends."""
    usage.configure(app.state.sessions, credit=True)
    try:
        yield
    finally:
        usage.configure(app.state.sessions, credit=None)
