"""The worker role in a running app: the reconciler's background sweep and the periodic jobs
that run once per period across all worker processes (gpuyard/periodic.py):

* ``status-refresh`` (every 10 s): every live instance's recorded status against its engine's,
  one list call per engine; only those that differ are reconciled (``Reconciler.refresh``);
* ``orphan-sweep`` (every 30 s): containers no instance owns, and engine volumes of deleted
  volumes, removed (``Reconciler.collect_garbage``: never a young one, never one whose live
  instance is leased);
* ``engine-heartbeat`` (every ``settings.heartbeat_seconds``): every docker machine's engine
  pinged, machines taken offline and back online (gpuyard/control/heartbeats.py).

``gpuyard serve`` runs this role in its own process (the all-in-one default); ``gpuyard serve
--no-worker`` does not, and ``gpuyard worker`` runs only this role.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gpuyard.control.heartbeats import check_engines
from gpuyard.periodic import PeriodicJob, stop_budget
from gpuyard.reconciler import FULL_SWEEP_EVERY

ORPHAN_SWEEP_EVERY = 30.0


def worker_jobs(app: Any) -> list[PeriodicJob]:
    state = app.state
    settings = state.settings
    reconciler = state.reconciler

    def heartbeat() -> object:
        return check_engines(state.sessions, reconciler, default_runtime=settings.runtime,
                             failures=settings.heartbeat_failures, timeout=settings.engine_timeout,
                             metrics=state.metrics)

    runs = state.metrics.periodic_runs
    return [
        PeriodicJob("status-refresh", FULL_SWEEP_EVERY, reconciler.refresh, state.sessions, runs),
        PeriodicJob("orphan-sweep", ORPHAN_SWEEP_EVERY, reconciler.collect_garbage, state.sessions,
                    runs),
        PeriodicJob("engine-heartbeat", settings.heartbeat_seconds, heartbeat, state.sessions, runs),
    ]


def install_worker(app: Any) -> None:
    """Run the reconciler's background sweep and the worker's periodic jobs while ``app`` runs."""
    jobs = app.state.worker_jobs = worker_jobs(app)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state:
            application.state.reconciler.start()
            for job in jobs:
                job.start()
            try:
                yield state
            finally:
                for job in jobs:
                    job.stop(timeout=stop_budget(application))
                application.state.reconciler.stop(timeout=stop_budget(application))

    app.router.lifespan_context = lifespan
