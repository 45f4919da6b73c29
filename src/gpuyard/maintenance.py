"""The periodic maintenance-window job of a running server (docs/hosts.md).

Once per ``settings.maintenance_seconds`` across all server processes (a lease row decides whose
turn it is, gpuyard/periodic.py), machines whose maintenance window has started get their bids
stopped, and those whose window has ended get them back; the reconciler acts on the instances
at once. :func:`install_maintenance` is the app factory's one hook.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gpuyard.periodic import PeriodicJob, stop_budget
from gpuyard.services.machines import maintenance

JOB = "maintenance-windows"


def run_maintenance(app: Any, now: float | None = None) -> set[int]:
    """One run of the job: re-allocate the machines whose window started or ended, then bring the
    runtime in line (no transaction open). Returns the instance ids acted on."""
    touched = maintenance.advance(app.state.sessions, now)
    reconciler = app.state.reconciler
    for instance_id in sorted(touched):
        reconciler.reconcile(instance_id)
    if touched:
        reconciler.wake()
    return touched


def install_maintenance(app: Any) -> None:
    """Run the job while the app runs."""
    job = PeriodicJob(JOB, app.state.settings.maintenance_seconds, lambda: run_maintenance(app),
                      app.state.sessions, app.state.metrics.periodic_runs)
    app.state.maintenance_job = job
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
