"""What a rental's transaction costs in-process, against the same number of Core statements.

This is a benchmark script, not a test: it prints figures and checks nothing.

No HTTP and no client: the script runs what a ``PUT /api/v0/asks/{id}/`` runs on its worker
thread (api.deps: the key check, then ``instances.rent_at_once`` with the first reconcile in
the rental's transaction, then the settle) on distinct 1-GPU offers of a fresh database (a
SQLite file, or ``--db URL``: PostgreSQL tables are **dropped**), simulated runtime. It prints,
per rental:

1. **CPU**: the mean, and the best batch of 100 (the machine's load only ever adds to a batch);
2. **statements**: what the rental sends to the database (BEGIN and COMMIT included);
3. **Python calls**: cProfile's count over 100 rentals (a count: it does not move with the
   machine's speed, so it compares two versions of the code on a noisy day);
4. **floor**: a transaction of as many SQLAlchemy Core statements as the rental sends, each a
   select of one row by primary key (alternately a machine's and an offer's), without the ORM:
   what the database work would cost with nothing around it.

The ratio of 1 to 4 is what the ORM and gpuyard's own logic add (bench/README.md, rentals).

    .venv/bin/python bench/rental_path.py
    .venv/bin/python bench/rental_path.py --db postgresql+psycopg://user@host/db   # DROPS its tables
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import bindparam, event, select

sys.path.insert(0, str(Path(__file__).parent))
from rentals import BODY, fill, fresh_database, one_gpu_offers  # noqa: E402

from gpuyard.api.app import create_app  # noqa: E402
from gpuyard.services.accounts.users import authenticate_key  # noqa: E402
from gpuyard.services.rentals import instances  # noqa: E402
from gpuyard.services.rentals.settle import settle_here  # noqa: E402
from gpuyard.settings import Settings  # noqa: E402
from gpuyard.store.db import transaction  # noqa: E402
from gpuyard.store.models import Ask, Machine  # noqa: E402
from gpuyard.wire.base import parse  # noqa: E402
from gpuyard.wire.instances import LaunchRequest  # noqa: E402

BATCH = 100
WARM_UP = 50


def library(filename: str) -> str:
    """Where a profiled function lives: ``sqlalchemy/orm``, ``gpuyard``, ``builtins``, …"""
    if "sqlalchemy/" in filename:
        return "sqlalchemy/" + filename.split("sqlalchemy/", 1)[1].split("/", 1)[0]
    if "/gpuyard/" in filename:
        return "gpuyard"
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    return "builtins" if filename == "~" else "standard library"


def renter(app, key: str) -> tuple[list[int], Callable[[int], None]]:
    """The 1-GPU offers of ``app``'s database, in id order, and ``rent(offer id)``: what a
    ``PUT /api/v0/asks/{id}/`` runs on its worker thread (api.deps._call) with the API key
    ``key``; SystemExit when the offer was not rented."""
    sessions, reconciler = app.state.sessions, app.state.reconciler
    offers = one_gpu_offers(app.state.engine)
    body = parse(LaunchRequest, BODY)
    then = settle_here(reconciler)

    def rent(ask_id: int) -> None:
        with transaction(sessions, write=True) as session:
            _api_key, user = authenticate_key(session, key)
            outcome = instances.rent_at_once(session, user, ask_id, body, "simulated",
                                             reconciler.checks_images, reconciler.act_in)
        then(outcome)
        if outcome.instance_id is None or outcome.refusal is not None:
            raise SystemExit(f"offer {ask_id} was not rented: {outcome}")

    return offers, rent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", help="database URL (default: a SQLite file in a temp dir); DROPS its tables")
    p.add_argument("--rentals", type=int, default=600, help="timed rentals (default 600)")
    args = p.parse_args(argv)
    timed = max(BATCH, args.rentals // BATCH * BATCH)

    tmp = tempfile.mkdtemp(prefix="gpuyard-rental-path-")
    url = args.db or f"sqlite:///{tmp}/bench.db"
    fresh_database(url)
    key = fill(url, WARM_UP + timed + BATCH + 10)
    app = create_app(Settings.build(db_url=url, sim_boot_seconds=0, data_dir=tmp))
    engine = app.state.engine
    offers, rent = renter(app, key)

    sent = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args):
        sent[0] += 1

    @event.listens_for(engine, "commit")
    def _commit(_conn):
        sent[0] += 1  # (BEGIN is a statement of its own on SQLite: counted above)

    todo = iter(offers)
    for _ in range(WARM_UP):
        rent(next(todo))

    batches = []
    sent[0] = 0
    for _ in range(timed // BATCH):
        started = time.process_time()
        for _ in range(BATCH):
            rent(next(todo))
        batches.append((time.process_time() - started) / BATCH)
    statements = sent[0] / timed

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(BATCH):
        rent(next(todo))
    profile.disable()
    stats = pstats.Stats(profile)
    by_library: collections.Counter[str] = collections.Counter()
    for (filename, _line, _name), (_cc, calls, *_rest) in stats.stats.items():  # type: ignore[attr-defined]
        by_library[library(filename)] += calls

    # the floor: as many Core selects by primary key in one transaction, no ORM
    machines, asks = Machine.__table__, Ask.__table__
    by_id = [select(machines).where(machines.c.id == bindparam("id")),
             select(asks).where(asks.c.id == bindparam("id"))]
    count = max(1, round(statements) - 2)  # (BEGIN and COMMIT come with the transaction)
    floors = []
    with engine.connect() as conn:
        for _ in range(3):
            started = time.process_time()
            for i in range(BATCH):
                with conn.begin():
                    for k in range(count):
                        conn.execute(by_id[k % 2], {"id": (i + k) % 100 + 1}).all()
            floors.append((time.process_time() - started) / BATCH)
    engine.dispose()

    mean, best, floor = sum(batches) / len(batches), min(batches), min(floors)
    print(f"database {engine.dialect.name}; {timed} timed rentals, in batches of {BATCH}")
    print(f"rental:  CPU {1000 * mean:.2f} ms mean, {1000 * best:.2f} ms best batch; "
          f"{statements:.1f} statements; {stats.total_calls / BATCH:,.0f} Python calls")  # type: ignore[attr-defined]
    print("         calls by library: " + ", ".join(
        f"{name} {calls / BATCH:,.0f}" for name, calls in by_library.most_common(8)))
    print(f"floor:   CPU {1000 * floor:.2f} ms for a transaction of {count} Core selects by id "
          f"(+ BEGIN and COMMIT); the rental's best batch is {best / floor:.1f}× that")
    return 0


if __name__ == "__main__":
    sys.exit(main())
