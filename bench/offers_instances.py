"""Offer search, rental, preemption and fleet-load benchmark (a benchmark script, not a test: it
asserts nothing).

For each fleet size N (default ``100 1000 10000`` machines) it runs, in a child process of its own
(so that the peak RSS it reports belongs to that size alone):

1. a fresh database (a SQLite file in its own temp dir by default; with ``--db`` a PostgreSQL URL
   whose tables are dropped and recreated for every size), migrated;
2. the fleet load, timed: N synthetic machines (GPU counts 1-8, 14 GPU models with their usual
   memory, 16 regions, prices spread around each model's going rate, ~90% verified, mixed disk,
   network and reliability) plus 5 fixed machines for phases 5 and 6, checked with
   ``fleet.parse_fleet`` and stored with ``fleet.apply_fleet`` in one transaction, exactly what
   ``gpuyard admin load-fleet`` does; the asks (bundles of 1, 2, 4, ... GPUs) are made by it. Then
   the same fleet is loaded again (every machine updated in place), also timed;
3. offer searches through the service layer (``search_offers`` in a read-only ``transaction``, as
   ``POST /api/v0/bundles/`` runs it) and over HTTP (``POST /api/v0/bundles/`` against a real
   uvicorn server in a thread of the same process, httpx keep-alive), with the official client's
   default filters ``verified=true external=false rentable=true``, ``type`` on-demand and
   ``allocated_storage`` 5, plus: (A) nothing else, by score, limit 64; (B) nothing else, by score,
   the default limit (1000); (C) nothing else, by dph_total asc, limit 64; (D) ``gpu_name`` and
   ``num_gpus``, by score, limit 64; (E) ``gpu_ram>=`` and ``dph<``, by dph asc, limit 64; (F) all
   four, by dph asc, default limit. Parameters vary per call; rows returned are reported. The
   "sql" line of each search is the statement the service sent, captured at the cursor and run
   again alone (``fetchall``, no row dicts); for (B) the script also times FastAPI's
   ``jsonable_encoder``, ``json.dumps`` and ``json.loads`` on one answer;
4. rent throughput over HTTP: ``PUT /api/v0/asks/{id}/`` on distinct 1-GPU offers (one per
   machine), sequentially then with 4 client threads, for ``--rent-seconds`` or ``--rent-max``
   rentals; each rental re-allocates its machine and runs the reconciler for it before
   answering. After each rent run every instance is destroyed (``DELETE /api/v0/instances/{id}/``)
   the same way, which is the destroy throughput; the offers come back, so the threaded run
   rents the same ones again;
5. the cost of a preemption: on an 8-GPU machine, N bids (N = 0, 1, 4, 8, each bid on its own GPU,
   placed through the bid search and ``PUT /api/v0/asks/``) and then an on-demand rental of the
   whole 8-GPU bundle by another user: the time to its answer; right after the answer every bid
   is read back (``GET /api/v0/instances/{id}/``) and the script prints how many read
   ``actual_status`` "stopped" with an "outbid:" ``status_msg``. Destroying the on-demand
   instance (which resumes the bids) is timed too, and the bids are read back again;
6. a bid pile-up on a 1-GPU machine: ``--pileup`` ever higher bids, one after the other; each one
   preempts the previous (which stays live, outbid). The time and the number of SQL statements of
   each rental show how a rental's cost grows with the instances on its machine.

It also prints, per size, the row counts and the peak RSS of the child (client and server share
that process), and at the largest size the EXPLAIN QUERY PLAN (SQLite) / EXPLAIN ANALYZE
(PostgreSQL) of the exact SQL ``search_offers`` sent for each search (captured with a
``before_cursor_execute`` hook). A summary across sizes ends the run.

Run (from the project root)::

    .venv/bin/python bench/offers_instances.py                          # 100, 1k, 10k on SQLite
    .venv/bin/python bench/offers_instances.py --sizes 1000 --reps 20   # quicker
    .venv/bin/python bench/offers_instances.py --db postgresql+psycopg://u@host/db   # DROPS tables

A full SQLite run takes about 2 minutes on 2 cores, a PostgreSQL one about 3; unfiltered searches
take ~0.1 s each at 10,000 machines on PostgreSQL (see README.md). ``--search-budget`` (15 s by
default) stops timing a search after that long once it has 5 timed calls, so a slow case cannot
stretch the run.

The server runs with the simulated runtime and ``sim_boot_seconds`` 0 (as in the tests), so a
bid is "running" as soon as its rental answers. The background reconciler sweep is off unless
``--sweeper`` is given: the state read back after an answer is then the work of that request
alone. The HTTP client and server share the GIL and the 2 cores; read the HTTP figures as
"service + HTTP overhead on an idle machine", not as a load test.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, event, func, select
from sqlalchemy.engine import make_url

from gpuyard.services.accounts.users import create_user
from gpuyard.services.market import fleet
from gpuyard.services.market.offers import search_offers as _search_offers
from gpuyard.settings import Settings
from gpuyard.store.db import make_engine, make_sessionmaker, migrate, transaction
from gpuyard.store.models import Ask, Base, Instance, InstanceEvent, Machine, User
from gpuyard.wire.base import parse
from gpuyard.wire.offers import OfferSearch


def search_offers(session, user, body: dict[str, Any]) -> list[dict[str, Any]]:
    """An offer search as the API runs it: the body checked (the wire model), then the service."""
    return _search_offers(session, user, parse(OfferSearch, body).checked(
        default_limit=Settings.default_search_limit, max_limit=Settings.max_search_limit))

# --------------------------------------------------------------------------------------------
# Synthetic fleet
# --------------------------------------------------------------------------------------------

# (model, GB per GPU, typical on-demand $/hour per GPU, weight)
MODELS = [
    ("RTX 3090", 24, 0.20, 18), ("RTX 4090", 24, 0.40, 25), ("RTX 4080", 16, 0.25, 6),
    ("RTX 5090", 32, 0.70, 6), ("RTX A5000", 24, 0.25, 5), ("RTX A6000", 48, 0.50, 8),
    ("A40", 48, 0.45, 4), ("L4", 24, 0.30, 4), ("L40S", 48, 0.85, 6), ("Tesla V100", 16, 0.20, 3),
    ("A100 PCIE", 40, 0.90, 4), ("A100 SXM4", 80, 1.10, 6), ("H100 PCIE", 80, 1.90, 3),
    ("H100 SXM", 80, 2.35, 5),
]
GPU_COUNTS = {1: 28, 2: 18, 3: 3, 4: 18, 5: 2, 6: 4, 7: 2, 8: 25}
REGIONS = ("US", "US", "US", "CA", "DE", "NL", "SE", "FR", "GB", "PL", "FI", "TW", "JP", "KR",
           "SG", "AU", "BR", "NO")
DATACENTER = {"A40", "L4", "L40S", "Tesla V100", "A100 PCIE", "A100 SXM4", "H100 PCIE", "H100 SXM"}
#: Machines added to every fleet for the preemption (5) and pile-up (6) phases.
PREEMPT_NS = (0, 1, 4, 8)
PILEUP_HOST = "bench-pileup"


def special_machines() -> list[dict[str, Any]]:
    base = {"gpu_name": "H100 SXM", "gpu_ram": 80, "cpu_cores": 128, "cpu_ram": 1024,
            "disk_space": 8000, "inet_down": 10000, "inet_up": 10000, "dph_per_gpu": 2.5,
            "min_bid_per_gpu": 0.5, "reliability": 0.999, "geolocation": "US",
            "runtime": "simulated"}
    out = [{**base, "hostname": f"bench-preempt-{n}", "num_gpus": 8} for n in PREEMPT_NS]
    out.append({**base, "hostname": PILEUP_HOST, "num_gpus": 1})
    return out


def make_fleet(n: int, seed: int) -> list[dict[str, Any]]:
    """N machines as a fleet file would list them (the 5 special ones come first)."""
    rng = random.Random(seed)
    names, weights = [m[0] for m in MODELS], [m[3] for m in MODELS]
    by_name = {m[0]: m for m in MODELS}
    counts, cweights = list(GPU_COUNTS), list(GPU_COUNTS.values())
    machines = special_machines()
    for i in range(n):
        model = rng.choices(names, weights)[0]
        _, ram, rate, _ = by_name[model]
        gpus = rng.choices(counts, cweights)[0]
        price = round(rate * rng.lognormvariate(0, 0.25), 3)
        dc = model in DATACENTER
        m = {
            "hostname": f"host-{i:06d}.{rng.choice(REGIONS).lower()}",
            "gpu_name": model,
            "num_gpus": gpus,
            "gpu_ram": ram,
            "cpu_cores": gpus * rng.choice((4, 8, 12, 16)),
            "cpu_ram": gpus * rng.choice((32, 64, 128)),
            "disk_space": rng.choice((200, 500, 1000, 2000, 4000)),
            "inet_down": rng.choice((100, 500, 1000, 2500, 10000)),
            "inet_up": rng.choice((50, 200, 800, 1000, 10000)),
            "dph_per_gpu": price,
            "min_bid_per_gpu": round(price * rng.uniform(0.25, 0.5), 3),
            "storage_cost": rng.choice((0.05, 0.10, 0.15, 0.20)),
            "reliability": round(rng.uniform(0.90, 0.999), 4),
            "geolocation": rng.choice(REGIONS),
            "verified": rng.random() < 0.9,
            "direct_port_count": rng.choice((0, 100, 500)),
            "runtime": "simulated",
        }
        if dc:
            m["datacenter"] = True
        machines.append(m)
    return machines


# --------------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------------


@contextmanager
def fresh_database(base_url: str | None, n: int, tmp_root: str | None, keep: bool):
    """Yield a URL to an empty, migrated database for one size."""
    if base_url is None:
        d = tempfile.mkdtemp(prefix=f"gpuyard-offers-{n}-", dir=tmp_root)
        url = f"sqlite:///{d}/bench.db"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        try:
            yield url
        finally:
            if keep:
                print(f"  (kept {d})")
            else:
                shutil.rmtree(d, ignore_errors=True)
        return
    engine = make_engine(base_url)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    migrate(engine)
    engine.dispose()
    yield base_url


def db_size(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        total = sum(os.path.getsize(p) for p in Path(parsed.database).parent.glob("bench.db*"))
        return f"{total / 2**20:,.1f} MiB on disk"
    engine = make_engine(url)
    with engine.connect() as conn:
        size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
    engine.dispose()
    return f"{size / 2**20:,.1f} MiB (pg_database_size)"


def counts(factory) -> dict[str, int]:
    with transaction(factory, write=False) as s:
        return {
            "machines": s.scalar(select(func.count(Machine.id))),
            "asks": s.scalar(select(func.count(Ask.id))),
            "active_gpu_asks": s.scalar(select(func.count(Ask.id)).where(
                Ask.kind == "gpu", Ask.active.is_(True))),
            "instances": s.scalar(select(func.count(Instance.id))),
            "live_instances": s.scalar(select(func.count(Instance.id)).where(
                Instance.destroyed_at.is_(None))),
            "instance_events": s.scalar(select(func.count(InstanceEvent.id))),
        }


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


@dataclass
class Stats:
    p50: float
    p95: float
    mean: float
    rows: float
    n: int

    @classmethod
    def of(cls, seconds: list[float], rows: list[int] | None = None) -> Stats:
        ms = sorted(s * 1000 for s in seconds) or [float("nan")]

        def pct(p: float) -> float:
            return ms[min(len(ms) - 1, max(0, math.ceil(p / 100 * len(ms)) - 1))]

        return cls(pct(50), pct(95), statistics.fmean(ms), statistics.fmean(rows or [0]),
                   len(seconds))


class StatementCounter:
    """Counts the SQL statements an engine sends (meaningful while one request runs at a time)."""

    def __init__(self, engine: Engine):
        self.n = 0
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._hit)

    def _hit(self, *_args: Any) -> None:
        with self._lock:
            self.n += 1


# --------------------------------------------------------------------------------------------
# Searches
# --------------------------------------------------------------------------------------------

DEFAULTS = {"verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True}}
BY_SCORE = [["score", "desc"]]
BY_DPH = [["dph_total", "asc"]]
LABELS = {
    "A": "(A) defaults, score desc, limit 64",
    "B": "(B) defaults, score desc, default limit",
    "C": "(C) defaults, dph asc, limit 64",
    "D": "(D) gpu_name+num_gpus, score desc, 64",
    "E": "(E) gpu_ram>=+dph<, dph asc, limit 64",
    "F": "(F) all four, dph asc, default limit",
}


def make_searches(rng: random.Random, reps: int) -> dict[str, list[dict[str, Any]]]:
    """``reps`` bodies per search (the same bodies for the service layer and HTTP)."""
    names, weights = [m[0] for m in MODELS], [m[3] for m in MODELS]
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in LABELS}
    for _ in range(reps):
        base = {**DEFAULTS, "type": "on-demand", "allocated_storage": 5.0}
        name = {"gpu_name": {"eq": rng.choices(names, weights)[0]},
                "num_gpus": {"eq": rng.choice((1, 2, 4, 8))}}
        price = {"gpu_ram": {"gte": rng.choice((16, 24, 40, 48)) * 1000.0},
                 "dph_total": {"lt": round(rng.uniform(0.5, 4.0), 2)}}
        out["A"].append({**base, "order": BY_SCORE, "limit": 64})
        out["B"].append({**base, "order": BY_SCORE})
        out["C"].append({**base, "order": BY_DPH, "limit": 64})
        out["D"].append({**base, **name, "order": BY_SCORE, "limit": 64})
        out["E"].append({**base, **price, "order": BY_DPH, "limit": 64})
        out["F"].append({**base, **name, **price, "order": BY_DPH})
    return out


def over_budget(start: float, timed: int, budget: float) -> bool:
    """Stop a search's loop once it has run ``budget`` seconds and made 5 timed calls."""
    return timed >= 5 and time.perf_counter() - start > budget


def bench_service(engine: Engine, factory, user: User, searches, warmup: int, budget: float
                  ) -> tuple[dict[str, Stats], dict[str, Stats]]:
    """Service-layer timings, then the same SQL alone: the statement each call sent (captured at
    the cursor) run again with ``exec_driver_sql(...).fetchall()``, without building row dicts."""
    captured: list[tuple[str, Any]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if "FROM asks JOIN machines" in statement:
            captured.append((statement, parameters))

    results: dict[str, Stats] = {}
    sql_results: dict[str, Stats] = {}
    for kind, bodies in searches.items():
        times, rows, statements = [], [], []
        start = time.perf_counter()
        for j, body in enumerate(bodies[:warmup] + bodies):
            if over_budget(start, len(times), budget):
                break
            captured.clear()
            event.listen(engine, "before_cursor_execute", grab)
            t0 = time.perf_counter()
            with transaction(factory, write=False) as session:
                found = search_offers(session, user, body)
            dt = time.perf_counter() - t0
            event.remove(engine, "before_cursor_execute", grab)
            if j >= warmup:
                times.append(dt)
                rows.append(len(found))
                statements.append(captured[-1])
        results[kind] = Stats.of(times, rows)
        times, rows = [], []
        start = time.perf_counter()
        with engine.connect() as conn:
            for statement, params in statements[:warmup] + statements:
                if over_budget(start, len(times) - warmup, budget):
                    break
                t0 = time.perf_counter()
                got = conn.exec_driver_sql(statement, params).fetchall()
                times.append(time.perf_counter() - t0)
                rows.append(len(got))
            conn.rollback()
        sql_results[kind] = Stats.of(times[warmup:], rows[warmup:])
    return results, sql_results


def encoding_costs(factory, user: User, body: dict[str, Any], reps: int = 5) -> dict[str, float]:
    """Where the HTTP time of a big answer goes: FastAPI's ``jsonable_encoder`` (what a route that
    returns a dict goes through), ``json.dumps`` and the client's ``json.loads``, in ms."""
    from fastapi.encoders import jsonable_encoder

    with transaction(factory, write=False) as session:
        rows = search_offers(session, user, body)
    payload = {"success": True, "offers": rows}

    def best(fn) -> float:
        out = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return statistics.median(out) * 1000

    text = json.dumps(payload)
    return {"rows": len(rows), "keys_per_row": len(rows[0]) if rows else 0,
            "jsonable_encoder_ms": best(lambda: jsonable_encoder(payload)),
            "json_dumps_ms": best(lambda: json.dumps(payload)),
            "json_loads_ms": best(lambda: json.loads(text)), "bytes": len(text)}


def bench_http(c: httpx.Client, searches, warmup: int, budget: float) -> dict[str, Stats]:
    results: dict[str, Stats] = {}
    for kind, bodies in searches.items():
        times, rows = [], []
        start = time.perf_counter()
        for j, body in enumerate(bodies[:warmup] + bodies):
            if over_budget(start, len(times), budget):
                break
            t0 = time.perf_counter()
            r = c.post("/api/v0/bundles/", json=body)
            data = r.json()
            dt = time.perf_counter() - t0
            if r.status_code != 200:
                raise RuntimeError(f"search {kind} failed: {r.status_code} {r.text[:300]}")
            if j >= warmup:
                times.append(dt)
                rows.append(len(data["offers"]))
        results[kind] = Stats.of(times, rows)
    return results


def explain(engine: Engine, factory, user: User, searches) -> list[str]:
    """The plan of the exact SQL ``search_offers`` sends, captured at the cursor."""
    captured: list[tuple[str, Any]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if "FROM asks JOIN machines" in statement:
            captured.append((statement, parameters))

    pg = engine.dialect.name == "postgresql"
    out: list[str] = []
    for kind, bodies in searches.items():
        body = bodies[0]
        captured.clear()
        event.listen(engine, "before_cursor_execute", grab)
        with transaction(factory, write=False) as session:
            search_offers(session, user, body)
        event.remove(engine, "before_cursor_execute", grab)
        statement, params = captured[-1]
        prefix = "EXPLAIN ANALYZE " if pg else "EXPLAIN QUERY PLAN "
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(prefix + statement, params).fetchall()
        short = " ".join(statement.split())
        where = short[short.find(" WHERE "):] if " WHERE " in short else short
        shown = {k: v for k, v in body.items() if k not in DEFAULTS and k != "type"}
        out.append(f"--- {LABELS[kind]}  body = defaults + {json.dumps(shown)}")
        out.append(f"    SQL: SELECT <{short.count(' AS ')} columns> FROM asks JOIN machines ...{where}")
        depth: dict[int, int] = {0: 0}
        for row in plan:
            if pg:
                out.append("    " + row[0])
            else:  # (id, parent, notused, detail): indent by nesting, like the sqlite3 shell
                depth[row[0]] = depth.get(row[1], 0) + 1
                out.append("    " + "  " * depth[row[0]] + row[3])
    return out


# --------------------------------------------------------------------------------------------
# HTTP server and clients
# --------------------------------------------------------------------------------------------


@contextmanager
def server(url: str, sweeper: bool):
    """``create_app`` served by uvicorn on a free 127.0.0.1 port in a daemon thread."""
    import uvicorn

    from gpuyard.api.app import create_app

    app = create_app(Settings.build(db_url=url, sim_boot_seconds=0.0))
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only when the listening
    # socket's proto is TCP; otherwise every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            lifespan="on" if sweeper else "off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()
        app.state.engine.dispose()


def client(base: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120)


RENT_BODY = {"client_id": "me", "image": "busybox", "disk": 10}


def rent(c: httpx.Client, ask_id: int, **extra: Any) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = c.put(f"/api/v0/asks/{ask_id}/", json={**RENT_BODY, **extra})
    r.read()
    return time.perf_counter() - t0, r


def destroy(c: httpx.Client, iid: int) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = c.request("DELETE", f"/api/v0/instances/{iid}/", json={})
    r.read()
    return time.perf_counter() - t0, r


def show(c: httpx.Client, iid: int) -> dict[str, Any]:
    return c.get(f"/api/v0/instances/{iid}/").json()["instances"] or {}


# --------------------------------------------------------------------------------------------
# Rent and destroy throughput
# --------------------------------------------------------------------------------------------


@dataclass
class Throughput:
    what: str
    threads: int
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    statuses: dict[str, int]
    statements: float  # SQL statements per request (sequential runs only)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else float("nan")


def run_pool(threads: int, jobs: list[Any], work, seconds: float | None) -> tuple[list, float]:
    """Run ``work(client_index, job)`` over ``jobs`` with ``threads`` workers; stop taking new jobs
    after ``seconds``. Returns [(latency, result)] and the elapsed time."""
    it = iter(jobs)
    lock = threading.Lock()
    done: list[tuple[float, Any]] = []
    stop_at = time.perf_counter() + seconds if seconds else float("inf")

    def worker(k: int) -> None:
        while time.perf_counter() < stop_at:
            with lock:
                job = next(it, None)
            if job is None:
                return
            dt, res = work(k, job)
            with lock:
                done.append((dt, res))

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return done, time.perf_counter() - t0


def bench_rent(clients: list[httpx.Client], targets: list[int], threads: int, seconds: float,
               counter: StatementCounter) -> tuple[Throughput, Throughput]:
    made: list[tuple[int, int]] = []  # (client index, instance id)
    lock = threading.Lock()

    def do_rent(k: int, ask_id: int):
        dt, r = rent(clients[k], ask_id, label=f"bench {threads}t {ask_id}")
        if r.status_code == 200:
            with lock:
                made.append((k, r.json()["new_contract"]))
        return dt, r.status_code

    s0 = counter.n
    done, elapsed = run_pool(threads, targets, do_rent, seconds)
    st = Stats.of([d for d, _ in done])
    rent_t = Throughput("rent", threads, len(done), elapsed, st.p50, st.p95,
                        dict(Counter(str(s) for _, s in done)),
                        (counter.n - s0) / max(1, len(done)) if threads == 1 else float("nan"))

    def do_destroy(_k: int, job: tuple[int, int]):
        k, iid = job
        dt, r = destroy(clients[k], iid)
        return dt, r.status_code

    s0 = counter.n
    done, elapsed = run_pool(threads, list(made), do_destroy, None)
    st = Stats.of([d for d, _ in done])
    destroy_t = Throughput("destroy", threads, len(done), elapsed, st.p50, st.p95,
                           dict(Counter(str(s) for _, s in done)),
                           (counter.n - s0) / max(1, len(done)) if threads == 1 else float("nan"))
    return rent_t, destroy_t


# --------------------------------------------------------------------------------------------
# Preemption and bid pile-up
# --------------------------------------------------------------------------------------------


def machine_offer(c: httpx.Client, machine_id: int, gpus: int, bid: bool) -> dict[str, Any]:
    body = {"machine_id": {"eq": machine_id}, "num_gpus": {"eq": gpus}, "verified": {"eq": True},
            "external": {"eq": False}, "rentable": {"eq": True},
            "type": "bid" if bid else "on-demand", "order": [["score", "desc"]]}
    offers = c.post("/api/v0/bundles/", json=body).json()["offers"]
    if not offers:
        raise RuntimeError(f"machine {machine_id} has no {gpus}-GPU offer")
    return offers[0]


@dataclass
class Preemption:
    bids: int
    rent_ms: list[float]
    destroy_ms: list[float]
    statements: float
    stopped_outbid: list[int]  # per rep: bids read back stopped with an "outbid:" message
    resumed: list[int]  # per rep: bids read back running after the destroy
    example_msg: str
    bid_rent_ms: list[float]


def bench_preemption(bidder: httpx.Client, renter: httpx.Client, machine_id: int, n_bids: int,
                     reps: int, counter: StatementCounter) -> Preemption:
    bids, bid_rent = [], []
    for i in range(n_bids):
        o = machine_offer(bidder, machine_id, 1, bid=True)
        dt, r = rent(bidder, o["id"], price=round(o["min_bid"] * 1.2 + 0.01 * i, 4),
                     label=f"bid {i}")
        if r.status_code != 200:
            raise RuntimeError(f"bid {i} on machine {machine_id}: {r.status_code} {r.text[:300]}")
        bids.append(r.json()["new_contract"])
        bid_rent.append(dt * 1000)
    whole = machine_offer(renter, machine_id, 8, bid=False)
    res = Preemption(n_bids, [], [], 0.0, [], [], "", bid_rent)
    statements = []
    for _ in range(reps):
        before = [show(bidder, b) for b in bids]
        if any(b.get("actual_status") != "running" for b in before):
            print(f"    note: before the rental, bids read {[b.get('actual_status') for b in before]}")
        s0 = counter.n
        dt, r = rent(renter, whole["id"], label="on-demand over bids")
        statements.append(counter.n - s0)
        if r.status_code != 200:
            raise RuntimeError(f"on-demand rental: {r.status_code} {r.text[:300]}")
        res.rent_ms.append(dt * 1000)
        after = [show(bidder, b) for b in bids]
        res.stopped_outbid.append(sum(
            1 for b in after
            if b.get("actual_status") == "stopped" and (b.get("status_msg") or "").startswith("outbid:")
        ))
        if after and not res.example_msg:
            res.example_msg = f"{after[0].get('actual_status')}, {after[0].get('status_msg')!r}"
        dt, r = destroy(renter, r.json()["new_contract"])
        res.destroy_ms.append(dt * 1000)
        again = [show(bidder, b) for b in bids]
        res.resumed.append(sum(1 for b in again if b.get("actual_status") == "running"))
    res.statements = statistics.fmean(statements)
    for b in bids:
        destroy(bidder, b)
    return res


@dataclass
class Pileup:
    k: list[int]
    ms: list[float]
    statements: list[int]
    total_s: float


def bench_pileup(c: httpx.Client, machine_id: int, count: int, counter: StatementCounter) -> Pileup:
    o = machine_offer(c, machine_id, 1, bid=True)
    res = Pileup([], [], [], 0.0)
    t0 = time.perf_counter()
    for i in range(count):
        s0 = counter.n
        dt, r = rent(c, o["id"], price=round(o["min_bid"] + 0.01 * (i + 1), 4), label=f"pile {i}")
        if r.status_code != 200:
            raise RuntimeError(f"pile-up bid {i}: {r.status_code} {r.text[:300]}")
        res.k.append(i + 1)
        res.ms.append(dt * 1000)
        res.statements.append(counter.n - s0)
    res.total_s = time.perf_counter() - t0
    return res


# --------------------------------------------------------------------------------------------
# One size (runs in a child process)
# --------------------------------------------------------------------------------------------


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_size(args, n: int) -> dict[str, Any]:
    t_start = time.perf_counter()
    out: dict[str, Any] = {"n": n}
    backend = "PostgreSQL" if args.db else "SQLite"
    print(f"\n=== N = {n:,} machines (+{len(special_machines())} fixed ones), {backend} ===", flush=True)
    with fresh_database(args.db, n, args.tmpdir, args.keep) as url:
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        keys: dict[str, str] = {}
        with transaction(factory) as session:
            for name in ("searcher", "bidder", "ondemand", *(f"renter{k}" for k in range(4))):
                _user, keys[name] = create_user(session, name)

        # -- fleet load ----------------------------------------------------------------------
        doc = {"machines": make_fleet(n, args.seed)}
        loads = []
        for attempt in ("load", "reload"):
            rss0 = rss_mib()
            t0 = time.perf_counter()
            machines = fleet.parse_fleet(doc)
            t1 = time.perf_counter()
            with transaction(factory) as session:
                result = fleet.apply_fleet(session, machines)
            t2 = time.perf_counter()
            loads.append({"what": attempt, "parse_s": t1 - t0, "apply_s": t2 - t1,
                          "total_s": t2 - t0, "summary": result.summary(),
                          "rss_growth_mib": rss_mib() - rss0})
            if not args.reload:
                break
        machine_ids = result.machine_ids
        out["load"] = loads
        if args.analyze or engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        out["counts_after_load"] = counts(factory)
        out["db_size_after_load"] = db_size(url)
        for ld in loads:
            total = len(doc["machines"])
            print(f"fleet {ld['what']}: {ld['total_s']:.2f} s = {total / ld['total_s']:,.0f} machines/s "
                  f"(parse_fleet {ld['parse_s']:.2f} s, apply_fleet+commit {ld['apply_s']:.2f} s); "
                  f"{ld['summary']}", flush=True)
        print(f"rows: {out['counts_after_load']}; {out['db_size_after_load']}", flush=True)

        # -- searches, service layer ---------------------------------------------------------
        searches = make_searches(random.Random(args.seed + 1), args.reps)
        with transaction(factory, write=False) as session:
            searcher = session.scalar(select(User).where(User.username == "searcher"))
        service, sql = bench_service(engine, factory, searcher, searches, args.warmup,
                                     args.search_budget)
        out["service"] = {k: asdict(v) for k, v in service.items()}
        out["sql"] = {k: asdict(v) for k, v in sql.items()}
        out["encoding"] = encoding_costs(factory, searcher, searches["B"][0])
        print("  service-layer searches done", flush=True)
        if args.explain:
            out["plans"] = explain(engine, factory, searcher, searches)
        special = {f"bench-preempt-{k}" for k in PREEMPT_NS} | {PILEUP_HOST}
        with transaction(factory, write=False) as session:
            rows = session.execute(
                select(Ask.id, Ask.machine_id).where(
                    Ask.kind == "gpu", Ask.active.is_(True), Ask.num_gpus == 1,
                    Ask.machine_id.not_in([machine_ids[h] for h in special]))
            ).all()
        targets = [r.id for r in sorted(rows, key=lambda r: r.machine_id)]
        random.Random(args.seed + 2).shuffle(targets)
        targets = targets[: args.rent_max]
        engine.dispose()

        # -- HTTP ----------------------------------------------------------------------------
        with server(url, args.sweeper) as (base, app):
            counter = StatementCounter(app.state.engine)
            with client(base, keys["searcher"]) as c:
                out["http"] = {k: asdict(v) for k, v in bench_http(c, searches, args.warmup,
                                                         args.search_budget).items()}
            print("  HTTP searches done", flush=True)

            renters = [client(base, keys[f"renter{k}"]) for k in range(4)]
            try:
                out["rent"] = []
                for threads in (1, 4):
                    rt, dt_ = bench_rent(renters, targets, threads, args.rent_seconds, counter)
                    out["rent"] += [asdict(rt) | {"rps": rt.rps}, asdict(dt_) | {"rps": dt_.rps}]
                print("  rent/destroy done", flush=True)
            finally:
                for rc in renters:
                    rc.close()

            with client(base, keys["bidder"]) as bidder, client(base, keys["ondemand"]) as od:
                out["preempt"] = []
                for nb in PREEMPT_NS:
                    p = bench_preemption(bidder, od, machine_ids[f"bench-preempt-{nb}"], nb,
                                         args.preempt_reps, counter)
                    out["preempt"].append(asdict(p))
                print("  preemption done", flush=True)
                if args.pileup:
                    out["pileup"] = asdict(bench_pileup(bidder, machine_ids[PILEUP_HOST],
                                                        args.pileup, counter))
                    print("  pile-up done", flush=True)
        engine = make_engine(url)
        out["counts_end"] = counts(make_sessionmaker(engine))
        engine.dispose()
        out["db_size_end"] = db_size(url)
    out["rss_mib"] = rss_mib()
    out["seconds"] = time.perf_counter() - t_start
    print_size(out, args)
    return out


def fmt_counter(d: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(d.items()))


def print_size(r: dict[str, Any], args) -> None:
    print(f"\n{'search (' + str(args.reps) + ' reps each)':<42} {'layer':<8} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'mean ms':>8} {'rows/call':>9} {'calls':>6}")
    for kind in LABELS:
        for layer in ("sql", "service", "http"):
            s = r[layer][kind]
            print(f"{LABELS[kind]:<42} {layer:<8} {s['p50']:8.2f} {s['p95']:8.2f} {s['mean']:8.2f} "
                  f"{s['rows']:9.1f} {s['n']:6d}")
    e = r["encoding"]
    print(f"(B)'s answer, {e['rows']} rows of {e['keys_per_row']} keys, {e['bytes'] / 1024:,.0f} KiB: "
          f"jsonable_encoder {e['jsonable_encoder_ms']:.1f} ms, json.dumps {e['json_dumps_ms']:.1f} ms, "
          f"json.loads {e['json_loads_ms']:.1f} ms")
    print(f"\n{'HTTP, distinct 1-GPU offers':<30} {'threads':>7} {'req/s':>8} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'requests':>9} {'SQL/req':>8}  statuses")
    for t in r["rent"]:
        label = "PUT /api/v0/asks/{id}/" if t["what"] == "rent" else "DELETE /api/v0/instances/{id}/"
        print(f"{label:<30} {t['threads']:>7} {t['rps']:8.1f} {t['p50_ms']:8.2f} {t['p95_ms']:8.2f} "
              f"{t['requests']:9d} {t['statements']:8.1f}  {fmt_counter(t['statuses'])}")
    print(f"\npreemption on an 8-GPU machine ({args.preempt_reps} reps): on-demand rental of all 8 "
          "GPUs over N bids")
    print(f"{'N bids':>6} {'rent p50 ms':>12} {'rent max ms':>12} {'SQL/rent':>9} "
          f"{'destroy p50 ms':>15} {'bid rent ms':>12}  read back after the answer")
    for p in r["preempt"]:
        stopped = "/".join(str(x) for x in p["stopped_outbid"])
        resumed = "/".join(str(x) for x in p["resumed"])
        bid_ms = statistics.median(p["bid_rent_ms"]) if p["bid_rent_ms"] else float("nan")
        print(f"{p['bids']:>6} {statistics.median(p['rent_ms']):12.2f} {max(p['rent_ms']):12.2f} "
              f"{p['statements']:9.0f} {statistics.median(p['destroy_ms']):15.2f} {bid_ms:12.2f}  "
              + (f"stopped+outbid {stopped} of {p['bids']}; running after destroy {resumed}"
                 if p["bids"] else "(no bids)"))
    example = next((p["example_msg"] for p in r["preempt"] if p["example_msg"]), "")
    if example:
        print(f"  a preempted bid read: {example}")
    if "pileup" in r:
        pu = r["pileup"]
        marks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if k <= len(pu["k"])]
        if len(pu["k"]) not in marks:
            marks.append(len(pu["k"]))
        print(f"\nbid pile-up on a 1-GPU machine: k-th ever higher bid (k-1 outbid bids stay live); "
              f"{len(pu['k'])} bids in {pu['total_s']:.1f} s")
        print(f"{'k':>6} {'rent ms':>9} {'SQL stmts':>10}")
        for k in marks:
            print(f"{k:>6} {pu['ms'][k - 1]:9.2f} {pu['statements'][k - 1]:10d}")
    print(f"\nrows at the end: {r['counts_end']}; {r['db_size_end']}")
    print(f"(size done in {r['seconds']:.0f} s; peak RSS of this size's process {r['rss_mib']:,.0f} MiB)",
          flush=True)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def print_summary(results: list[dict[str, Any]], plans: list[str], total_s: float) -> None:
    if plans:
        print(f"\n=== query plans at N = {results[-1]['n']:,} (the SQL search_offers sent) ===")
        print("\n".join(plans))
    sizes = [r["n"] for r in results]
    head = "".join(f"{n:>16,}" for n in sizes)
    print(f"\n=== summary (machines: {', '.join(f'{n:,}' for n in sizes)}) ===")
    print(f"{'':<50}{head}")

    def line(label: str, cells: list[str]) -> None:
        print(f"{label:<50}" + "".join(f"{c:>16}" for c in cells))

    for i, what in enumerate(("fleet load s (parse+apply)", "fleet reload s (all updated)")):
        if all(len(r["load"]) > i for r in results):
            line(what, [f"{r['load'][i]['total_s']:.2f}" for r in results])
    line("asks after load (active GPU asks)",
         [f"{r['counts_after_load']['asks']:,} ({r['counts_after_load']['active_gpu_asks']:,})"
          for r in results])
    for kind in LABELS:
        for layer in ("sql", "service", "http"):
            line(f"{LABELS[kind][:38]} {layer} p50/p95",
                 [f"{r[layer][kind]['p50']:.1f}/{r[layer][kind]['p95']:.1f}" for r in results])
        line(f"{LABELS[kind][:38]} rows", [f"{r['service'][kind]['rows']:.0f}" for r in results])
    line("(B) answer: jsonable_encoder / json.dumps ms",
         [f"{r['encoding']['jsonable_encoder_ms']:.0f} / {r['encoding']['json_dumps_ms']:.0f}"
          for r in results])
    for j, label in enumerate(("rent req/s, 1 thread", "destroy req/s, 1 thread",
                               "rent req/s, 4 threads", "destroy req/s, 4 threads")):
        line(label, [f"{r['rent'][j]['rps']:.1f} (p50 {r['rent'][j]['p50_ms']:.0f})" for r in results])
    for i, nb in enumerate(PREEMPT_NS):
        line(f"on-demand over {nb} bids: rent p50 ms",
             [f"{statistics.median(r['preempt'][i]['rent_ms']):.1f}" for r in results])
    if all("pileup" in r for r in results):
        line("pile-up: last bid ms (k)",
             [f"{r['pileup']['ms'][-1]:.0f} ({r['pileup']['k'][-1]})" for r in results])
    line("peak RSS MiB", [f"{r['rss_mib']:,.0f}" for r in results])
    line("size wall time s", [f"{r['seconds']:.0f}" for r in results])
    print(f"whole run {total_s:.0f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000],
                   help="fleet sizes in machines")
    p.add_argument("--db", help="a PostgreSQL URL (tables are DROPPED and recreated per size); "
                   "default: a SQLite file in a temp dir per size")
    p.add_argument("--reps", type=int, default=50, help="timed calls per search and layer")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--search-budget", type=float, default=15.0,
                   help="stop timing a search (per layer) after this many seconds, once it has "
                   "made 5 timed calls")
    p.add_argument("--rent-seconds", type=float, default=8.0,
                   help="stop starting rentals after this long (per run)")
    p.add_argument("--rent-max", type=int, default=400, help="at most this many rentals per run")
    p.add_argument("--preempt-reps", type=int, default=5)
    p.add_argument("--pileup", type=int, default=64, help="bids in the pile-up (0: skip it)")
    p.add_argument("--no-reload", dest="reload", action="store_false",
                   help="skip the second (update-in-place) fleet load")
    p.add_argument("--sweeper", action="store_true",
                   help="run the background reconciler sweep, as `gpuyard serve` does")
    p.add_argument("--analyze", action="store_true", help="run ANALYZE after the load (SQLite)")
    p.add_argument("--tmpdir", help="where the SQLite temp dirs go")
    p.add_argument("--keep", action="store_true", help="keep the SQLite files")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--one-size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--explain", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result-file", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.db and make_url(args.db).get_backend_name() == "sqlite":
        p.error("--db is for PostgreSQL; SQLite databases are made in a temp dir")

    if args.one_size is not None:  # a child: one size, results as JSON
        res = run_size(args, args.one_size)
        Path(args.result_file).write_text(json.dumps(res))
        return 0

    sizes = sorted(set(args.sizes))
    import sqlite3

    import sqlalchemy
    print(f"gpuyard offers/instances benchmark: sizes {sizes}, {args.reps} reps/search, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, SQLAlchemy {sqlalchemy.__version__}"
          + ("" if args.db else f", SQLite {sqlite3.sqlite_version}")
          + (", background reconciler on" if args.sweeper else ""), flush=True)
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    # drop --sizes and its values; each child gets --one-size instead
    child_args, skip = [], False
    for a in passthrough:
        if a == "--sizes":
            skip = True
            continue
        if skip and not a.startswith("--"):
            continue
        skip = False
        child_args.append(a)
    results, plans = [], []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpuyard-offers-res-") as tmp:
        for n in sizes:
            res_file = os.path.join(tmp, f"{n}.json")
            cmd = [sys.executable, os.path.abspath(__file__), *child_args, "--one-size", str(n),
                   "--result-file", res_file] + (["--explain"] if n == sizes[-1] else [])
            rc = subprocess.call(cmd)
            if rc != 0:
                print(f"size {n}: child exited with {rc}", file=sys.stderr)
                return rc
            res = json.loads(Path(res_file).read_text())
            results.append(res)
            plans = res.get("plans") or plans
    print_summary(results, plans, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
