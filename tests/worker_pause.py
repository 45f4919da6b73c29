"""Pausing the test server's worker role: its background reconciler *and* its periodic jobs (the
status refresh every 10 s queues instances whose engine disagrees with their row, so a test that
drives an instance with a reconciler of its own must pause both)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def paused_worker(app: Any) -> Iterator[None]:
    """Stop the reconciler's sweep and the worker jobs of ``app``, let the reconciles in flight
    end; start again what ran before."""
    background = app.state.reconciler
    jobs = [job for job in getattr(app.state, "worker_jobs", []) if job._thread is not None]
    running = background._thread is not None
    for job in jobs:
        job.stop()
    background.stop()
    deadline = time.monotonic() + 30  # reconciles already handed to its pool end first
    while background.slots._busy and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield
    finally:
        if running:
            background.start()
        for job in jobs:
            job.start()
