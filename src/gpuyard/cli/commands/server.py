"""serve, worker, admin create-user and recommend-template: commands that open the database themselves
(admin load-fleet is in fleet.py)."""

from __future__ import annotations

import argparse
import sys

from gpuyard.cli.output import fail


def _in_database(db: str | None, work):
    """Run ``work(session)`` in one transaction on the (migrated) database of ``--db``."""
    from gpuyard.settings import Settings
    from gpuyard.store.db import make_engine, make_sessionmaker, migrate, startup_lock, transaction

    engine = make_engine(Settings.build(db_url=db).db_url)
    try:
        with startup_lock(engine):
            migrate(engine)
        with transaction(make_sessionmaker(engine)) as session:
            return work(session)
    finally:
        engine.dispose()


def create_user(args: argparse.Namespace) -> int:
    from gpuyard.errors import GpuyardError
    from gpuyard.services.accounts.users import create_user as make_user

    try:
        _user, key = _in_database(args.db, lambda s: make_user(s, args.name, admin=args.admin))
    except GpuyardError as exc:
        return fail(exc.msg)
    print(key)
    return 0


def recommend_template(args: argparse.Namespace) -> int:
    from gpuyard.errors import GpuyardError
    from gpuyard.services.catalog.templates import set_recommended

    try:
        row = _in_database(args.db, lambda s: set_recommended(s, args.template_id, not args.off))
    except GpuyardError as exc:
        return fail(exc.msg)
    state = "on" if row["recommended"] else "off"
    print(f"Template {row['id']} ({row['name']}) is now {state} the recommended list.")
    return 0


def _ssh_ports(text: str) -> tuple[int, int]:
    from gpuyard.gateway.ports import candidates, ephemeral_range, parse_range

    first, last = parse_range(text)
    if not candidates(first, last):
        low, high = ephemeral_range()
        raise ValueError(f"--ssh-ports {text}: every port lies in the kernel's ephemeral range "
                         f"({low}-{high}), which outgoing connections use; pick ports below it")
    return first, last


def _settings(args: argparse.Namespace, **extra):
    from gpuyard.settings import Settings

    return Settings.build(db_url=args.db, host=args.host, port=args.port, runtime=args.runtime,
                          docker_url=args.docker_url, graceful_seconds=args.graceful,
                          credit=args.credit or None, **extra)


def _claim_database(db_url: str, role: str) -> str | None:
    """SQLite: this process becomes the only one on the file (None), or why it may not run.
    A role without the worker cannot run on SQLite: no worker could join it."""
    from gpuyard.store.db import DatabaseInUse, claim_sqlite

    if role == "api" and db_url.startswith("sqlite"):
        return ("'serve --no-worker' needs PostgreSQL: on SQLite one process serves the database "
                "file, so it must also be the worker (run 'gpuyard serve' without --no-worker, "
                "or use --db postgresql+psycopg://…)")
    try:
        claim_sqlite(db_url)
    except DatabaseInUse as exc:
        return str(exc)
    return None


def serve(args: argparse.Namespace) -> int:
    from gpuyard.api import serving
    from gpuyard.api.app import create_app

    try:
        ssh_ports = _ssh_ports(args.ssh_ports)
        settings = _settings(args, max_body=args.max_body, gateway=not args.no_gateway,
                             ssh_host=args.ssh_host, ssh_listen=args.ssh_listen,
                             ssh_ports=ssh_ports)
    except ValueError as exc:
        return fail(str(exc))
    problem = _claim_database(settings.db_url, "api" if args.no_worker else "all")
    if problem:
        return fail(problem)
    from gpuyard.server_secret import ServerSecretError

    print(f"gpuyard: database {settings.db_url}", file=sys.stderr)
    try:
        app = create_app(settings, worker=not args.no_worker)
    except ServerSecretError as exc:
        return fail(str(exc))
    print(f"gpuyard: server secret from {app.state.secret_source}", file=sys.stderr)
    if app.state.gateway is not None:
        _announce(app.state.gateway)
    if args.no_worker:
        print("gpuyard: API and console only (the reconciler and periodic jobs run in "
              "'gpuyard worker' processes)", file=sys.stderr)
    if settings.credit:
        print("gpuyard: credit enforced (launches need a positive balance)", file=sys.stderr)
    if args.demo:
        from gpuyard.services.demo import seed_demo
        from gpuyard.services.market.fleet import fleet_size
        from gpuyard.store.db import transaction

        with transaction(app.state.sessions) as session:
            key, count = seed_demo(session)
            machines, gpus = fleet_size(session)
        print(f"Demo data ready: {count} public templates, user 'demo'.")
        print(f"Demo fleet: {machines} machines with {gpus} GPUs (simulated runtime).")
        print(f"Demo API key: {key}")
        print(f"Try: gpuyard --url http://{settings.host}:{settings.port} --api-key {key} "
              "search templates")
        print(f"Then: gpuyard --url http://{settings.host}:{settings.port} --api-key {key} "
              "search offers 'num_gpus=1'")
        sys.stdout.flush()
    serving.run(app, settings)
    return 0


def _announce(gateway) -> None:
    print(f"gpuyard: SSH gateway at {gateway.public_host}, ports {gateway.first_port}-"
          f"{gateway.last_port} (listening on {gateway.listen_host})", file=sys.stderr)
    print(f"gpuyard: SSH host key {gateway.fingerprint}", file=sys.stderr)


def gateway(args: argparse.Namespace) -> int:
    """The SSH gateway alone, on the database of ``--db`` (another process serves the API).
    SIGTERM ends it as SIGINT does, from the start (``podman stop`` sends it to a container's
    first process, which would otherwise ignore it); once it serves, both close its listeners
    and it exits 0."""
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    from gpuyard.api.app import make_gateway
    from gpuyard.server_secret import ServerSecretError, load_server_secret
    from gpuyard.settings import Settings
    from gpuyard.store.crypto import Cipher, install_cipher
    from gpuyard.store.db import make_engine, make_sessionmaker, migrate, startup_lock

    try:
        ssh_ports = _ssh_ports(args.ssh_ports)
    except ValueError as exc:
        return fail(str(exc))
    settings = Settings.build(db_url=args.db, docker_url=args.docker_url, gateway=True,
                              ssh_host=args.ssh_host, ssh_listen=args.ssh_listen,
                              ssh_ports=ssh_ports)
    try:
        secret = load_server_secret(settings.data_dir)
    except ServerSecretError as exc:
        return fail(str(exc))
    engine = make_engine(settings.db_url)
    install_cipher(engine, Cipher.from_secret(secret))
    with startup_lock(engine):
        migrate(engine)
    gw = make_gateway(settings, make_sessionmaker(engine))
    print(f"gpuyard: database {settings.db_url}", file=sys.stderr)
    try:
        _announce(gw)
        sys.stderr.flush()
        gw.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()
    return 0


def worker(args: argparse.Namespace) -> int:
    from gpuyard.api import serving
    from gpuyard.api.app import create_worker_app
    from gpuyard.server_secret import ServerSecretError

    try:
        settings = _settings(args)
    except ValueError as exc:
        return fail(str(exc))
    problem = _claim_database(settings.db_url, "worker")
    if problem:
        return fail(problem)
    print(f"gpuyard worker: database {settings.db_url}", file=sys.stderr)
    try:
        app = create_worker_app(settings)
    except ServerSecretError as exc:
        return fail(str(exc))
    print(f"gpuyard worker: server secret from {app.state.secret_source}; /metrics on "
          f"http://{settings.host}:{settings.port}", file=sys.stderr)
    serving.run(app, settings)
    return 0
