"""Prometheus metrics (``GET /metrics``), one registry per app.

* ``gpuyard_http_requests_total{method, route, status}`` and
  ``gpuyard_http_request_seconds{method, route}``: every request, labelled by the route's path
  template (``/api/v0/instances/{instance_id}``), never by the raw path, so labels stay few;
* ``gpuyard_launches_total{outcome}``: instances created (``created``) and launches refused
  (``refused``);
* ``gpuyard_instances{status}``: instances by actual status, counted in the database at scrape time
  (so every replica reports the same, and nothing drifts);
* ``gpuyard_machines{engine}``: machines whose engine is ``online`` or ``offline`` (heartbeats),
  counted in the database at scrape time;
* the reconciler's, in the process that runs it (a worker, or an all-in-one server; an API
  replica reports the reconciles it does before answering):
  ``gpuyard_reconcile_lag_seconds`` (from the moment a sweep first saw an instance needing work
  to the end of the pass that acted on it), ``gpuyard_reconcile_sweep_seconds`` (finding the
  work), ``gpuyard_reconcile_backlog`` (instances needing work at the last sweep),
  ``gpuyard_lease_takeovers_total`` (instance leases taken over after their holder stopped
  renewing them) and ``gpuyard_engine_errors_total{kind}`` (``unreachable``, ``error``,
  ``heartbeat``: failed engine calls and heartbeats);
* ``gpuyard_periodic_runs_total{job}``: the periodic jobs this process ran (gpuyard/periodic.py:
  each time it took the job's turn), from 0 for every job it runs; summed over the workers it
  grows once per period;
* counters other parts of gpuyard add through :func:`counter`.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpuyard.store.db import transaction
from gpuyard.store.models import Instance, Machine


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("gpuyard_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("gpuyard_http_request_seconds", "time to answer a request",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.launches = Counter("gpuyard_launches", "instance launches", ["outcome"],
                                registry=self.registry)
        self.reconcile_lag = Histogram(
            "gpuyard_reconcile_lag_seconds",
            "from a sweep first seeing an instance that needs work to the end of the pass on it",
            registry=self.registry, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.sweep_seconds = Histogram("gpuyard_reconcile_sweep_seconds",
                                       "time to find the instances that need work",
                                       registry=self.registry,
                                       buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
        self.backlog = Gauge("gpuyard_reconcile_backlog", "instances needing work at the last sweep",
                             registry=self.registry)
        self.lease_takeovers = Counter("gpuyard_lease_takeovers",
                                       "instance leases taken over after their holder stopped",
                                       registry=self.registry)
        self.engine_errors = Counter("gpuyard_engine_errors", "failed engine calls and heartbeats",
                                     ["kind"], registry=self.registry)
        self.periodic_runs = Counter("gpuyard_periodic_runs",
                                     "periodic jobs run by this process (the turns it took)",
                                     ["job"], registry=self.registry)
        self._extra: dict[str, Counter] = {}

    def counter(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Counter:
        """A counter of this registry, made on first use (``name`` without ``_total``)."""
        if name not in self._extra:
            self._extra[name] = Counter(name, help_text, list(labels), registry=self.registry)
        return self._extra[name]

    def watch_instances(self, sessions: Any) -> None:
        """Report instances by status, and machines by engine state, from the database at every
        scrape."""
        self.registry.register(_InstancesByStatus(sessions))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _InstancesByStatus:
    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions

    def collect(self):  # noqa: ANN201 - the prometheus_client collector protocol
        family = GaugeMetricFamily("gpuyard_instances", "live instances by actual status",
                                   labels=["status"])
        with transaction(self.sessions, write=False) as session:
            rows = session.execute(
                select(Instance.actual_status, func.count())
                .where(Instance.destroyed_at.is_(None))
                .group_by(Instance.actual_status)
            ).all()
            engines = session.execute(
                select(Machine.engine_online, func.count()).group_by(Machine.engine_online)
            ).all()
        for status, count in rows:
            family.add_metric([status], count)
        yield family
        machines = GaugeMetricFamily("gpuyard_machines", "machines by engine state (heartbeats)",
                                     labels=["engine"])
        for online, count in engines:
            machines.add_metric(["online" if online else "offline"], count)
        yield machines


class RequestMetrics:
    """ASGI middleware counting every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or ("static" if scope["path"].startswith(
                "/static/") else "unmatched")
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(scope["method"], template).observe(time.perf_counter() - start)
