"""What one look of the SSH gateway costs, full and quick, with N live instances.

This is a benchmark script, not a test: it prints figures and checks nothing.

The gateway keeps its listeners in step with the instance rows by looking at the database
(docs/access.md, "Ports in the database"): a **full look** reads every live instance's port (at
start and at most every 10 s), a **quick look** only the rows that may have changed (after a
burst of launches, and between full looks). The script rents ``--instances`` simulated
instances on a fresh database (a SQLite file, or ``--db URL``: PostgreSQL tables are
**dropped**), starts a gateway on ports 20000-31999 and lets its first look open a listener for
each, then prints the CPU time of the process per look (the gateway's thread and the database
driver), for each kind of look:

- with nothing new (the floor of a look);
- with one new instance to give a port to (its listener opened and its port recorded).

    .venv/bin/python bench/gateway_looks.py --instances 2000
    .venv/bin/python bench/gateway_looks.py --instances 5000 --db postgresql+psycopg://user@host/db
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from rental_path import renter  # noqa: E402
from rentals import SSH_PORTS, fill, fresh_database  # noqa: E402

from gpuyard.api.app import create_app  # noqa: E402
from gpuyard.gateway.ports import parse_range  # noqa: E402
from gpuyard.gateway.server import Gateway  # noqa: E402
from gpuyard.settings import Settings  # noqa: E402

LOOKS = 20


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", help="database URL (default: a SQLite file in a temp dir); DROPS its tables")
    p.add_argument("--instances", type=int, default=2000,
                   help="live instances (default 2000; ports 20000-31999 serve 6,000 at most)")
    args = p.parse_args(argv)
    first, last = parse_range(SSH_PORTS)

    tmp = tempfile.mkdtemp(prefix="gpuyard-gateway-looks-")
    url = args.db or f"sqlite:///{tmp}/bench.db"
    fresh_database(url)
    key = fill(url, args.instances + 2 * LOOKS + 10)
    app = create_app(Settings.build(db_url=url, sim_boot_seconds=0, data_dir=tmp))
    sessions = app.state.sessions
    offers, rent_offer = renter(app, key)
    todo = iter(offers)

    def rent() -> None:
        rent_offer(next(todo))

    started = time.perf_counter()
    for done in range(args.instances):
        rent()
        if done and done % 1000 == 0:
            print(f"  {done} instances rented ({time.perf_counter() - started:.0f} s)", flush=True)
    gateway = Gateway(sessions, Path(tmp) / "gateway", public_host="127.0.0.1", first_port=first,
                      last_port=last, poll_seconds=3600)  # (looks only when asked to)
    gateway.start()
    try:
        started = time.perf_counter()
        gateway.sync_now(timeout=600)
        print(f"database {app.state.engine.dialect.name}; the first look opened "
              f"{len(gateway.listening())} listeners in {time.perf_counter() - started:.1f} s")

        def look(full: bool) -> None:
            asyncio.run_coroutine_threadsafe(gateway._sync(full=full), gateway._loop).result(60)

        for full in (True, False):
            cpu = time.process_time()
            for _ in range(LOOKS):
                look(full)
            idle = (time.process_time() - cpu) / LOOKS
            new = []
            for _ in range(LOOKS):
                rent()
                cpu = time.process_time()
                look(full)
                new.append(time.process_time() - cpu)
            print(f"{'full' if full else 'quick'} look, {len(gateway.listening())} listening: "
                  f"nothing new {1000 * idle:.2f} ms of CPU; one new instance "
                  f"{1000 * sorted(new)[len(new) // 2]:.2f} ms (median of {LOOKS})")
    finally:
        gateway.stop()
        app.state.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
