"""Cluster benchmark: launches per second with one and with two API replicas, and the lease
takeover time after kill -9 of a worker. A benchmark script, not a test: it asserts nothing.

Everything runs as real processes on one PostgreSQL database (``--db``; its tables are DROPPED):
``gpuyard serve --no-worker`` API replicas and ``gpuyard worker`` processes, with the simulated
runtime (boot time 0; machines shared by the processes). The fleet is ``--machines`` machines of 8
GPUs each, loaded with ``gpuyard admin load-fleet``.

1. **Launches/s**, for 1 and then 2 API replicas (and one worker; a fresh database each time):
   ``--clients`` client threads, each with its own machines, launch for ``--seconds``: read the
   machine's free one-GPU offer id from the database (``asks``), then ``PUT /api/v0/asks/{id}/``
   (the official client's rental) against the replicas in turn. Each answer is the rental
   committed and its container made (the API reconciles the new instance before answering, under
   its lease). Printed: launches/s, and the median and 95th percentile answer time.
2. **Takeover after kill -9**, for each ``--lease-seconds``: two workers and one API; ``--batch``
   instances are launched, then all asked to stop at once (one UPDATE of their intended status,
   as many ``PUT /api/v0/instances/{id}/`` would), so both workers sweep them, each holding the
   leases of the instances it is working on. As soon as one worker is seen holding a lease it
   is killed with SIGKILL.
   The instances whose leases it held (read right after the kill: a lease is given back in the
   transaction that records the work, so those are its work in flight) wait for those leases to
   expire, then the other worker takes them over. Printed: how many leases
   the killed worker held, the time from the kill to the last of those instances stopped (the
   takeover time), and the survivor's ``gpuyard_lease_takeovers_total``.

Run (from the project root; 2 cores shared with other work make every figure noisy)::

    .venv/bin/python bench/cluster_launch.py --db postgresql+psycopg://u@host/db   # DROPS tables
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from gpuyard.store.db import make_engine
from gpuyard.store.models import Base

GPUYARD = [sys.executable, "-m", "gpuyard.cli.main"]
BODY = {"client_id": "me", "image": "busybox", "env": {}, "price": None, "disk": 1, "label": None,
        "onstart": None, "force": False, "template_hash_id": None, "runtype": "ssh"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, db: str, env: dict[str, str]):
        self.db, self.env = db, env
        self.procs: dict[str, subprocess.Popen] = {}
        self.urls: dict[str, str] = {}

    def start(self, name: str, *args: str) -> None:
        port = free_port()
        self.procs[name] = subprocess.Popen(
            [*GPUYARD, *args, "--port", str(port), "--db", self.db], env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.urls[name] = f"http://127.0.0.1:{port}"

    def ready(self) -> None:
        for name, url in self.urls.items():
            deadline = time.time() + 120
            while True:
                try:
                    if httpx.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.time() > deadline or self.procs[name].poll() is not None:
                    raise SystemExit(f"{name} did not start")
                time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def fresh(db: str, env: dict[str, str], machines: int) -> str:
    """Empty the database, load the fleet, make a user; its API key."""
    engine = make_engine(db)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        conn.exec_driver_sql("DROP SEQUENCE IF EXISTS template_generation")
    engine.dispose()
    fleet = Path(env["XDG_DATA_HOME"]) / "fleet.yaml"
    fleet.write_text("machines:" + "".join(f"""
  - hostname: bench-{n}
    gpu_name: RTX 4090
    num_gpus: 8
    gpu_ram: 24
    cpu_cores: 64
    cpu_ram: 512
    disk_space: 4000
    inet_down: 1000
    inet_up: 1000
    dph_per_gpu: 0.5
    min_bid_per_gpu: 0.1""" for n in range(machines)))
    for args in (("admin", "load-fleet", str(fleet)), ("admin", "create-user", "bench")):
        done = subprocess.run([*GPUYARD, *args, "--db", db], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
    return done.stdout.strip()


def launch_load(db: str, bases: list[str], key: str, clients: int, seconds: float
                ) -> tuple[int, list[float], list[int]]:
    engine = create_engine(db, pool_size=clients)
    with engine.connect() as conn:
        machine_ids = list(conn.scalars(text("SELECT id FROM machines ORDER BY id")))
    random.shuffle(machine_ids)
    times: list[float] = []
    made: list[int] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(n: int) -> None:
        mine = machine_ids[n::clients]
        http = [httpx.Client(base_url=b, headers={"Authorization": f"Bearer {key}"}, timeout=60)
                for b in bases]
        turn = n
        while time.perf_counter() < stop_at and mine:
            machine = mine[turn % len(mine)]
            with engine.connect() as conn:
                ask = conn.scalar(text(
                    "SELECT id FROM asks WHERE machine_id = :m AND kind = 'gpu' AND num_gpus = 1 "
                    "AND active ORDER BY id LIMIT 1"), {"m": machine})
            if ask is None:
                mine.remove(machine)
                continue
            start = time.perf_counter()
            r = http[turn % len(http)].put(f"/api/v0/asks/{ask}/", json=BODY)
            took = time.perf_counter() - start
            turn += 1
            if r.status_code == 200:
                with lock:
                    times.append(took)
                    made.append(r.json()["new_contract"])
        for c in http:
            c.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return int(len(times) / elapsed), times, made


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def takeover(db: str, env: dict[str, str], machines: int, batch: int, lease: float) -> None:
    env = {**env, "GPUYARD_LEASE_SECONDS": str(lease)}
    key = fresh(db, env, machines)
    cluster = Cluster(db, env)
    cluster.start("api", "serve", "--no-worker")
    cluster.start("w1", "worker")
    cluster.start("w2", "worker")
    try:
        cluster.ready()
        made: list[int] = []
        engine = create_engine(db)
        http = httpx.Client(base_url=cluster.urls["api"], headers={"Authorization": f"Bearer {key}"},
                            timeout=60)
        with engine.connect() as conn:
            asks = list(conn.execute(text(
                "SELECT machine_id, id FROM asks WHERE kind = 'gpu' AND num_gpus = 1 AND active")))
        per_machine = {m: a for m, a in asks}
        while len(made) < batch:
            for machine in list(per_machine):
                if len(made) >= batch:
                    break
                r = http.put(f"/api/v0/asks/{per_machine[machine]}/", json=BODY)
                if r.status_code == 200:
                    made.append(r.json()["new_contract"])
                with engine.connect() as conn:
                    ask = conn.scalar(text(
                        "SELECT id FROM asks WHERE machine_id = :m AND kind = 'gpu' AND num_gpus = 1 "
                        "AND active ORDER BY id LIMIT 1"), {"m": machine})
                if ask is None:
                    del per_machine[machine]
                else:
                    per_machine[machine] = ask
        http.close()
        victim = cluster.procs["w1"]
        with engine.begin() as conn:
            conn.execute(text("UPDATE instances SET intended_status = 'stopped' WHERE destroyed_at IS NULL"))
        asked = time.perf_counter()
        while time.perf_counter() - asked < 10:  # kill it while it holds leases
            with engine.connect() as conn:
                holding = conn.scalar(text(
                    "SELECT count(*) FROM instance_leases WHERE holder LIKE :h AND expires_at > :now"),
                    {"h": f"%:{victim.pid}:%", "now": time.time()})
            if holding >= 1:
                break
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        victim.wait()
        with engine.connect() as conn:
            held = list(conn.scalars(text(  # its work in flight (a lease is given back with the
                "SELECT instance_id FROM instance_leases "  # record of the work)
                "WHERE holder LIKE :h AND expires_at > :now"),
                {"h": f"%:{victim.pid}:%", "now": time.time()}))
        last = None
        if held:
            while True:
                with engine.connect() as conn:
                    left = conn.scalar(text(
                        "SELECT count(*) FROM instances WHERE id = ANY(:ids) AND actual_status <> 'stopped'"),
                        {"ids": held})
                if left == 0:
                    last = time.perf_counter() - killed
                    break
                if time.perf_counter() - killed > lease * 5 + 30:
                    break
                time.sleep(0.05)
        while True:  # the whole batch
            with engine.connect() as conn:
                remaining = conn.scalar(text(
                    "SELECT count(*) FROM instances WHERE destroyed_at IS NULL "
                    "AND actual_status <> 'stopped'"))
            if remaining == 0 or time.perf_counter() - killed > lease * 5 + 60:
                break
            time.sleep(0.05)
        everything = time.perf_counter() - asked
        engine.dispose()
        metrics = httpx.get(f"{cluster.urls['w2']}/metrics").text
        taken = next((line.split()[-1] for line in metrics.splitlines()
                      if line.startswith("gpuyard_lease_takeovers_total")), "?")
        figure = f"{last:.2f} s" if last is not None else "n/a (it held no lease at the kill)"
        print(f"  lease {lease:>4.0f} s: killed worker held {len(held):>3} lease(s); all of them "
              f"stopped {figure} after the kill; survivor's takeovers {taken}; the whole "
              f"batch stopped {everything:.1f} s after the ask ({remaining} not)", flush=True)
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", required=True, help="a PostgreSQL URL (its tables are DROPPED)")
    p.add_argument("--machines", type=int, default=200)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=400, help="instances stopped in the takeover run")
    p.add_argument("--lease-seconds", type=float, nargs="+", default=[10.0, 3.0])
    p.add_argument("--no-launches", dest="launches", action="store_false",
                   help="only the takeover runs")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gpuyard-cluster-bench-") as home:
        env = {**os.environ, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home,
               "GPUYARD_SIM_BOOT_SECONDS": "0"}
        env.pop("GPUYARD_DB", None)
        print(f"launches/s, {args.clients} client threads, {args.seconds:.0f} s, one worker, "
              f"{args.machines} machines x 8 GPUs, simulated runtime, PostgreSQL")
        for replicas in (1, 2) if args.launches else ():
            key = fresh(args.db, env, args.machines)
            cluster = Cluster(args.db, env)
            for n in range(replicas):
                cluster.start(f"api{n}", "serve", "--no-worker")
            cluster.start("worker", "worker")
            try:
                cluster.ready()
                rate, times, _made = launch_load(args.db, [cluster.urls[f"api{n}"] for n in range(replicas)],
                                                 key, args.clients, args.seconds)
            finally:
                cluster.stop()
            print(f"  {replicas} API replica(s): {rate:>4}/s  (answer p50 "
                  f"{statistics.median(times) * 1000:.0f} ms, p95 {pct(times, 0.95) * 1000:.0f} ms, "
                  f"{len(times)} launches)", flush=True)
        print(f"takeover after kill -9 of one of two workers ({args.batch} instances stopped at once)")
        for lease in args.lease_seconds:
            takeover(args.db, env, args.machines, args.batch, lease)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
