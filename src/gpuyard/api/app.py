"""The application factory: settings → engine → migrations → routes. No I/O at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

import gpuyard
from gpuyard.accounting import install_accounting
from gpuyard.api.edge import JSONAnswer, RequestLimits
from gpuyard.api.errors import install_error_handlers
from gpuyard.api.openapi import install_openapi
from gpuyard.api.routes import (
    accounts,
    billing,
    commands,
    instances,
    machines,
    meta,
    offers,
    ssh_keys,
    templates,
    users,
    volumes,
)
from gpuyard.control.leases import leases_for
from gpuyard.control.roles import install_worker
from gpuyard.maintenance import install_maintenance
from gpuyard.metrics import Metrics, RequestMetrics
from gpuyard.periodic import StopBudget, holder_name, stop_budget
from gpuyard.reconciler import Reconciler
from gpuyard.runtimes.docker import DockerRuntime
from gpuyard.runtimes.simulated import SimulatedRuntime
from gpuyard.server_secret import load_server_secret
from gpuyard.services.accounts.apikeys import KeyUsage
from gpuyard.services.accounts.installation import installation_id
from gpuyard.services.catalog import template_rows
from gpuyard.services.catalog.answer_cache import AnswerCache
from gpuyard.settings import Settings
from gpuyard.store.crypto import Cipher, encrypt_plain_values, install_cipher
from gpuyard.store.db import make_engine, make_sessionmaker, migrate, startup_lock, transaction
from gpuyard.store.models import Base
from gpuyard.web.wiring import install_console

log = logging.getLogger("gpuyard.app")


class StripTrailingSlash:
    """Route ``/api/v0/template/`` and ``/api/v0/template`` alike, with no redirect (a redirect
    would turn the official client's POST into a GET)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = dict(scope)
                scope["path"] = path.rstrip("/") or "/"
                scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


ROUTERS = (meta.router, users.router, templates.router, offers.router, instances.router,
           instances.public, commands.router, volumes.router, accounts.router, billing.router,
           ssh_keys.router, machines.router)


def _api(lifespan: Any = None) -> FastAPI:
    """The FastAPI application with the API's routes and schema (no database, no state)."""
    app = FastAPI(
        lifespan=lifespan,
        title="gpuyard",
        version=gpuyard.__version__,
        description="Self-hosted GPU cloud control plane that speaks the Vast.ai API.",
        redirect_slashes=False,
        default_response_class=JSONAnswer,
    )
    for router in ROUTERS:
        app.include_router(router)
    app.state.api_routes = [route for router in ROUTERS for route in router.routes]
    install_openapi(app)
    return app


def openapi_document() -> dict[str, Any]:
    """``/openapi.json`` without a running server (for tools and tests)."""
    return _api().openapi()


def make_gateway(settings: Settings, sessions: Any) -> Any:
    """The SSH gateway for these settings (started by the app's lifespan, or alone)."""
    from gpuyard.gateway.server import Gateway

    first, last = settings.ssh_ports
    return Gateway(sessions, settings.data_dir, public_host=settings.ssh_host,
                   listen_host=settings.ssh_listen, first_port=first,
                   last_port=last, default_docker_url=settings.docker_url)


def create_app(settings: Settings, *, run_migrations: bool = True, worker: bool = True) -> FastAPI:
    """The API and console; with ``worker`` (the all-in-one default) also the worker role: the
    background reconciler and the periodic jobs (``gpuyard serve --no-worker`` leaves them to
    ``gpuyard worker`` processes); with ``settings.gateway`` also the SSH gateway."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # what the background threads get, all together, to end at shutdown
        app.state.stop_budget = StopBudget(settings.graceful_seconds)
        app.state.leases.start()
        if app.state.gateway is not None:
            app.state.gateway.start()
        try:
            yield
        finally:
            if app.state.gateway is not None:
                app.state.gateway.stop(timeout=stop_budget(app))
            app.state.leases.stop(timeout=stop_budget(app))

    app = _api(lifespan)
    secret = _open(app, settings, run_migrations, worker)
    install_accounting(app)  # credit on every session; the out-of-credit job beside the reconciler
    install_error_handlers(app)
    install_console(app, secret)
    app.state.answers = AnswerCache()
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.add_middleware(StripTrailingSlash)
    app.add_middleware(RequestLimits, max_body=settings.max_body)  # outermost: before any work
    return app


def create_worker_app(settings: Settings, *, run_migrations: bool = True) -> FastAPI:
    """``gpuyard worker``: the reconciler and the periodic jobs, and only ``/healthz``,
    ``/readyz`` and ``/metrics`` over HTTP (for probes and Prometheus)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.stop_budget = StopBudget(settings.graceful_seconds)
        app.state.leases.start()
        try:
            yield
        finally:
            app.state.leases.stop(timeout=stop_budget(app))

    app = FastAPI(lifespan=lifespan, title="gpuyard worker", version=gpuyard.__version__,
                  redirect_slashes=False, default_response_class=JSONAnswer,
                  openapi_url=None, docs_url=None, redoc_url=None)
    for path, endpoint in (("/healthz", meta.healthz), ("/readyz", meta.readyz),
                           ("/metrics", meta.metrics)):
        app.add_api_route(path, endpoint, methods=["GET"])
    _open(app, settings, run_migrations, worker=True)
    install_accounting(app)
    install_error_handlers(app)
    return app


def _open(app: FastAPI, settings: Settings, run_migrations: bool, worker: bool) -> Any:
    """What every role holds: the database (migrated and initialized under the start-up lock),
    the runtimes, the metrics, the leases and the reconciler; with ``worker`` the reconciler's
    background sweep and the periodic jobs run while the app runs. Returns the server secret."""
    secret = load_server_secret(settings.data_dir)  # first: a missing secret stops us early
    engine = make_engine(settings.db_url)
    app.state.settings = settings
    app.state.worker = worker
    app.state.engine = engine
    app.state.sessions = make_sessionmaker(engine)
    app.state.version = gpuyard.__version__
    app.state.secret_source = secret.source
    app.state.key_usage = KeyUsage(app.state.sessions)
    install_cipher(engine, Cipher.from_secret(secret))
    with startup_lock(engine):  # replicas starting together migrate and initialize in turn
        if run_migrations:
            migrate(engine)
        with engine.begin() as conn:
            template_rows.setup_generation(conn)
        with transaction(app.state.sessions) as session:
            app.state.installation = installation_id(session)
            encrypted = encrypt_plain_values(session, Base.metadata)
            template_rows.fill_missing(session)
    if encrypted:
        log.info("encrypted %d stored credential(s) that were kept in plain text", encrypted)
    shared = engine.dialect.name != "sqlite"  # several processes may act on one fleet
    app.state.runtimes = {
        "simulated": SimulatedRuntime(boot_seconds=settings.sim_boot_seconds, shared=shared),
        "docker": DockerRuntime(settings.docker_url, installation=app.state.installation),
    }
    metrics = app.state.metrics = Metrics()
    metrics.watch_instances(app.state.sessions)
    app.state.leases = leases_for(app.state.sessions, holder_name(), settings.lease_seconds,
                                  on_takeover=lambda _claim: metrics.lease_takeovers.inc())
    app.state.reconciler = Reconciler(
        app.state.sessions, app.state.runtimes, poll_seconds=settings.reconcile_seconds,
        leases=app.state.leases, metrics=metrics, per_engine=settings.engine_concurrency,
    )
    app.state.gateway = make_gateway(settings, app.state.sessions) if settings.gateway else None
    if app.state.gateway is not None:
        app.state.reconciler.on_wake.append(app.state.gateway.wake)
    if worker:
        install_worker(app)
        install_maintenance(app)  # bids stop when a machine's maintenance window starts
    return secret
