"""Template search and create benchmark (a benchmark script, not a test: it asserts nothing).

For each size N it

1. creates a fresh database (a SQLite file in its own temp dir by default; with ``--db`` a
   PostgreSQL URL whose tables are dropped and recreated for every size) and runs ``migrate``;
2. fills it with N templates (plus ~10% older versions in ``template_versions``) using SQLAlchemy
   Core bulk inserts in batches of ``--batch`` rows. ~50 creators (made with ``create_user``),
   names from word lists + numbers (about 3 templates per name at every size), a mix of images,
   tags, env strings, ssh/jupyter/direct flags, ~35% private, ~2% deleted, ``count_created`` from
   a log-normal distribution (median ~3, ~2% above 100) and ``created_at`` spread over a year.
   Every row's content and ``hash_id`` come from the project's own ``build_content`` /
   ``content_hash`` for every row, no sampling: ~40 us a row, about half of the ~2 min fill at
   1M (the output splits content building from inserting);
3. times three searches through the service layer (``search_templates`` in a read-only
   ``transaction`` session, as the API does for GET, acting as one of the creators, rotating
   over them; the time includes opening and committing the transaction): (a) ``name eq`` an
   existing public name, (b) ``count_created > T and use_ssh == true`` ordered by
   ``count_created desc``, limit 50 (T varies in 100..150), (c) ``hash_id eq`` an existing hash
   (current or older version);
4. times the same three searches over HTTP against a real uvicorn server (``create_app`` on
   127.0.0.1, a background thread of this process) with httpx keep-alive, the query string encoded
   exactly like the official ``vastai`` client (``select_cols=["*"]``, ``select_filters=<json>``,
   ``order_by``, ``limit``; JSON then ``quote_plus``);
5. measures create-template throughput over HTTP (``POST /api/v0/template/`` with distinct
   image/name/env bodies) for ``--create-seconds`` or ``--create-max`` requests, whichever comes
   first, sequentially and with 4 client threads.

It prints a table per size, the EXPLAIN QUERY PLAN (SQLite) / EXPLAIN ANALYZE (PostgreSQL) of the
exact SQL the service layer sent for each search at the largest size (captured with a
``before_cursor_execute`` hook), and a summary of p50(largest) / p50(smallest).

Run (from the project root)::

    .venv/bin/python bench/templates_search.py                       # 10k and 100k, SQLite
    .venv/bin/python bench/templates_search.py --sizes 10000 100000 1000000
    .venv/bin/python bench/templates_search.py --sizes 1000000 --reps 100   # 1M alone
    .venv/bin/python bench/templates_search.py --db postgresql+psycopg://u:p@host/db

1M on SQLite needs ~1.4 GB of disk in the temp dir (``--tmpdir`` to move it) and, on 2 cores,
~2 min to fill plus ~2 min of searches while the slow SQLite plans described in README.md are
there (each size's output line shows the peak RSS). The whole 10k+100k+1M run took ~5 min here.

Options worth knowing: ``--analyze`` runs ``ANALYZE`` after the fill (SQLite keeps no statistics
unless told to; the application never does, so the default measures the plans a real gpuyard
database gets). On PostgreSQL the script always runs ``ANALYZE`` after the fill, as autovacuum
would within a minute of such a load. ``--keep`` keeps the SQLite files.

Note: the server runs in this process, so the HTTP client and server share the GIL and the 2
cores; HTTP figures are an upper bound on the cost of the HTTP layer, not a load test.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import random
import resource
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
import orjson
from sqlalchemy import Engine, event, insert
from sqlalchemy.engine import make_url

from gpuyard.services.accounts.users import create_user
from gpuyard.services.catalog import template_rows
from gpuyard.services.catalog.template_content import build_content, content_hash
from gpuyard.services.catalog.templates import search_templates_encoded
from gpuyard.settings import Settings
from gpuyard.store.db import make_engine, make_sessionmaker, migrate, transaction
from gpuyard.store.models import Base, Template, TemplateVersion, User
from gpuyard.template_flags import fields_from_flags
from gpuyard.wire.templates import TemplateSearch


def search_templates(session, user, filters, order, limit, cols):
    """A template search as the API runs it: the arguments checked, then the service."""
    return search_templates_encoded(session, user, TemplateSearch.parse(filters, order, limit, cols))


def read_transaction(factory):
    """``transaction(factory, write=False)`` where the project has it (what the API uses for
    GET), else plain ``transaction(factory)``."""
    if "write" in inspect.signature(transaction).parameters:
        return transaction(factory, write=False)
    return transaction(factory)


# --------------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------------

ADJECTIVES = (
    "fast tiny big quiet bright dark swift lazy brave calm clever eager fancy gentle happy "
    "jolly kind lively mighty noble proud silly witty zesty ancient blue red green golden "
    "silver cosmic neural quantum rapid solid stable turbo ultra vivid"
).split()
NOUNS = (
    "llama mistral falcon phoenix tiger panda otter badger eagle raven comet nebula pulsar "
    "quasar rocket engine forge anvil lab studio notebook trainer runner server worker "
    "pipeline cluster node agent oracle sage scribe painter diffuser whisper vision coder "
    "chat bench"
).split()
IMAGES = [
    ("pytorch/pytorch", ("latest", "2.4.0-cuda12.4-cudnn9-runtime", "2.3.1-cuda12.1-cudnn8-devel")),
    ("vllm/vllm-openai", ("latest", "v0.6.1", "v0.5.4")),
    ("nvidia/cuda", ("12.4.1-devel-ubuntu22.04", "12.1.0-runtime-ubuntu22.04", "11.8.0-base")),
    ("tensorflow/tensorflow", ("latest-gpu", "2.15.0-gpu")),
    ("ghcr.io/huggingface/text-generation-inference", ("latest", "2.2.0", "2.0.4")),
    ("jupyter/datascience-notebook", ("latest", "python-3.11")),
    ("vastai/base-image", ("cuda-12.1.1-auto", "cuda-11.8.0-auto")),
    ("ollama/ollama", ("latest", "0.3.6")),
    ("comfyanonymous/comfyui", ("latest",)),
    ("runpod/stable-diffusion", ("web-ui-10.2.1", "latest")),
    ("rocm/pytorch", ("latest",)),
    ("ubuntu", ("22.04", "24.04", "latest")),
]
IMAGE_WEIGHTS = [20, 15, 12, 6, 8, 6, 10, 7, 5, 4, 2, 5]
MODELS = ("meta-llama/Llama-3.1-8B", "mistralai/Mistral-7B-v0.3", "Qwen/Qwen2-7B",
          "google/gemma-2-9b", "microsoft/phi-3-mini", "stabilityai/sdxl")
EXTRA_FILTERS = (
    {},
    {},
    {"gpu_name": {"eq": "RTX_4090"}},
    {"num_gpus": {"gte": 2}, "gpu_ram": {"gte": 24000}},
    {"cuda_max_good": {"gte": 12.1}},
    {"verified": {"eq": True}, "reliability": {"gte": 0.98}},
)
DISKS = (None, 20, 32, 50, 100, 200)
N_CREATORS = 50
YEAR = 365 * 86400.0
START = 1_700_000_000.0


def creator_weights() -> list[float]:
    """A few prolific creators, a long tail of occasional ones."""
    return [1.0 / (k + 1) ** 0.8 for k in range(N_CREATORS)]


def make_changes(rng: random.Random, i: int, name_range: int) -> dict[str, Any]:
    """The create payload of template number ``i`` (the input of ``build_content``)."""
    image, tags = rng.choices(IMAGES, IMAGE_WEIGHTS)[0]
    r = rng.random()
    jupyter, ssh = r < 0.25, 0.25 <= r < 0.60
    direct = rng.random() < 0.5
    name = None
    if rng.random() > 0.05:
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.randint(1, name_range)}"
    env = None
    if rng.random() < 0.8:
        port = rng.choice((7860, 8000, 8080, 8188, 11434))
        env = f"-e MODEL_ID={rng.choice(MODELS)} -p {port}:{port}"
        if rng.random() < 0.3:
            env += f" -e MAX_BATCH={rng.choice((8, 16, 32, 64))}"
    return {
        "name": name,
        "image": image,
        "tag": rng.choice(tags),
        "env": env,
        "onstart": "bash /root/onstart.sh" if rng.random() < 0.4 else None,
        "desc": f"{name or image} template (#{i})",
        "extra_filters": rng.choice(EXTRA_FILTERS),
        "recommended_disk_space": rng.choice(DISKS),
        "private": rng.random() < 0.35,
        "jupyter_dir": "/workspace" if jupyter else None,
        **fields_from_flags(ssh=ssh, jupyter=jupyter, direct=direct,
                            jupyter_lab=jupyter and rng.random() < 0.5),
    }


class Reservoir:
    """A uniform sample of at most ``k`` items from a stream."""

    def __init__(self, k: int, rng: random.Random):
        self.k, self.rng, self.seen, self.items = k, rng, 0, []

    def add(self, item: Any) -> None:
        self.seen += 1
        if len(self.items) < self.k:
            self.items.append(item)
        else:
            j = self.rng.randrange(self.seen)
            if j < self.k:
                self.items[j] = item


@dataclass
class FillResult:
    seconds: float
    content_seconds: float
    insert_seconds: float
    versions: int
    creator_keys: dict[int, str]
    names: list[str]
    hashes: list[str]
    notes: list[str] = field(default_factory=list)


def row_json(row: dict[str, Any]) -> str:
    """A bulk-inserted template's search row, as services/catalog/template_rows.py encodes it."""
    return orjson.dumps({k: row[k] for k in template_rows.ROW_KEYS}).decode()


def fill(engine: Engine, n: int, batch: int, seed: int) -> FillResult:
    """Users through the service layer, then N templates with Core bulk inserts."""
    rng = random.Random(seed)
    factory = make_sessionmaker(engine)
    keys: dict[int, str] = {}
    with transaction(factory) as session:
        for k in range(N_CREATORS):
            user, key = create_user(session, f"creator{k:02d}")
            keys[user.id] = key
    creator_ids = list(keys)
    weights = creator_weights()
    name_range = max(1, math.ceil(n / (3 * len(ADJECTIVES) * len(NOUNS))))
    names, hashes = Reservoir(2000, rng), Reservoir(2000, rng)
    t_table, v_table = Template.__table__, TemplateVersion.__table__
    content_s = insert_s = 0.0
    versions = 0
    t0 = time.perf_counter()
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # Connection-level only (no schema change): a bigger page cache, no fsync while
            # loading. The searches later use fresh connections with the project's pragmas.
            # Set on the DBAPI connection, outside any SQLAlchemy transaction.
            cur = conn.connection.dbapi_connection.cursor()
            cur.execute("PRAGMA cache_size=-1048576")
            cur.execute("PRAGMA synchronous=OFF")
            cur.close()
        for start in range(1, n + 1, batch):
            c0 = time.perf_counter()
            trows: list[dict[str, Any]] = []
            vrows: list[dict[str, Any]] = []
            for i in range(start, min(start + batch, n + 1)):
                changes = make_changes(rng, i, name_range)
                created = START + YEAR * (i - 1) / n + rng.uniform(0, 3600)
                old_hash = None
                if rng.random() < 0.10:  # edited once: an older version with another tag
                    old = build_content({**changes, "tag": "0.0.1-old"})
                    old_hash = content_hash(old)
                    vrows.append({"template_id": i, "version": 1, "hash_id": old_hash,
                                  "content": old, "created_at": created, "private": old["private"]})
                content = build_content(changes)
                hash_id = content_hash(content)
                updated = created + (rng.uniform(3600, 30 * 86400) if old_hash else 0.0)
                vrows.append({"template_id": i, "version": 2 if old_hash else 1,
                              "hash_id": hash_id, "content": content, "created_at": updated,
                              "private": content["private"]})
                count = int(rng.lognormvariate(1.0, 1.8))
                deleted = updated + 86400.0 if rng.random() < 0.02 else None
                trows.append({
                    **content,
                    "id": i,
                    "creator_id": rng.choices(creator_ids, weights)[0],
                    "hash_id": hash_id,
                    "created_at": created,
                    "updated_at": updated,
                    "deleted_at": deleted,
                    "count_created": count,
                    "recent_create_date": created + rng.uniform(0, 86400 * 30) if count else None,
                    "recommended": rng.random() < 0.001,
                    "default_tag": content["tag"],
                    "volume_info": None,
                })
                trows[-1]["row_json"] = row_json(trows[-1])  # what the ORM hook keeps
                if deleted is None and not content["private"]:
                    if content["name"] is not None:
                        names.add(content["name"])
                    hashes.add(old_hash if old_hash and rng.random() < 0.3 else hash_id)
            c1 = time.perf_counter()
            with conn.begin():
                conn.execute(insert(t_table), trows)
                conn.execute(insert(v_table), vrows)
            insert_s += time.perf_counter() - c1
            content_s += c1 - c0
            versions += len(vrows)
        if engine.dialect.name == "postgresql":
            with conn.begin():
                for table in ("templates", "template_versions"):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
        if engine.dialect.name == "sqlite":
            cur = conn.connection.dbapi_connection.cursor()
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cur.close()
    return FillResult(time.perf_counter() - t0, content_s, insert_s, versions, keys,
                      names.items, hashes.items)


# --------------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------------


@contextmanager
def fresh_database(base_url: str | None, n: int, tmp_root: str | None, keep: bool):
    """Yield a URL to an empty, migrated database for one size."""
    if base_url is None:
        d = tempfile.mkdtemp(prefix=f"gpuyard-bench-{n}-", dir=tmp_root)
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
        return f"{total / 2**20:,.0f} MiB on disk"
    engine = make_engine(url)
    with engine.connect() as conn:
        size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
    engine.dispose()
    return f"{size / 2**20:,.0f} MiB (pg_database_size)"


# --------------------------------------------------------------------------------------------
# Searches
# --------------------------------------------------------------------------------------------


@dataclass
class Search:
    key: str
    label: str
    filters: dict
    order: list | None = None
    limit: int | None = None


def make_searches(rng: random.Random, fr: FillResult, reps: int) -> dict[str, list[Search]]:
    """``reps`` parameter sets for each search kind (same sets for service and HTTP)."""
    out: dict[str, list[Search]] = {"a": [], "b": [], "c": []}
    for _ in range(reps):
        out["a"].append(Search("a", "(a) name eq", {"name": {"eq": rng.choice(fr.names)}}))
        t = rng.randint(100, 150)
        out["b"].append(Search("b", "(b) count>T ssh, top 50",
                               {"count_created": {"gt": t}, "use_ssh": {"eq": True}},
                               [["count_created", "desc"]], 50))
        out["c"].append(Search("c", "(c) hash_id eq", {"hash_id": {"eq": rng.choice(fr.hashes)}}))
    return out


LABELS = {"a": "(a) name eq", "b": "(b) count_created>T & use_ssh, desc, 50",
          "c": "(c) hash_id eq"}


@dataclass
class Stats:
    p50: float
    p95: float
    mean: float
    rows: float

    @classmethod
    def of(cls, seconds: list[float], rows: list[int]) -> Stats:
        ms = sorted(s * 1000 for s in seconds)

        def pct(p: float) -> float:
            return ms[min(len(ms) - 1, max(0, math.ceil(p / 100 * len(ms)) - 1))]

        return cls(pct(50), pct(95), statistics.fmean(ms), statistics.fmean(rows))


def bench_service(url: str, fr: FillResult, searches: dict[str, list[Search]], warmup: int):
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        users = [session.get(User, uid) for uid in fr.creator_keys]
    results: dict[str, Stats] = {}
    for kind, items in searches.items():
        times, rows = [], []
        for j, s in enumerate(items[:warmup] + items):
            user = users[j % len(users)]
            t0 = time.perf_counter()
            with read_transaction(factory) as session:
                found = search_templates(session, user, s.filters, s.order, s.limit, ["*"])
            dt = time.perf_counter() - t0
            if j >= warmup:
                times.append(dt)
                rows.append(len(found))
        results[kind] = Stats.of(times, rows)
    engine.dispose()
    return results


def explain(url: str, fr: FillResult, searches: dict[str, list[Search]]) -> list[str]:
    """The plan of the exact SQL ``search_templates`` sends, captured at the cursor."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    captured: list[tuple[str, Any]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if "FROM templates" in statement and "api_keys" not in statement:
            captured.append((statement, parameters))

    out: list[str] = []
    pg = engine.dialect.name == "postgresql"
    with transaction(factory) as session:
        user = session.get(User, next(iter(fr.creator_keys)))
    for kind, items in searches.items():
        s = items[0]
        captured.clear()
        event.listen(engine, "before_cursor_execute", grab)
        with read_transaction(factory) as session:
            search_templates(session, user, s.filters, s.order, s.limit, ["*"])
        event.remove(engine, "before_cursor_execute", grab)
        statement, params = captured[-1]
        prefix = "EXPLAIN ANALYZE " if pg else "EXPLAIN QUERY PLAN "
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(prefix + statement, params).fetchall()
        short = " ".join(statement.split())
        where = short[short.find(" WHERE "):] if " WHERE " in short else short
        out.append(f"--- {LABELS[kind]}  filters={json.dumps(s.filters)}"
                   + (f" order={s.order} limit={s.limit}" if s.order else ""))
        out.append(f"    SQL: SELECT <all columns> FROM templates{where}")
        out.append(f"    params: {params}")
        depth: dict[int, int] = {0: 0}
        for row in plan:
            if pg:
                out.append("    " + row[0])
            else:  # (id, parent, notused, detail): indent by nesting, like the sqlite3 shell
                depth[row[0]] = depth.get(row[1], 0) + 1
                out.append("    " + "  " * depth[row[0]] + row[3])
    engine.dispose()
    return out


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


@contextmanager
def server(url: str):
    """``create_app`` served by uvicorn on a free 127.0.0.1 port in a daemon thread."""
    import uvicorn

    from gpuyard.api.app import create_app

    app = create_app(Settings.build(db_url=url))
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listening socket's proto is TCP; with proto 0 every keep-alive response waits ~40 ms for
    # a delayed ACK (Nagle). ``gpuyard serve`` (uvicorn.run(host, port)) is not affected.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()
        app.state.engine.dispose()


def vast_query(args: dict[str, Any]) -> str:
    """The query string exactly as the official client builds it (vastai VastClient._build_url)."""
    return "&".join(
        f"{x}={quote_plus(y if isinstance(y, str) else json.dumps(y))}"
        for x, y in args.items()
    )


def client(base: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120)


def bench_http(base: str, fr: FillResult, searches: dict[str, list[Search]], warmup: int):
    clients = [client(base, key) for key in fr.creator_keys.values()]
    results: dict[str, Stats] = {}
    try:
        for kind, items in searches.items():
            times, rows = [], []
            for j, s in enumerate(items[:warmup] + items):
                args: dict[str, Any] = {"select_cols": ["*"], "select_filters": s.filters}
                if s.order:
                    args["order_by"] = s.order
                if s.limit is not None:
                    args["limit"] = s.limit
                path = "/api/v0/template/?" + vast_query(args)
                c = clients[j % len(clients)]
                t0 = time.perf_counter()
                r = c.get(path)
                data = r.json()
                dt = time.perf_counter() - t0
                if r.status_code != 200:
                    raise RuntimeError(f"search {kind} failed: {r.status_code} {r.text[:300]}")
                if j >= warmup:
                    times.append(dt)
                    rows.append(len(data["templates"]))
            results[kind] = Stats.of(times, rows)
    finally:
        for c in clients:
            c.close()
    return results


@dataclass
class Throughput:
    threads: int
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    statuses: Counter

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def bench_create(base: str, key: str, threads: int, seconds: float, max_requests: int,
                 tag: str) -> Throughput:
    counter = iter(range(10**9))
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter = Counter()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        rng = random.Random()
        with client(base, key) as c:
            while time.perf_counter() < stop_at:
                with lock:
                    i = next(counter)
                if i >= max_requests:
                    return
                body = {
                    "image": rng.choice(IMAGES)[0],
                    "name": f"bench {tag} {threads}t {i}",
                    "env": f"-e RUN_ID={tag}_{threads}_{i} -p 8000:8000",
                }
                t0 = time.perf_counter()
                r = c.post("/api/v0/template/", json=body)
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    statuses[r.status_code] += 1

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - t0
    st = Stats.of(latencies, [0] * len(latencies))
    return Throughput(threads, len(latencies), elapsed, st.p50, st.p95, statuses)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


@dataclass
class SizeResult:
    n: int
    fill: FillResult
    size: str
    service: dict[str, Stats]
    http: dict[str, Stats]
    creates: list[Throughput]
    total_seconds: float


def run_size(args, n: int, largest: bool) -> tuple[SizeResult, list[str]]:
    t_start = time.perf_counter()
    print(f"\n=== N = {n:,} templates ({'PostgreSQL' if args.db else 'SQLite'}) ===", flush=True)
    with fresh_database(args.db, n, args.tmpdir, args.keep) as url:
        fill_engine = make_engine(url)
        fr = fill(fill_engine, n, args.batch, args.seed)
        fill_engine.dispose()
        engine = make_engine(url)
        if args.analyze or engine.dialect.name == "postgresql":
            t0 = time.perf_counter()
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
            fr.notes.append(f"ANALYZE after fill: {time.perf_counter() - t0:.1f} s")
        engine.dispose()
        size = db_size(url)
        print(f"fill: {fr.seconds:.1f} s = {n / fr.seconds:,.0f} templates/s "
              f"(build_content+content_hash {fr.content_seconds:.1f} s, inserts "
              f"{fr.insert_seconds:.1f} s); {n:,} templates + {fr.versions:,} versions; {size}"
              + "".join(f"; {note}" for note in fr.notes), flush=True)
        searches = make_searches(random.Random(args.seed + 1), fr, args.reps)
        service = bench_service(url, fr, searches, args.warmup)
        print("  service layer done", flush=True)
        plans = explain(url, fr, searches) if largest else []
        creates: list[Throughput] = []
        with server(url) as base:
            http = bench_http(base, fr, searches, args.warmup)
            print("  HTTP searches done", flush=True)
            key = next(iter(fr.creator_keys.values()))
            for threads in (1, 4):
                creates.append(bench_create(base, key, threads, args.create_seconds,
                                            args.create_max, f"n{n}"))
    res = SizeResult(n, fr, size, service, http, creates, time.perf_counter() - t_start)
    print_size(res, args.reps)
    return res, plans


def print_size(r: SizeResult, reps: int) -> None:
    print(f"\n{'search (' + str(reps) + ' reps each)':<42} {'layer':<8} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'mean ms':>8} {'rows/call':>9}")
    for kind in ("a", "b", "c"):
        for layer, res in (("service", r.service), ("http", r.http)):
            s = res[kind]
            print(f"{LABELS[kind]:<42} {layer:<8} {s.p50:8.2f} {s.p95:8.2f} {s.mean:8.2f} "
                  f"{s.rows:9.1f}")
    print(f"\n{'POST /api/v0/template/':<42} {'threads':<8} {'req/s':>8} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'requests':>9}  statuses")
    for c in r.creates:
        st = ", ".join(f"{k}: {v}" for k, v in sorted(c.statuses.items()))
        print(f"{'create template':<42} {c.threads:<8} {c.rps:8.1f} {c.p50_ms:8.2f} "
              f"{c.p95_ms:8.2f} {c.requests:9d}  {st}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(size done in {r.total_seconds:.0f} s; peak RSS of this process so far {rss:,.0f} MiB)",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--db", help="a PostgreSQL URL (tables are DROPPED and recreated per size); "
                   "default: a SQLite file in a temp dir per size")
    p.add_argument("--reps", type=int, default=200, help="timed repetitions per search")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch", type=int, default=10_000, help="rows per bulk insert")
    p.add_argument("--create-seconds", type=float, default=5.0)
    p.add_argument("--create-max", type=int, default=500)
    p.add_argument("--analyze", action="store_true", help="run ANALYZE after the fill (SQLite)")
    p.add_argument("--tmpdir", help="where the SQLite temp dirs go")
    p.add_argument("--keep", action="store_true", help="keep the SQLite files")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    if args.db and make_url(args.db).get_backend_name() == "sqlite":
        p.error("--db is for PostgreSQL; SQLite databases are made in a temp dir")
    sizes = sorted(set(args.sizes))
    print(f"gpuyard templates benchmark: sizes {sizes}, {args.reps} reps/search, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
          + ("" if args.db else f", SQLite {__import__('sqlite3').sqlite_version}")
          + (", ANALYZE after fill" if args.analyze else ""))
    results, plans = [], []
    t0 = time.perf_counter()
    for n in sizes:
        res, p_ = run_size(args, n, n == sizes[-1])
        results.append(res)
        plans = p_ or plans
    print(f"\n=== query plans at N = {sizes[-1]:,} (the SQL search_templates sent) ===")
    print("\n".join(plans))
    small, big = results[0], results[-1]
    print(f"\n=== summary: p50 at N = {big.n:,} vs N = {small.n:,} "
          f"({big.n // small.n}x the rows) ===")
    print(f"{'search':<42} {'layer':<8} {'p50 small':>10} {'p50 large':>10} {'ratio':>7}")
    for kind in ("a", "b", "c"):
        for layer in ("service", "http"):
            a = getattr(small, layer)[kind].p50
            b = getattr(big, layer)[kind].p50
            print(f"{LABELS[kind]:<42} {layer:<8} {a:10.2f} {b:10.2f} {b / a:6.1f}x")
    for i, threads in enumerate((1, 4)):
        a, b = small.creates[i].rps, big.creates[i].rps
        print(f"{'create template req/s':<42} {str(threads) + ' thr':<8} {a:10.1f} {b:10.1f} "
              f"{b / a:6.2f}x")
    print(f"fill time: {small.fill.seconds:.1f} s -> {big.fill.seconds:.1f} s; "
          f"whole run {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
