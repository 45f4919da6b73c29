"""serve and admin create-user: the commands that open the database themselves."""

from __future__ import annotations

import argparse
import sys

from gpuyard.cli.output import fail


def create_user(args: argparse.Namespace) -> int:
    from gpuyard.errors import GpuyardError
    from gpuyard.services.users import create_user as make_user
    from gpuyard.settings import Settings
    from gpuyard.store.db import make_engine, make_sessionmaker, migrate, transaction

    settings = Settings.build(db_url=args.db)
    engine = make_engine(settings.db_url)
    try:
        migrate(engine)
        with transaction(make_sessionmaker(engine)) as session:
            _user, key = make_user(session, args.name, admin=args.admin)
    except GpuyardError as exc:
        return fail(exc.msg)
    finally:
        engine.dispose()
    print(key)
    return 0


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gpuyard.api.app import create_app
    from gpuyard.settings import Settings

    settings = Settings.build(db_url=args.db, host=args.host, port=args.port, runtime=args.runtime)
    print(f"gpuyard: database {settings.db_url}", file=sys.stderr)
    app = create_app(settings)
    if args.demo:
        from gpuyard.services.demo import seed_demo
        from gpuyard.store.db import transaction

        with transaction(app.state.sessions) as session:
            key, count = seed_demo(session)
        print(f"Demo data ready: {count} public templates, user 'demo'.")
        print(f"Demo API key: {key}")
        print(f"Try: gpuyard --url http://{settings.host}:{settings.port} --api-key {key} "
              "search templates")
        sys.stdout.flush()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0
