"""Reconciler sweep benchmark: what a worker's sweeps cost with 1,000 and 10,000 instances over
100 and 1,000 machines (simulated runtime). A benchmark script, not a test: it asserts nothing.

For each (instances, machines) case, on a fresh database (a SQLite file in a temp dir, or with
``--db`` a PostgreSQL URL whose tables are dropped and recreated), the script stores the
machines and the instances directly (all running, recorded as applied, each with a simulated
container reference), then builds a worker's reconciler as ``gpuyard worker`` does (database
leases on PostgreSQL, none on SQLite; the shared simulated runtime, which adopts the containers
it is asked about as if another process had made them) and times:

1. **idle sweep**: the background sweep's step (``Reconciler.dispatch``: find the instances that
   need work, queue them) when none does, ``--reps`` times; instances touched must be 0;
2. **refresh**: the periodic status refresh (``Reconciler.refresh``: every live instance's
   recorded status against its engine's, one ``states`` call per engine), once with every
   instance as recorded (touched 0; the first refresh, which adopts every simulated container,
   is shown apart), then after ``--changed`` instances' containers were lost (touched: those;
   the time is the refresh's, the ones it queued are made again afterwards);
3. **sweep with work**: ``--changed`` instances asked to stop (intended status "stopped", as
   ``PUT /api/v0/instances/{id}/`` does), then one synchronous ``Reconciler.sweep`` that stops
   them all (each one a lease claim with its snapshot, the runtime call, the record, the lease
   given back); the time, instances touched and instances per second.

Run (from the project root)::

    .venv/bin/python bench/cluster_sweep.py                        # SQLite, the four cases
    .venv/bin/python bench/cluster_sweep.py --db postgresql+psycopg://u@host/db   # DROPS tables
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import insert, update

from gpuyard.control.leases import leases_for
from gpuyard.periodic import holder_name
from gpuyard.reconciler import Reconciler
from gpuyard.runtimes.simulated import SimulatedRuntime
from gpuyard.store.db import make_engine, make_sessionmaker, migrate, transaction
from gpuyard.store.models import Base, Instance, Machine, User

CASES = ((1_000, 100), (10_000, 100), (1_000, 1_000), (10_000, 1_000))


@contextmanager
def fresh_database(base_url: str | None) -> Iterator[str]:
    if base_url is None:
        folder = tempfile.mkdtemp(prefix="gpuyard-sweep-")
        url = f"sqlite:///{folder}/bench.db"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        try:
            yield url
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    engine = make_engine(base_url)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    migrate(engine)
    engine.dispose()
    yield base_url


def fill(engine, instances: int, machines: int) -> None:
    now = time.time()
    per = -(-instances // machines)  # GPUs per machine: room for every instance
    with engine.begin() as conn:
        conn.execute(insert(User), [{"id": 1, "username": "bench", "created_at": now}])
        conn.execute(insert(Machine), [
            {"id": m + 1, "hostname": f"m{m}", "gpu_name": "RTX 4090", "num_gpus": per,
             "gpu_ram": 24, "cpu_cores": 32, "cpu_ram": 256, "disk_space": 10_000, "inet_down": 1000,
             "inet_up": 1000, "dph_per_gpu": 0.5, "min_bid_per_gpu": 0.1, "reliability": 1.0,
             "specs": {}, "created_at": now, "updated_at": now} for m in range(machines)])
        made = int(now * 1000)
        rows = []
        for i in range(instances):
            machine = i % machines
            rows.append({
                "id": i + 1, "owner_id": 1, "machine_id": machine + 1, "gpus": str(i // machines),
                "num_gpus": 1, "dph_base": 0.5, "storage_cost": 0.1, "image": "busybox",
                "tag": "latest", "disk_space": 10, "runtime": "simulated", "start_date": now,
                "created_at": now, "updated_at": now, "actual_status": "running",
                "intended_status": "running", "cur_state": "running", "generation": 1,
                "applied_generation": 1, "runtime_ref": f"sim-{i + 1}-{i:08x}-{made:x}",
                "port_map": {}, "launch": {}, "extra_filters": {}, "status_msg": "running",
            })
            if len(rows) == 5000:
                conn.execute(insert(Instance), rows)
                rows = []
        if rows:
            conn.execute(insert(Instance), rows)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def run_case(url: str, instances: int, machines: int, reps: int, changed: int) -> dict:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    fill(engine, instances, machines)
    runtime = SimulatedRuntime(boot_seconds=0, shared=True)
    reconciler = Reconciler(sessions, {"simulated": runtime},
                            leases=leases_for(sessions, holder_name()))
    out: dict = {"case": f"{instances:,} inst / {machines:,} machines"}

    times = []
    touched = 0
    for _ in range(reps):
        start = time.perf_counter()
        touched += reconciler.dispatch()
        times.append(time.perf_counter() - start)
    out["idle"] = (statistics.median(times), touched)

    start = time.perf_counter()
    reconciler.refresh()  # the first one adopts every container (another process made them)
    out["adopt"] = time.perf_counter() - start
    start = time.perf_counter()
    queued = reconciler.refresh()
    out["refresh"] = (time.perf_counter() - start, queued)
    lost = list(range(1, instances + 1, instances // changed))[:changed]
    with runtime._lock:
        for i in lost:  # the engine lost those containers (a reboot)
            runtime._boxes = {r: b for r, b in runtime._boxes.items()
                              if not r.startswith(f"sim-{i}-")}
    runtime.shared = False  # (no adopting them again)
    start = time.perf_counter()
    queued = reconciler.refresh()
    refresh_lost = time.perf_counter() - start
    reconciler.slots.close()
    reconciler = Reconciler(sessions, {"simulated": runtime},
                            leases=leases_for(sessions, holder_name()))
    out["refresh_lost"] = (refresh_lost, queued)
    reconciler.sweep()  # (the lost ones made again, before the next figure)
    runtime.shared = True

    stop = list(range(2, instances + 1, instances // changed))[:changed]
    with transaction(sessions) as session:
        session.execute(update(Instance).where(Instance.id.in_(stop)).values(intended_status="stopped"))
    start = time.perf_counter()
    done = reconciler.sweep()
    took = time.perf_counter() - start
    out["work"] = (took, done)
    reconciler.slots.close()
    engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", help="a PostgreSQL URL (its tables are DROPPED and recreated per case)")
    p.add_argument("--reps", type=int, default=20, help="idle sweeps timed per case")
    p.add_argument("--changed", type=int, default=100, help="instances that need work")
    args = p.parse_args(argv)
    backend = "PostgreSQL" if args.db else "SQLite"
    print(f"reconciler sweeps on {backend}, simulated runtime, {args.changed} instances changed")
    print(f"{'case':<28} {'idle sweep (touched)':>22} {'adopt':>11} {'refresh (touched)':>22} "
          f"{'refresh, lost (touched)':>26} {'sweep with work (touched, /s)':>34}")
    for instances, machines in CASES:
        with fresh_database(args.db) as url:
            r = run_case(url, instances, machines, args.reps, args.changed)
        (idle, idle_n), (ref, ref_n), (lost, lost_n), (work, work_n) = (
            r["idle"], r["refresh"], r["refresh_lost"], r["work"])
        print(f"{r['case']:<28} {ms(idle)} ({idle_n:>5}) {ms(r['adopt'])} {ms(ref)} ({ref_n:>5}) "
              f"{ms(lost)} ({lost_n:>5})    {ms(work)} ({work_n:>5}, {work_n / work:,.0f}/s)",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
