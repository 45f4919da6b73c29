"""What the SSH gateway's key lookup costs: ``authorized_keys(session, instance_id)`` (called on
every authentication) in its own read transaction, against a floor measured in the same run: a
read transaction on the same engine that runs ``SELECT 1`` (a benchmark script, not a test: it
never fails on speed).

The database (a fresh SQLite file, or ``--db URL`` whose gpuyard tables are DROPPED) holds
``--users`` users with ``--keys`` account keys each, ``--instances`` instances per user, and
``--attached`` keys attached to each instance. Before timing the script checks that a lookup
returns the expected number of lines (account keys + attached keys) and exits 1 otherwise.
It prints the median and p99 of ``--calls`` lookups (instances in turn) and of the floor.

Run (from the project root)::

    .venv/bin/python bench/authorized_keys.py
    .venv/bin/python bench/authorized_keys.py --keys 100 --attached 100
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import asyncssh
from sqlalchemy import insert, text

from gpuyard.services.access.ssh_keys import authorized_keys
from gpuyard.store.db import make_engine, make_sessionmaker, migrate, transaction
from gpuyard.store.models import Base, Instance, InstanceSshKey, Machine, SshKey, User


def fill(sessions, users: int, keys: int, instances: int, attached: int) -> list[int]:
    pool = [asyncssh.generate_private_key("ssh-ed25519") for _ in range(max(keys, attached))]
    lines = [k.export_public_key().decode().strip() for k in pool]
    prints = [k.get_fingerprint("sha256") for k in pool]
    now = time.time()
    with transaction(sessions) as s:
        machine = Machine(hostname="m", gpu_name="RTX 4090", num_gpus=8, gpu_ram=24.0, cpu_cores=16,
                          cpu_ram=64.0, disk_space=1000.0, inet_down=1.0, inet_up=1.0, dph_per_gpu=0.4,
                          min_bid_per_gpu=0.1, storage_cost=0.1, reliability=0.99, geolocation="SE",
                          specs={}, created_at=now, updated_at=now)
        s.add(machine)
        s.flush()
        ids: list[int] = []
        for u in range(users):
            user = User(username=f"u{u}", created_at=now)
            s.add(user)
            s.flush()
            if keys:
                s.execute(insert(SshKey), [
                    {"user_id": user.id, "public_key": lines[k], "fingerprint": prints[k], "created_at": now}
                    for k in range(keys)])
            for _ in range(instances):
                inst = Instance(owner_id=user.id, machine_id=machine.id, gpus="0", num_gpus=1, dph_base=0.4,
                                storage_cost=0.1, image="busybox", tag="latest", disk_space=10.0,
                                runtime="simulated", runtype="ssh_direc ssh_proxy", start_date=now,
                                created_at=now, updated_at=now)
                s.add(inst)
                s.flush()
                ids.append(inst.id)
                if attached:
                    s.execute(insert(InstanceSshKey), [
                        {"instance_id": inst.id, "public_key": lines[k], "fingerprint": prints[k] + "x",
                         "created_at": now} for k in range(attached)])
    return ids


def timed(fn, calls: int) -> list[float]:
    out = []
    for i in range(calls):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def show(name: str, samples: list[float]) -> float:
    ordered = sorted(samples)
    median = statistics.median(ordered)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(f"{name:<34} median {median * 1e6:8.0f} µs   p99 {p99 * 1e6:8.0f} µs")
    return median


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", help="SQLAlchemy URL (its gpuyard tables are dropped); default a temp SQLite")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--keys", type=int, default=5, help="account keys per user")
    ap.add_argument("--instances", type=int, default=20, help="instances per user")
    ap.add_argument("--attached", type=int, default=2, help="keys attached to each instance")
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='gpuyard-bench-')}/bench.db"
    engine = make_engine(url)
    if args.db:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate(engine)
    sessions = make_sessionmaker(engine)
    ids = fill(sessions, args.users, args.keys, args.instances, args.attached)
    with transaction(sessions, write=False) as s:
        got = len(authorized_keys(s, ids[0]))
    if got != args.keys + args.attached:
        print(f"broken set-up: {got} lines for an instance, expected {args.keys + args.attached}")
        return 1
    print(f"{engine.dialect.name}: {args.users} users x {args.keys} account keys, {len(ids)} instances "
          f"x {args.attached} attached keys; {args.calls} calls each")

    def lookup(i: int) -> None:
        with transaction(sessions, write=False) as s:
            authorized_keys(s, ids[i % len(ids)])

    def floor(_i: int) -> None:
        with transaction(sessions, write=False) as s:
            s.execute(text("SELECT 1"))

    timed(lookup, 100)  # warm-up
    timed(floor, 100)
    a = show("authorized_keys (own transaction)", timed(lookup, args.calls))
    b = show("floor: SELECT 1 (own transaction)", timed(floor, args.calls))
    print(f"lookup / floor: {a / b:.1f}x")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
