"""Rentals per second on the simulated runtime, with one and two ``gpuyard serve`` processes on
one database, each against a floor measured in the same run.

This is a benchmark script, not a test: it prints figures and checks nothing.

The servers are real ``gpuyard serve`` processes (simulated runtime, boot time 0) on a fresh
database: a SQLite file by default, or ``--db URL`` (PostgreSQL: its tables are **dropped**).
Two processes on one database need PostgreSQL (gpuyard refuses a second one on a SQLite file).
With ``--split`` (PostgreSQL) the processes are API replicas (``serve --no-worker --no-gateway``)
beside one ``gpuyard worker`` and one ``gpuyard gateway``, as docs/deploy.md runs them.
The fleet has one machine per rental, so that every rental takes a free 1-GPU offer. The
gateway (one all-in-one process, or the split gateway) gets ports 20000-31999, so that every
instance gets its SSH port and listener, as it would in use.

For each number of processes, the client threads (``--threads`` per process, spread over the
processes) do, for ``--seconds`` each:

1. **floor**: ``GET /healthz``, the cheapest request a server answers (no database): what the
   HTTP stack, the middleware and the client cost;
2. **rentals**: ``PUT /api/v0/asks/{id}/`` on distinct offers, as the official client sends it;
3. **floor** again (the machine is shared: its load may change during the run).

Each rental answer is after the rental's transaction and its reconcile (docs/runtime.md). The
figure to compare across runs and machines is the ratio of rentals/s to the floor's requests/s;
the CPU time the gpuyard processes used during the rentals phase, per rental (Linux), is the
steadier one to compare between versions of the code on one machine (printed beside the CPU
time per ``/healthz`` request of the first floor phase; the share of the API processes' main
threads, their event loops, where the HTTP stack runs; with ``--split``, also the API
processes' own share, without the worker and the gateway). Then the rentals' answer times
(p50, p99 and the longest: a pause of the whole process, such as a full garbage collection, or
a writer kept waiting for SQLite's lock, shows in the tail).

    .venv/bin/python bench/rentals.py                       # SQLite, 1 process
    .venv/bin/python bench/rentals.py --db postgresql+psycopg://user@host/db --processes 1 2
    .venv/bin/python bench/rentals.py --db postgresql+psycopg://user@host/db --processes 1 2 --split
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from offers_instances import make_fleet  # noqa: E402

from gpuyard.services.accounts.users import create_user  # noqa: E402
from gpuyard.services.market.fleet import apply_fleet, parse_fleet  # noqa: E402
from gpuyard.store.db import make_engine, make_sessionmaker, migrate, transaction  # noqa: E402

BODY = {"client_id": "me", "image": "pytorch/pytorch:latest", "env": {}, "price": None, "disk": 10,
        "label": None, "extra": None, "onstart": None, "image_login": None, "python_utf8": False,
        "lang_utf8": False, "use_jupyter_lab": False, "jupyter_dir": None, "force": False,
        "cancel_unavail": False, "template_hash_id": None, "runtype": "ssh"}


# Wide enough for every rental of the run to get its SSH port, as in use (with the default
# range of 800 ports the later rentals would cost the gateway nothing).
SSH_PORTS = "20000-31999"


def fresh_database(url: str) -> None:
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

        from gpuyard.store.models import Base

        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate(engine)
    engine.dispose()


def fill(url: str, machines: int) -> str:
    """The fleet and a user; the user's API key."""
    engine = make_engine(url)
    with transaction(make_sessionmaker(engine)) as session:
        apply_fleet(session, parse_fleet({"machines": make_fleet(machines, 7)}))
        _user, key = create_user(session, "bench")
    engine.dispose()
    return key


def one_gpu_offers(engine) -> list[int]:
    """The ids of the 1-GPU offers of ``engine``'s database, in id order: one per machine of
    :func:`fill`'s fleet."""
    from sqlalchemy import select

    from gpuyard.store.models import Ask

    with engine.connect() as conn:
        return list(conn.scalars(select(Ask.id).where(Ask.kind == "gpu", Ask.num_gpus == 1)
                                 .order_by(Ask.id)))


def wait_until_up(url: str, proc: subprocess.Popen, what: str) -> None:
    """Poll ``url`` until it answers 200; RuntimeError when ``proc`` exits first or a minute
    passes."""
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Servers:
    """``count`` gpuyard serve processes on ``url``: all-in-one (``split`` False; without its
    SSH gateway when ``gateway`` is False), or API processes (``serve --no-worker
    --no-gateway``) beside one ``gpuyard worker`` and one ``gpuyard gateway`` (``split`` True,
    PostgreSQL)."""

    def __init__(self, url: str, count: int, tmp: str, split: bool = False, gateway: bool = True,
                 ssh_ports: str = SSH_PORTS):
        gpuyard = shutil.which("gpuyard", path=str(Path(sys.executable).parent)) or "gpuyard"
        env = {**os.environ, "GPUYARD_SIM_BOOT_SECONDS": "0", "XDG_DATA_HOME": tmp,
               "GPUYARD_SECRET_KEY": "bench-secret-" + "x" * 40}
        self.urls, self.procs = [], []
        ready: list[tuple[str, subprocess.Popen]] = []
        roles = ["--no-worker", "--no-gateway"] if split else (["--no-gateway"] if not gateway else [])
        if not split and gateway and count == 1:
            roles += ["--ssh-ports", ssh_ports]  # (two all-in-one gateways on one host would clash)
        for _ in range(count):
            port = free_port()
            self.procs.append(subprocess.Popen(
                [gpuyard, "serve", "--db", url, "--host", "127.0.0.1", "--port", str(port), *roles],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.urls.append(f"http://127.0.0.1:{port}")
            ready.append((self.urls[-1], self.procs[-1]))
        if split:
            port = free_port()
            self.procs.append(subprocess.Popen(
                [gpuyard, "worker", "--db", url, "--host", "127.0.0.1", "--port", str(port)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            ready.append((f"http://127.0.0.1:{port}", self.procs[-1]))
            self.procs.append(subprocess.Popen(
                [gpuyard, "gateway", "--db", url, "--ssh-ports", ssh_ports],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for base, proc in ready:
            wait_until_up(f"{base}/readyz", proc, f"gpuyard at {base}")

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=30)


def cpu_seconds(pids: list[int], main_thread: bool = False) -> float | None:
    """User plus system CPU time the processes ``pids`` have used (Linux /proc; else None);
    with ``main_thread``, only their main threads' (a server's event loop: the HTTP stack)."""
    try:
        total = 0
        for pid in pids:
            stat = f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat"
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run(clients: list[httpx.Client], seconds: float, work) -> tuple[int, int, float]:
    """Each client in its own thread calls ``work(client)`` until ``seconds`` pass or it returns
    None; (ok answers, other answers, seconds taken)."""
    counts = [[0, 0] for _ in clients]
    stop = time.perf_counter() + seconds

    def loop(i: int, c: httpx.Client) -> None:
        while time.perf_counter() < stop:
            ok = work(c)
            if ok is None:
                return
            counts[i][0 if ok else 1] += 1

    threads = [threading.Thread(target=loop, args=(i, c)) for i, c in enumerate(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    return sum(c[0] for c in counts), sum(c[1] for c in counts), took


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", help="database URL (default: a SQLite file in a temp dir); DROPS its tables")
    p.add_argument("--processes", type=int, nargs="+", default=[1])
    p.add_argument("--threads", type=int, default=2, help="client threads per process (2)")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--machines", type=int, default=5000)
    p.add_argument("--split", action="store_true",
                   help="API processes (serve --no-worker --no-gateway) beside one worker and one "
                        "gateway process, instead of all-in-one serve processes (PostgreSQL)")
    p.add_argument("--no-gateway", action="store_true",
                   help="all-in-one serve processes without their SSH gateway (what it costs)")
    args = p.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="gpuyard-rentals-")
    url = args.db or f"sqlite:///{tmp}/bench.db"
    print(f"{os.cpu_count()} cores; database {url.split('@')[-1]}; {args.threads} client threads "
          f"per process, {args.seconds:g} s per phase; "
          + ("API processes beside one worker and one gateway" if args.split else "all-in-one serve")
          + (" without its gateway" if args.no_gateway and not args.split else ""))
    for count in args.processes:
        fresh_database(url)
        key = fill(url, args.machines)
        servers = Servers(url, count, tmp, args.split, gateway=not args.no_gateway)
        try:
            headers = {"Authorization": f"Bearer {key}"}
            clients = [httpx.Client(base_url=servers.urls[i % count], headers=headers, timeout=60)
                       for i in range(count * args.threads)]
            offers = clients[0].post("/api/v0/bundles/", json={
                "num_gpus": {"eq": 1}, "limit": args.machines, "order": [["id", "asc"]]}).json()["offers"]
            targets = iter({o["machine_id"]: o["id"] for o in offers}.values())
            lock = threading.Lock()
            took: list[float] = []  # each rental's answer time, s

            def healthz(c: httpx.Client) -> bool:
                return c.get("/healthz").status_code == 200

            def rent(c: httpx.Client, targets=targets, lock=lock, took=took) -> bool | None:
                with lock:
                    ask = next(targets, None)
                if ask is None:
                    return None
                started = time.perf_counter()
                ok = c.put(f"/api/v0/asks/{ask}/", json=BODY).status_code == 200
                took.append(time.perf_counter() - started)
                return ok

            pids = [proc.pid for proc in servers.procs]
            api_pids = pids[:count]  # the serve processes (then the worker and the gateway)
            fcpu0 = cpu_seconds(pids)
            floor1 = run(clients, args.seconds / 2, healthz)
            cpu0, api0, loop0 = cpu_seconds(pids), cpu_seconds(api_pids), cpu_seconds(api_pids, True)
            rented = run(clients, args.seconds, rent)
            cpu1, api1, loop1 = cpu_seconds(pids), cpu_seconds(api_pids), cpu_seconds(api_pids, True)
            floor2 = run(clients, args.seconds / 2, healthz)
            for c in clients:
                c.close()
        finally:
            servers.close()
        floor = (floor1[0] + floor2[0]) / (floor1[2] + floor2[2])
        rate = rented[0] / rented[2]
        kind = "API" if args.split else "serve"
        print(f"{count} {kind} process(es): rentals {rate:6.1f}/s ({rented[0]} ok, {rented[1]} refused); "
              f"floor /healthz {floor:6.1f}/s (before {floor1[0] / floor1[2]:.0f}, after "
              f"{floor2[0] / floor2[2]:.0f}); ratio {rate / floor:.3f}"
              + (f"; gpuyard CPU {1000 * (cpu1 - cpu0) / rented[0]:.2f} ms per rental"
                 if cpu0 is not None and cpu1 is not None and rented[0] else "")
              + (f" (floor {1000 * (cpu0 - fcpu0) / floor1[0]:.2f} ms per request)"
                 if fcpu0 is not None and cpu0 is not None and floor1[0] else "")
              + (f", of which the event loops {1000 * (loop1 - loop0) / rented[0]:.2f} ms"
                 if loop0 is not None and loop1 is not None and rented[0] else "")
              + (f"; the API processes alone {1000 * (api1 - api0) / rented[0]:.2f} ms"
                 if args.split and api0 is not None and api1 is not None and rented[0] else ""))
        if took:
            took.sort()
            print(f"  rental answer times: p50 {1000 * took[len(took) // 2]:.1f} ms, p99 "
                  f"{1000 * took[min(len(took) - 1, len(took) * 99 // 100)]:.1f} ms, longest "
                  f"{1000 * took[-1]:.1f} ms")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
