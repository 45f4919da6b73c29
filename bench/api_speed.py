"""What gpuyard's API costs over HTTP, against a bare FastAPI endpoint serving the same answer
(a benchmark script, not a test: it never fails on speed).

Two requests, each exactly as the official ``vastai`` 1.9.1 client sends it:

- **templates**: ``vastai search templates 'use_ssh == True'``, i.e.
  ``GET /api/v0/template/?select_cols=%5B%22%2A%22%5D&select_filters=<json, quote_plus-ed>``
  with ``Authorization: Bearer <key>`` (VAST-WIRE §1, §3.1), on a database holding ``--templates``
  (2,000) templates of 8 users; 647 of those the benchmark user sees match (at the defaults);
- **offers**: ``vastai search offers`` with no arguments, i.e. ``POST /api/v0/bundles/`` with the
  CLI's default body (VAST-WIRE §4.1), on a fleet of ``--machines`` (1,000) machines loaded the way
  ``bench/offers_instances.py`` loads one (``fleet.parse_fleet`` + ``fleet.apply_fleet``); with no
  ``limit`` in the body the answer holds the server's default limit of 1,000 offers.

Each request goes to two servers, each a uvicorn process of its own (one worker, same uvicorn
settings, access log off, on a free 127.0.0.1 port):

- **gpuyard**: ``create_app(Settings.build(db_url=...))`` with its lifespan on, so the reconciler
  sweeps as it does under ``gpuyard serve``; the simulated runtime;
- **bare**: a FastAPI app with one route per request that answers the answer gpuyard gave,
  captured once and held as a Python object, with
  ``Response(orjson.dumps(obj), media_type="application/json")`` on every request. It reads
  nothing from the request. This is the floor: routing, HTTP and serializing the same JSON.

Before timing, the script checks the set-up and exits with status 1 if it is broken: gpuyard's
answer has the expected row count (templates: counted from what the fill created; offers: what
the service layer finds with no limit, capped at the default limit), the bare server's answer
equals it as parsed JSON, and a second gpuyard answer equals the bare one. Where the ``vastai``
package is importable, the query dict and URL are also checked against its own ``parse_query``
and ``VastClient._build_url``.

Per request kind, the script first measures the single-request latency: the median of
``--single`` sequential requests over one httpx keep-alive connection (time to the last byte of
the answer, JSON not parsed). Then the load, from ``wrk`` (a third process; a Lua script sets the
method, the body and the client's headers): one short warm-up run per server, then ``--rounds``
rounds that alternate gpuyard, bare, gpuyard, bare ... so that drift hits both. Each run prints
requests/s, wrk's p50/p99 latency, and the CPU (from /proc) used by the loaded server, the idle
one, wrk, interrupt handlers, the database's PostgreSQL backends and everything else, so that a
disturbed run shows; then the medians and the ratio gpuyard / bare (the goal is at least 0.20).
A server too slow to finish ``--min-requests`` in ``--seconds`` gets longer runs (wrk loses the
requests in flight when it stops), and after each run the script waits until the loaded server
has finished those abandoned requests, so that their work does not land in the next run. Any
non-2xx answer under load is a broken set-up.

Run (from the project root; wrk must be on PATH: ``apt-get install wrk``)::

    .venv/bin/python bench/api_speed.py                          # SQLite, both requests, ~2.5 min
    .venv/bin/python bench/api_speed.py --only templates --rounds 3 --seconds 3
    .venv/bin/python bench/api_speed.py --db postgresql+psycopg://u@host/db   # DROPS its tables

The load generator, both servers and the database share the machine's cores (2 here): read the
figures as a ratio measured under the same conditions, not as capacity.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx

from gpuyard.settings import Settings

# --------------------------------------------------------------------------------------------
# The requests, as the official client sends them
# --------------------------------------------------------------------------------------------

#: ``vastai search templates 'use_ssh == True'`` parses the query into this dict (§3.1, §5).
TEMPLATE_QUERY_TEXT = "use_ssh == True"
TEMPLATE_FILTERS: dict[str, Any] = {"use_ssh": {"eq": True}}
#: ``vastai search offers`` with no arguments (captured with ``--explain``; §4.1).
OFFERS_BODY: dict[str, Any] = {
    "verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True},
    "order": [["score", "desc"]], "type": "on-demand", "allocated_storage": 5.0,
}
#: Headers the CLI sends on every call (§1); Content-Type only with a body.
CLIENT_HEADERS = {"User-Agent": "vastai-cli/1.9.1", "Accept": "*/*",
                  "Accept-Encoding": "gzip, deflate"}
TEMPLATES_PATH = "/api/v0/template/"
OFFERS_PATH = "/api/v0/bundles/"
#: The share of the bare endpoint's requests/s gpuyard should reach.
GOAL = 0.20
#: % of a core used by other processes during a timed run above which the summary warns.
OTHER_LOAD_WARNING = 20.0


def client_query(args: dict[str, Any]) -> str:
    """The query string as ``vastai.api.client.VastClient._build_url`` builds it: each value
    ``json.dumps``-ed unless it is a str, then ``quote_plus``-ed, joined by ``&`` in order."""
    return "&".join(f"{k}={quote_plus(v if isinstance(v, str) else json.dumps(v))}"
                    for k, v in args.items())


def templates_target() -> str:
    """Path and query of the official ``search templates`` request."""
    return TEMPLATES_PATH + "?" + client_query(
        {"select_cols": ["*"], "select_filters": TEMPLATE_FILTERS})


def check_against_vastai(base: str) -> str:
    """Compare the template query dict and URL with what the installed ``vastai`` package's own
    code makes, when it is importable (the offers body is a constant, captured from the CLI).
    Returns a line for the report; raises SetupError on a mismatch."""
    try:
        from vastai.api.client import VastClient
        from vastai.api.query import fix_date_fields, parse_query, templates_fields
    except ImportError:
        return "vastai package not importable: query and URL not cross-checked"
    filters = fix_date_fields(parse_query(TEMPLATE_QUERY_TEXT, {}, templates_fields),
                              ["created_at", "recent_create_date"])
    if filters != TEMPLATE_FILTERS:
        raise SetupError(f"vastai parses {TEMPLATE_QUERY_TEXT!r} as {filters}, "
                         f"the script sends {TEMPLATE_FILTERS}")
    theirs = VastClient(server_url=base)._build_url(
        "/template/", {"select_cols": ["*"], "select_filters": filters})
    if theirs != base + templates_target():
        raise SetupError(f"URL differs from the client's:\n  vastai: {theirs}\n"
                         f"  script: {base + templates_target()}")
    import importlib.metadata as md

    return (f"query dict and URL equal those of vastai {md.version('vastai')}'s "
            "parse_query / VastClient._build_url")


# --------------------------------------------------------------------------------------------
# Errors, processes and clean-up
# --------------------------------------------------------------------------------------------


class SetupError(Exception):
    """The benchmark cannot measure what it claims to (exit status 1)."""


def _die_with_parent() -> None:
    """In a child, before exec: get SIGTERM when the benchmark dies, even by SIGKILL (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Children:
    """The server processes this run started; all are stopped on exit (also on Ctrl-C)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], log: Path) -> subprocess.Popen:
        with open(log, "wb") as out:
            # A session of its own: Ctrl-C reaches only this script, which stops the servers.
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_die_with_parent)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


@dataclass
class Server:
    name: str
    base: str
    proc: subprocess.Popen
    log: Path


def start_server(children: Children, kind: str, target: str, workdir: Path) -> Server:
    """Start ``serve_child(kind, target)`` in a new process; wait until it answers HTTP."""
    port_file = workdir / f"{kind}.port"
    log = workdir / f"{kind}.log"
    port_file.unlink(missing_ok=True)
    cmd = [sys.executable, os.path.abspath(__file__), "--serve", kind, "--serve-target", target,
           "--serve-port-file", str(port_file)]
    proc = children.start(cmd, log)
    deadline = time.monotonic() + 120
    base = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SetupError(f"the {kind} server exited with {proc.returncode}:\n"
                             + log.read_text(errors="replace")[-3000:])
        if base is None and port_file.exists() and port_file.read_text().strip():
            base = f"http://127.0.0.1:{int(port_file.read_text())}"
        if base is not None:
            try:
                httpx.get(base + "/healthz", timeout=5)  # any answer means it is up
                return Server(kind, base, proc, log)
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    raise SetupError(f"the {kind} server did not answer within 120 s; see {log}")


# --------------------------------------------------------------------------------------------
# The two servers (run in child processes: ``--serve gpuyard|bare``)
# --------------------------------------------------------------------------------------------


def bare_app(bodies_dir: Path):
    """FastAPI, one route per captured answer, each ``orjson.dumps``-ing the object per request."""
    import orjson
    from fastapi import FastAPI, Response

    app = FastAPI()
    templates_file, offers_file = bodies_dir / "templates.json", bodies_dir / "offers.json"

    @app.get("/healthz")
    async def healthz():
        return Response(b'{"success":true}', media_type="application/json")

    if templates_file.exists():
        templates_obj = orjson.loads(templates_file.read_bytes())

        @app.get(TEMPLATES_PATH)
        async def templates():
            return Response(orjson.dumps(templates_obj), media_type="application/json")

    if offers_file.exists():
        offers_obj = orjson.loads(offers_file.read_bytes())

        @app.post(OFFERS_PATH)
        async def offers():
            return Response(orjson.dumps(offers_obj), media_type="application/json")

    return app


def serve_child(kind: str, target: str, port_file: Path) -> int:
    """Child process: serve gpuyard (``target`` = database URL) or the bare app (``target`` =
    directory of captured answers) with uvicorn on a free port, written to ``port_file``."""
    import uvicorn

    if kind == "gpuyard":
        from gpuyard.api.app import create_app

        app = create_app(Settings.build(db_url=target))
    else:
        app = bare_app(Path(target))
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only when the listening
    # socket's proto is TCP; with proto 0 keep-alive answers wait ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(sock.getsockname()[1]))
    tmp.rename(port_file)  # the parent never reads half a number
    # lifespan "on" starts gpuyard's reconciler, as `gpuyard serve` does. The access log is off
    # for both servers (`gpuyard serve` logs at info level, which would print every request).
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


# --------------------------------------------------------------------------------------------
# Database
# --------------------------------------------------------------------------------------------

N_USERS = 8
BENCH_USER = "bench"
OTHER_USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace")
#: Share of private templates. With 8 users owning 1/8 each, the benchmark user sees its own
#: plus half of the others' (about 1,125 of 2,000), and ~60% of those use SSH: ~660 rows.
PRIVATE_SHARE = 0.5
DELETED_SHARE = 0.02
#: The server's search limits (defaults of the settings object; a search without ``limit``
#: returns at most ``default_search_limit`` rows).
LIMITS = Settings(db_url="")


def fresh_database(db: str | None, workdir: Path) -> str:
    """An empty, migrated database: a SQLite file in ``workdir``, or the PostgreSQL ``db`` with
    every table dropped first."""
    from gpuyard.store.db import make_engine, migrate
    from gpuyard.store.models import Base

    url = db or f"sqlite:///{workdir}/bench.db"
    engine = make_engine(url)
    if db:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    migrate(engine)
    engine.dispose()
    return url


@dataclass
class Fill:
    bench_key: str
    templates: int = 0
    deleted: int = 0
    expected_template_rows: int = 0
    machines: int = 0
    asks: int = 0
    expected_offer_rows: int = 0
    matching_offers: int = 0
    notes: list[str] = field(default_factory=list)


def fill_templates(factory, fill: Fill, n: int, users: dict[str, Any], seed: int) -> None:
    """``n`` templates through ``services.catalog.templates.create_template`` (the project's own content
    normalization and hash), with the payloads ``bench/templates_search.py`` makes: names, 12
    images with tags, env strings, onstart, extra_filters, disk sizes, ssh/jupyter/direct flags.
    Creators rotate over the users; ~50% private, ~2% deleted (``delete_template``), and the
    bookkeeping (count_created, created_at, recent_create_date) spread as real use would."""
    from templates_search import ADJECTIVES, NOUNS, make_changes

    from gpuyard.services.catalog.templates import create_template, delete_template
    from gpuyard.store.db import transaction
    from gpuyard.store.models import Template
    from gpuyard.wire.base import parse
    from gpuyard.wire.templates import TemplateCreate, TemplateDelete

    rng = random.Random(seed)
    names = list(users)
    now = time.time()
    expected = 0
    name_range = max(1, math.ceil(n / (3 * len(ADJECTIVES) * len(NOUNS))))  # ~3 per name
    with transaction(factory) as session:
        creators = {name: session.merge(u) for name, u in users.items()}
        for i in range(1, n + 1):
            owner = names[i % len(names)]
            payload = make_changes(rng, i, name_range)
            payload["private"] = rng.random() < PRIVATE_SHARE
            row, created = create_template(session, creators[owner], parse(TemplateCreate, payload))
            if not created:
                raise SetupError(f"template {i} duplicated an earlier one")
            t = session.get(Template, row["id"])
            t.created_at = now - rng.uniform(0, 365 * 86400)
            t.count_created = int(rng.lognormvariate(1.0, 1.8))
            t.recent_create_date = (t.created_at + rng.uniform(0, now - t.created_at)
                                    if t.count_created else None)
            if rng.random() < DELETED_SHARE:
                delete_template(session, creators[owner], parse(TemplateDelete, {"template_id": row["id"]}))
                fill.deleted += 1
            elif row["use_ssh"] and (not row["private"] or owner == BENCH_USER):
                expected += 1
    fill.templates = n
    fill.expected_template_rows = min(expected, LIMITS.default_search_limit)


def load_fleet(factory, fill: Fill, machines: int, seed: int) -> None:
    """``machines`` synthetic machines from ``bench/offers_instances.py``'s generator (without its
    5 fixed preemption machines), through ``fleet.parse_fleet`` + ``fleet.apply_fleet`` as
    ``gpuyard admin load-fleet`` does. Then the expected answer size: what ``search_offers``
    finds for the default body with no limit, capped at the default limit."""
    from offers_instances import make_fleet, special_machines
    from sqlalchemy import func, select

    from gpuyard.services.market import fleet as fleet_svc
    from gpuyard.services.market.offers import search_offers
    from gpuyard.store.db import transaction
    from gpuyard.store.models import Ask, User
    from gpuyard.wire.base import parse
    from gpuyard.wire.offers import OfferSearch

    fleet = make_fleet(machines, seed)[len(special_machines()):]
    with transaction(factory) as session:
        fleet_svc.apply_fleet(session, fleet_svc.parse_fleet({"machines": fleet}))
    with transaction(factory, write=False) as session:
        fill.asks = session.scalar(select(func.count(Ask.id)))
        user = session.scalar(select(User).where(User.username == BENCH_USER))
        search = parse(OfferSearch, {**OFFERS_BODY, "limit": LIMITS.max_search_limit}).checked(
            default_limit=LIMITS.default_search_limit, max_limit=LIMITS.max_search_limit)
        everything = search_offers(session, user, search)
    fill.machines = machines
    fill.matching_offers = len(everything)
    fill.expected_offer_rows = min(len(everything), LIMITS.default_search_limit)
    if len(everything) >= LIMITS.max_search_limit:
        fill.notes.append(f"offers: {len(everything)} matches or more (the service's maximum "
                          "limit); the expected count may be capped")


def build_database(args, workdir: Path) -> tuple[str, Fill]:
    from gpuyard.services.accounts.users import create_user
    from gpuyard.store.db import make_engine, make_sessionmaker, transaction

    url = fresh_database(args.db, workdir)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    users: dict[str, Any] = {}
    with transaction(factory) as session:
        for name in (BENCH_USER, *OTHER_USERS):
            user, key = create_user(session, name)
            users[name] = user
            if name == BENCH_USER:
                fill = Fill(bench_key=key)
    t0 = time.perf_counter()
    if "templates" in args.scenarios:
        fill_templates(factory, fill, args.templates, users, args.seed)
        fill.notes.append(f"templates filled in {time.perf_counter() - t0:.1f} s")
    t1 = time.perf_counter()
    if "offers" in args.scenarios:
        load_fleet(factory, fill, args.machines, args.seed)
        fill.notes.append(f"fleet loaded in {time.perf_counter() - t1:.1f} s")
    if engine.dialect.name == "postgresql":  # as autovacuum would soon after such a load
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        fill.notes.append("ANALYZE after the fill")
    engine.dispose()
    return url, fill


# --------------------------------------------------------------------------------------------
# Scenarios and verification
# --------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    label: str
    method: str
    target: str  # path and query
    body: bytes | None
    answer_key: str  # the list in the answer: "templates" or "offers"
    expected_rows: int
    headers: dict[str, str]
    answer_bytes: int = 0


def scenarios(args, fill: Fill) -> list[Scenario]:
    auth = {**CLIENT_HEADERS, "Authorization": f"Bearer {fill.bench_key}"}
    out = []
    if "templates" in args.scenarios:
        out.append(Scenario(
            "templates", f"vastai search templates '{TEMPLATE_QUERY_TEXT}' "
            f"({fill.templates:,} templates)", "GET", templates_target(), None, "templates",
            fill.expected_template_rows, auth))
    if "offers" in args.scenarios:
        out.append(Scenario(
            "offers", f"vastai search offers ({fill.machines:,} machines)", "POST", OFFERS_PATH,
            # requests' json= : json.dumps with the default separators
            json.dumps(OFFERS_BODY).encode(), "offers", fill.expected_offer_rows,
            {**auth, "Content-Type": "application/json"}))
    return out


def fetch(c: httpx.Client, base: str, s: Scenario) -> httpx.Response:
    r = c.request(s.method, base + s.target, content=s.body, headers=s.headers)
    r.read()
    return r


def first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two parsed JSON values first differ, for the error message."""
    if type(a) is not type(b):
        return f"{path or '.'}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                return f"{path}.{k}: present on one side only"
            if a[k] != b[k]:
                return first_difference(a[k], b[k], f"{path}.{k}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{path}[{i}]")
    return f"{path or '.'}: {a!r:.80} vs {b!r:.80}"


def capture(s: Scenario, gpuyard: Server, bodies_dir: Path) -> Any:
    """gpuyard's answer, checked (status, Content-Type, row count), written for the bare server."""
    with httpx.Client(timeout=120) as c:
        r = fetch(c, gpuyard.base, s)
    if r.status_code != 200:
        raise SetupError(f"{s.name}: gpuyard answered {r.status_code}: {r.text[:500]}")
    ctype = r.headers.get("content-type")
    if ctype != "application/json":  # the official CLI refuses anything else for offers (§4.1)
        raise SetupError(f"{s.name}: gpuyard's Content-Type is {ctype!r}, not application/json")
    data = r.json()
    rows = len(data.get(s.answer_key) or [])
    if rows != s.expected_rows:
        raise SetupError(f"{s.name}: gpuyard returned {rows} rows, expected {s.expected_rows}")
    s.answer_bytes = len(r.content)
    (bodies_dir / f"{s.name}.json").write_bytes(r.content)
    return data


#: Offer fields computed from the clock at every request (seconds until the machine's end date),
#: left out when a later gpuyard answer is compared with the captured one.
CLOCK_FIELDS = {"offers": ("duration",), "templates": ()}


def without_clock(s: Scenario, data: Any) -> Any:
    drop = CLOCK_FIELDS[s.name]
    if not drop or not isinstance(data, dict):
        return data
    return {**data, s.answer_key: [{k: v for k, v in row.items() if k not in drop}
                                   for row in data.get(s.answer_key) or []]}


def verify(s: Scenario, captured: Any, gpuyard: Server, bare: Server) -> None:
    """The bare answer equals the captured one; a second gpuyard answer equals it too, but for
    the fields that follow the clock (CLOCK_FIELDS)."""
    with httpx.Client(timeout=120) as c:
        rb = fetch(c, bare.base, s)
        ra = fetch(c, gpuyard.base, s)
    if rb.status_code != 200 or rb.headers.get("content-type") != "application/json":
        raise SetupError(f"{s.name}: the bare server answered {rb.status_code} "
                         f"{rb.headers.get('content-type')}: {rb.text[:300]}")
    bare_data = rb.json()
    if bare_data != captured:
        raise SetupError(f"{s.name}: the bare answer differs from gpuyard's: "
                         + first_difference(captured, bare_data))
    if ra.status_code != 200:
        raise SetupError(f"{s.name}: gpuyard's second answer has status {ra.status_code}")
    again, first = without_clock(s, ra.json()), without_clock(s, bare_data)
    if again != first:
        raise SetupError(f"{s.name}: gpuyard's second answer differs from its first: "
                         + first_difference(again, first))


# --------------------------------------------------------------------------------------------
# Load (wrk) and single requests (httpx)
# --------------------------------------------------------------------------------------------


def wrk_script(s: Scenario, path: Path) -> Path:
    """A Lua script for wrk: method, body and headers of the scenario."""
    def lua_string(text: str) -> str:
        level = "=" * 3
        while f"]{level}]" in text:
            level += "="
        return f"[{level}[{text}]{level}]"

    lines = [f"wrk.method = {lua_string(s.method)}"]
    if s.body is not None:
        lines.append(f"wrk.body = {lua_string(s.body.decode())}")
    for k, v in s.headers.items():
        lines.append(f"wrk.headers[ {lua_string(k)} ] = {lua_string(v)}")  # "[ [" not "[["
    path.write_text("\n".join(lines) + "\n")
    return path


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


@dataclass
class WrkRun:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: str  # "" when none
    #: CPU used during the run, in % of one core: the loaded server, the idle one, wrk (and this
    #: script), and the rest of the machine (PostgreSQL included). Empty without /proc.
    cpu: dict[str, float] = field(default_factory=dict)
    #: Seconds the server took to finish the requests wrk left in flight (see wait_until_idle).
    settle_s: float = 0.0

    @classmethod
    def parse(cls, out: str) -> WrkRun:
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        reqs = re.search(r"(\d+) requests in", out)
        p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
        p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
        if not (rps and reqs):
            raise SetupError(f"could not read wrk's output:\n{out}")
        non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        errors = re.search(r"Socket errors:\s+(.*)", out)
        return cls(float(rps.group(1)), _ms(p50.group(1)) if p50 else float("nan"),
                   _ms(p99.group(1)) if p99 else float("nan"), int(reqs.group(1)),
                   int(non2xx.group(1)) if non2xx else 0,
                   errors.group(1).strip() if errors else "")


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _pid_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a live process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    rest = stat[stat.rindex(")") + 2:].split()  # fields 3.. of stat(5); utime, stime: 14, 15
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


class PostgresBackends:
    """The PostgreSQL backends serving the benchmark's database, when the server runs on this
    machine (their CPU is shown apart from the rest of the machine)."""

    def __init__(self, db_url: str):
        from gpuyard.store.db import make_engine

        self.engine = make_engine(db_url)

    def cpu(self) -> dict[int, float]:
        """CPU seconds of each backend connected to the database now (but this query's own)."""
        with self.engine.connect() as conn:
            pids = conn.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()").scalars().all()
        out = {}
        for pid in pids:
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "postgres":
                        out[pid] = _pid_cpu(pid)
            except (OSError, ValueError, IndexError):
                pass  # a remote server, or a backend that just left
        return out

    def close(self) -> None:
        self.engine.dispose()


@dataclass
class CpuSnapshot:
    """CPU seconds so far: the machine, its interrupt handlers (loopback traffic is handled
    there), the loaded and the idle server, this script plus the children it has waited for
    (wrk), and each PostgreSQL backend of the database (with ``--db``, when local)."""

    at: float
    busy: float
    irq: float
    loaded: float
    idle: float
    wrk: float
    postgres: dict[int, float]

    @classmethod
    def take(cls, loaded: int, idle: int | None = None,
             postgres: PostgresBackends | None = None) -> CpuSnapshot | None:
        try:
            with open("/proc/stat") as f:
                user, nice, system, _idle, _iowait, irq, softirq, steal = map(
                    int, f.readline().split()[1:9])
            loaded_s = _pid_cpu(loaded)
            idle_s = _pid_cpu(idle) if idle else 0.0
        except (OSError, ValueError, IndexError):
            return None  # no /proc: no CPU figures
        me = resource.getrusage(resource.RUSAGE_SELF)
        waited = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(time.monotonic(), (user + nice + system + irq + softirq + steal) / CLK_TCK,
                   (irq + softirq) / CLK_TCK, loaded_s, idle_s,
                   me.ru_utime + me.ru_stime + waited.ru_utime + waited.ru_stime,
                   postgres.cpu() if postgres else {})

    def shares(self, later: CpuSnapshot | None) -> dict[str, float]:
        """% of one core used by each part between this snapshot and ``later``."""
        if later is None:
            return {}
        pct = 100 / (later.at - self.at)
        d = {k: (getattr(later, k) - getattr(self, k)) * pct
             for k in ("busy", "irq", "loaded", "idle", "wrk")}
        # backends that connected during the run count from zero; those that left are lost
        d["postgres"] = sum(s - self.postgres.get(pid, 0.0)
                            for pid, s in later.postgres.items()) * pct
        out = {"server": d["loaded"], "idle": d["idle"], "wrk": d["wrk"], "irq": d["irq"]}
        if later.postgres:
            out["postgres"] = d["postgres"]
        known = d["irq"] + d["loaded"] + d["idle"] + d["wrk"] + d["postgres"]
        out["rest"] = max(0.0, d["busy"] - known)
        return out


def wait_until_idle(pid: int, limit: float = 5.0, window: float = 0.5, timeout: float = 60.0
                    ) -> float:
    """Wait until process ``pid`` uses less than ``limit``% of a core over ``window`` seconds.
    When wrk stops, the server still works through the requests in flight (it learns that the
    client left only when it writes the answer); without this wait that work would run during
    the other server's next run. Returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        a = CpuSnapshot.take(pid)
        time.sleep(window)
        b = CpuSnapshot.take(pid)
        if a is None or b is None or a.shares(b)["server"] < limit:
            break
    return time.monotonic() - t0


def run_wrk(url: str, script: Path, args, seconds: int, loaded: Server | None = None,
            idle: Server | None = None) -> WrkRun:
    """One wrk run against ``url`` (served by ``loaded``, for the CPU shares)."""
    def snapshot() -> CpuSnapshot | None:
        if loaded is None:
            return None
        return CpuSnapshot.take(loaded.proc.pid, idle.proc.pid if idle else None,
                                args.postgres)

    before = snapshot()
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s",
           f"--timeout={args.wrk_timeout}s", "--latency", "-s", str(script), url]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120,
                              stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"wrk did not finish: {' '.join(cmd)}") from exc
    if proc.returncode != 0 or proc.stderr.strip():  # a Lua error only prints a line
        raise SetupError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    result = WrkRun.parse(proc.stdout)
    after = snapshot()
    result.cpu = before.shares(after) if before else {}
    if result.non2xx:  # then req/s would count error answers: the comparison is void
        raise SetupError(f"{result.non2xx} of {result.requests} answers under load were not 2xx "
                         f"({url})")
    return result


def single_latency(base: str, s: Scenario, n: int, warmup: int = 3) -> list[float]:
    """Milliseconds of ``n`` sequential requests on one keep-alive connection (after warm-up),
    to the last byte of the answer; the JSON is not parsed."""
    out = []
    with httpx.Client(timeout=120) as c:
        for i in range(warmup + n):
            t0 = time.perf_counter()
            r = fetch(c, base, s)
            dt = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                raise SetupError(f"{s.name}: {base} answered {r.status_code} during the "
                                 "single-request run")
            if i >= warmup:
                out.append(dt)
    return out


# --------------------------------------------------------------------------------------------
# Measuring and printing
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    scenario: Scenario
    rounds: dict[str, list[WrkRun]]
    single: dict[str, list[float]]

    def median(self, side: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.rounds[side])

    def median_run(self, side: str) -> WrkRun:
        """Medians of each figure over the rounds (requests: the total)."""
        runs = self.rounds[side]
        keys = {k: None for r in runs for k in r.cpu}  # in order, from every run
        cpu = {k: statistics.median(r.cpu.get(k, 0.0) for r in runs) for k in keys}
        return WrkRun(self.median(side, "rps"), self.median(side, "p50_ms"),
                      self.median(side, "p99_ms"), sum(r.requests for r in runs), 0,
                      "; ".join(r.socket_errors for r in runs if r.socket_errors), cpu)

    @property
    def ratio(self) -> float:
        return self.median("gpuyard", "rps") / self.median("bare", "rps")


def fmt_run(side: str, r: WrkRun) -> str:
    line = (f"{side:<8} {r.rps:8.1f} req/s  p50 {r.p50_ms:8.2f} ms  p99 {r.p99_ms:8.2f} ms"
            f"  {r.requests:6d} req")
    if r.cpu:
        line += "  cpu: " + " ".join(f"{k} {v:.0f}" for k, v in r.cpu.items())
    if r.settle_s > 1:
        line += f"  (busy {r.settle_s:.1f} s after wrk stopped)"
    if r.socket_errors:
        line += f"   ** socket errors: {r.socket_errors} **"
    return line


def run_seconds(args, single_ms: list[float]) -> int:
    """``--seconds``, lengthened for a server so slow that it would finish fewer than
    ``--min-requests`` requests: wrk counts only finished requests, so the up to
    ``--connections`` requests still in flight when a run stops are lost work, a bias that
    matters when a run holds few requests. The rate is estimated from the single-request median
    (for a server that uses one core per request, about its rate under load). At most 60 s."""
    needed = args.min_requests * statistics.median(single_ms) / 1000
    return min(max(args.seconds, math.ceil(needed)), max(args.seconds, 60))


def measure(s: Scenario, servers: dict[str, Server], args, workdir: Path) -> Result:
    """Single-request latency, then wrk: a warm-up run per server and ``--rounds`` rounds
    alternating gpuyard, bare, gpuyard, bare ..."""
    script = wrk_script(s, workdir / f"{s.name}.lua")
    urls = {side: srv.base + s.target for side, srv in servers.items()}
    print(f"\n--- {s.label}: {s.method} {s.target}")
    single = {side: single_latency(srv.base, s, args.single) for side, srv in servers.items()}
    seconds = {side: run_seconds(args, ms) for side, ms in single.items()}
    runs = ", ".join(f"{side} {sec:g} s" for side, sec in seconds.items())
    print(f"    answer: {s.expected_rows} rows, {s.answer_bytes:,} bytes from gpuyard; "
          f"wrk -t{args.threads} -c{args.connections}, runs of {runs}; "
          f"{args.rounds} rounds alternating gpuyard / bare", flush=True)
    print("    cpu: % of one core used during the run by the loaded server, the idle one, wrk, "
          "the kernel's interrupt handlers (loopback traffic), "
          + ("the PostgreSQL backends of the database, " if args.db else "")
          + "and every other process", flush=True)
    if args.warmup > 0:
        for side, url in urls.items():
            run_wrk(url, script, args, args.warmup)
            wait_until_idle(servers[side].proc.pid)
    rounds: dict[str, list[WrkRun]] = {side: [] for side in urls}
    for k in range(1, args.rounds + 1):
        for side, url in urls.items():
            idle = next(srv for name, srv in servers.items() if name != side)
            run = run_wrk(url, script, args, seconds[side], servers[side], idle)
            run.settle_s = wait_until_idle(servers[side].proc.pid)
            rounds[side].append(run)
            print(f"    round {k}  {fmt_run(side, run)}", flush=True)
    res = Result(s, rounds, single)
    print("    median of the rounds (requests: all rounds together):")
    for side in urls:
        print(f"    median   {fmt_run(side, res.median_run(side))}")
    print(f"    ratio gpuyard / bare: {res.ratio:.3f} ({res.ratio * 100:.1f}% of the bare "
          f"endpoint's req/s; goal >= {GOAL:.2f}: {'met' if res.ratio >= GOAL else 'not met'})")
    for side, ms in single.items():
        print(f"    single request, {side:<8} median {statistics.median(ms):8.2f} ms "
              f"(min {min(ms):.2f}, max {max(ms):.2f}; {len(ms)} sequential requests)")
    return res


def versions(db_url: str) -> list[str]:
    import importlib.metadata as md
    import importlib.util
    import sqlite3

    def v(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "not installed"

    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    db = f"SQLite {sqlite3.sqlite_version} (file)"
    if not db_url.startswith("sqlite"):
        from gpuyard.store.db import make_engine
        engine = make_engine(db_url)
        with engine.connect() as conn:
            db = "PostgreSQL " + conn.exec_driver_sql("SHOW server_version").scalar()
        engine.dispose()
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("[")[0]
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    commit = subprocess.run(["git", "-C", str(Path(__file__).parent), "describe", "--always",
                             "--dirty"], capture_output=True, text=True).stdout.strip()
    return [
        f"machine: {os.cpu_count()} cores ({usable} usable){', ' + cpu if cpu else ''}; "
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}; {db}; SQLAlchemy {v('sqlalchemy')}",
        f"FastAPI {v('fastapi')}, Starlette {v('starlette')}, pydantic {v('pydantic')}, "
        f"uvicorn {v('uvicorn')} ({http}, {loop} loop), orjson {v('orjson')}, httpx {v('httpx')}",
        f"load generator: {wrk_v.strip()}; gpuyard {v('gpuyard')} at {commit or '?'}",
        f"load average before the run: {load_average()} (anything else running skews both sides)",
    ]


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_summary(results: list[Result]) -> None:
    print("\n=== summary (medians over the rounds) ===")
    print(f"{'request':<12} {'gpuyard req/s':>14} {'bare req/s':>11} {'ratio':>7} "
          f"{'gpuyard p50/p99 ms':>19} {'bare p50/p99 ms':>16} {'single ms g / b':>16}")
    for r in results:
        g, b = r.single["gpuyard"], r.single["bare"]
        print(f"{r.scenario.name:<12} {r.median('gpuyard', 'rps'):14.1f} "
              f"{r.median('bare', 'rps'):11.1f} {r.ratio:7.3f} "
              f"{r.median('gpuyard', 'p50_ms'):>9.1f}/{r.median('gpuyard', 'p99_ms'):<9.1f} "
              f"{r.median('bare', 'p50_ms'):>7.1f}/{r.median('bare', 'p99_ms'):<8.1f} "
              f"{statistics.median(g):>7.1f} / {statistics.median(b):<6.1f}")
    print(f"(goal: ratio >= {GOAL:.2f}; the load generator shares the cores with both servers; "
          f"load average now {load_average()})")
    rest = [run.cpu["rest"] for r in results for runs in r.rounds.values() for run in runs
            if "rest" in run.cpu]
    if rest:
        worst = max(rest)
        print(f"other processes during the timed runs: median {statistics.median(rest):.0f}%, "
              f"max {worst:.0f}% of one core"
              + ("  ** the machine was not quiet: these figures are disturbed **"
                 if worst > OTHER_LOAD_WARNING else ""))


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def run(args) -> int:
    children = Children()
    workdir = Path(tempfile.mkdtemp(prefix="gpuyard-api-speed-", dir=args.tmpdir))
    bodies = workdir / "bodies"
    bodies.mkdir()
    args.postgres = None
    try:
        t0 = time.perf_counter()
        url, fill = build_database(args, workdir)
        if args.db:
            args.postgres = PostgresBackends(url)
        for line in versions(url):
            print(line)
        data = []
        if "templates" in args.scenarios:
            data.append(f"{fill.templates:,} templates of {N_USERS} users ({fill.deleted} deleted)")
        if "offers" in args.scenarios:
            data.append(f"{fill.machines:,} machines ({fill.asks:,} asks, "
                        f"{fill.matching_offers:,} match the default offer search)")
        print("data: " + ", ".join(data) + "; " + "; ".join(fill.notes), flush=True)
        gpuyard = start_server(children, "gpuyard", url, workdir)
        print(f"vastai cross-check: {check_against_vastai(gpuyard.base)}")
        todo = scenarios(args, fill)
        captured = {s.name: capture(s, gpuyard, bodies) for s in todo}
        bare = start_server(children, "bare", str(bodies), workdir)
        for s in todo:
            verify(s, captured[s.name], gpuyard, bare)
            print(f"checked {s.name}: gpuyard and bare both answer the same {s.expected_rows} "
                  f"{s.answer_key} ({s.answer_bytes:,} bytes from gpuyard)")
        print(f"set-up took {time.perf_counter() - t0:.1f} s", flush=True)
        servers = {"gpuyard": gpuyard, "bare": bare}
        results = [measure(s, servers, args, workdir) for s in todo]
        for srv in servers.values():
            if srv.proc.poll() is not None:
                raise SetupError(f"the {srv.name} server died during the run; see {srv.log}")
        print_summary(results)
        return 0
    except SetupError as exc:
        print(f"\nbroken set-up: {exc}", file=sys.stderr)
        return 1
    finally:
        children.stop_all()
        if args.postgres:
            args.postgres.close()
        if args.keep:
            print(f"(kept {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", help="a PostgreSQL URL: ALL ITS TABLES ARE DROPPED and recreated; "
                   "default: a SQLite file in a temp dir")
    p.add_argument("--templates", type=int, default=2000, help="templates in the database")
    p.add_argument("--machines", type=int, default=1000, help="machines in the fleet")
    p.add_argument("--only", choices=("templates", "offers"), help="run one request kind")
    p.add_argument("--rounds", type=int, default=5, help="wrk runs per server, alternating")
    p.add_argument("--seconds", type=int, default=5,
                   help="length of each wrk run (longer for a server too slow to finish "
                   "--min-requests in that time)")
    p.add_argument("--min-requests", type=int, default=50,
                   help="lengthen a server's runs (up to 60 s) so that each should finish about "
                   "this many requests")
    p.add_argument("--connections", type=int, default=8, help="wrk connections (-c)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (-t)")
    p.add_argument("--warmup", type=int, default=2,
                   help="seconds of an unrecorded wrk run per server first (0: none)")
    p.add_argument("--wrk-timeout", type=int, default=30,
                   help="wrk's per-request timeout in seconds (its default, 2 s, would count "
                   "slow answers as errors)")
    p.add_argument("--single", type=int, default=30,
                   help="sequential requests for the single-request latency")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--tmpdir", help="where the temp dir (SQLite file, logs) goes")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    p.add_argument("--serve", choices=("gpuyard", "bare"), help=argparse.SUPPRESS)
    p.add_argument("--serve-target", help=argparse.SUPPRESS)
    p.add_argument("--serve-port-file", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.serve:
        return serve_child(args.serve, args.serve_target, Path(args.serve_port_file))
    if args.db and args.db.startswith("sqlite"):
        p.error("--db is for PostgreSQL; the SQLite file is made in a temp dir")
    if args.connections < args.threads:
        p.error("--connections must be at least --threads")
    if min(args.rounds, args.single, args.seconds, args.wrk_timeout) < 1:
        p.error("--rounds, --single, --seconds and --wrk-timeout must be at least 1")
    if shutil.which("wrk") is None:
        print("wrk (the HTTP load generator) is not on PATH. Install it first, e.g. "
              "`apt-get install wrk` on Debian/Ubuntu (as root), `brew install wrk` on macOS.",
              file=sys.stderr)
        return 2
    args.scenarios = (args.only,) if args.only else ("templates", "offers")
    # SIGTERM and SIGHUP end the run like Ctrl-C does: through `finally`, servers stopped.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
