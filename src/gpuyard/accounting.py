"""Accounts in a running server: what every session knows (the clock, whether credit is
enforced) and the periodic out-of-credit stop (docs/usage.md).

:func:`install_accounting` is the app factory's one hook. The job runs beside the reconciler,
in a thread of its own (gpuyard/periodic.py): once per ``settings.billing_seconds`` across all
server processes (a lease row in the database decides whose turn it is), it stops the running
instances of accounts whose balance reached zero and has the reconciler act on them at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gpuyard.periodic import PeriodicJob, stop_budget
from gpuyard.services.ledger import billing, usage

JOB = "out-of-credit"


def run_out_of_credit(app: Any) -> list[int]:
    """One run of the job: stop what must stop, then bring the runtime in line for it (no
    transaction open). Returns the instance ids acted on."""
    touched = billing.stop_out_of_credit(app.state.sessions)
    reconciler = app.state.reconciler
    for instance_id in touched:
        reconciler.reconcile(instance_id)
    if touched:
        reconciler.wake()
    return touched


def install_accounting(app: Any) -> None:
    """Give every session the server's credit setting, and run the out-of-credit job while the
    app runs (only when credit is enforced)."""
    settings = app.state.settings
    usage.configure(app.state.sessions, credit=settings.credit or None)
    job = PeriodicJob(JOB, settings.billing_seconds, lambda: run_out_of_credit(app), app.state.sessions,
                      app.state.metrics.periodic_runs)
    app.state.billing_job = job
    if not settings.credit or not getattr(app.state, "worker", True):
        return  # (an API replica leaves the job to the workers)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state:
            job.start()
            try:
                yield state
            finally:
                job.stop(timeout=stop_budget(application))

    app.router.lifespan_context = lifespan
