"""Rentals per second through ``gpuyard serve``, against a bare server that answers the same
requests with the same stack and the same number of statements, and nothing else.

This is a benchmark script, not a test: it prints figures and checks nothing.

``rentals.py`` compares a rental with ``GET /healthz``, which touches no database. This script
measures the floor a rental could reach in one process on this machine with gpuyard's stack:

- **gpuyard**: one all-in-one ``gpuyard serve`` (simulated runtime, boot time 0, its SSH gateway
  on a port range every rental fits in), as ``rentals.py`` runs it;
- **bare**: a process of this script serving a FastAPI app of one route,
  ``PUT /api/v0/asks/{id}/``, with uvicorn and gpuyard's HTTP parser (``api/serving.config``),
  its access log on, the heap frozen as gpuyard's is. The route takes the same JSON body into a
  pydantic model and reads the API key from the ``Authorization`` header; its plain ``def``
  runs on FastAPI's worker threads gpuyard's write transaction (``store/db.transaction``: the
  writers' queue, BEGIN IMMEDIATE) on the same SQLite file: the key's row
  by its hash, then selects by id of offers and machines, one update of the offer and one
  insert, as many statements in all as a gpuyard rental sends (``--statements``, 17: see
  ``rental_path.py``), as SQLAlchemy Core statements on plain rows. No ORM, no rules, no
  runtime, no SSH port.

The two servers run one after the other on fresh copies of one database, each driven by the
same client threads for ``--seconds`` after a second of warm-up, three rounds alternated (the
machine's speed swings run to run). Printed per run: rentals/s, the server process's CPU per
rental (Linux), and its event loop's share. What gpuyard costs above the bare figure is its own
work (the ORM, the rules, the first reconcile, the gateway's listener); the bare figure is what
this machine gives with nothing of it.

    .venv/bin/python bench/rental_floor.py
"""


import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from rentals import (  # noqa: E402
    BODY,
    Servers,
    cpu_seconds,
    fill,
    free_port,
    fresh_database,
    one_gpu_offers,
    run,
    wait_until_up,
)

from gpuyard.store.db import make_engine  # noqa: E402


def serve_bare(url: str, port: int, statements: int) -> None:
    """The bare server (this script with ``--serve``): see the module's docstring."""
    import uvicorn
    from fastapi import Depends, FastAPI, Header, HTTPException
    from pydantic import BaseModel, ConfigDict
    from sqlalchemy import Column, Float, Integer, MetaData, Table, Text, bindparam, insert, select, update

    from gpuyard.api.serving import config, settle_heap
    from gpuyard.services.accounts.users import hash_key
    from gpuyard.settings import Settings
    from gpuyard.store.db import make_sessionmaker, transaction
    from gpuyard.store.models import ApiKey, Ask, Machine

    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    keys, asks, machines = ApiKey.__table__, Ask.__table__, Machine.__table__
    made_here = Table("bench_rentals", MetaData(), Column("id", Integer, primary_key=True),
                      Column("ask_id", Integer), Column("at", Float), Column("image", Text))
    made_here.create(engine, checkfirst=True)
    by_key = select(keys.c.id, keys.c.user_id).where(keys.c.key_hash == bindparam("h"))
    by_id = [select(asks).where(asks.c.id == bindparam("id")),
             select(machines).where(machines.c.id == bindparam("id"))]
    take = update(asks).where(asks.c.id == bindparam("ask")).values(active=False)
    note = insert(made_here)

    class Launch(BaseModel):  # the body's fields, as gpuyard's LaunchRequest reads them
        model_config = ConfigDict(extra="forbid")
        client_id: str | None = None
        image: str | None = None
        env: dict[str, str] | str | None = None
        price: float | None = None
        disk: float | None = None
        label: str | None = None
        extra: str | None = None
        onstart: str | None = None
        image_login: str | None = None
        python_utf8: bool = False
        lang_utf8: bool = False
        use_jupyter_lab: bool = False
        jupyter_dir: str | None = None
        force: bool = False
        cancel_unavail: bool = False
        template_hash_id: str | None = None
        runtype: str | None = None

    def api_key(authorization: str = Header()) -> str:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "no key")
        return token

    app = FastAPI()

    @app.put("/api/v0/asks/{ask_id}/")
    def rent(ask_id: int, body: Launch, key: str = Depends(api_key)) -> dict:
        with transaction(sessions) as session:  # gpuyard's write transaction: its writers' queue
            if session.execute(by_key, {"h": hash_key(key)}).first() is None:
                raise HTTPException(401, "unknown key")
            ask = session.execute(by_id[0], {"id": ask_id}).first()
            if ask is None:
                raise HTTPException(404, "no such offer")
            for k in range(statements - 4):  # (key, offer, update, insert: the other four)
                session.execute(by_id[k % 2], {"id": ask.machine_id if k % 2 else ask_id}).first()
            session.execute(take, {"ask": ask_id})
            made = session.execute(note, {"ask_id": ask_id, "at": time.time(),
                                       "image": body.image or ""})
        return {"success": True, "new_contract": made.inserted_primary_key[0]}

    settle_heap()
    uvicorn.Server(config(app, Settings.build(db_url=url, host="127.0.0.1", port=port),
                          log_level="info")).run()


def start_bare(url: str, statements: int) -> tuple[str, subprocess.Popen]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), url, str(statements)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/docs", proc, "the bare server")
    return base, proc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="client threads (2)")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--machines", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--statements", type=int, default=17,
                   help="statements in the bare rental's transaction (gpuyard's: rental_path.py)")
    p.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve_bare(args.serve[1], int(args.serve[0]), int(args.serve[2]))
        return 0

    tmp = tempfile.mkdtemp(prefix="gpuyard-rental-floor-")
    master = f"{tmp}/master.db"
    fresh_database(f"sqlite:///{master}")
    key = fill(f"sqlite:///{master}", args.machines)
    engine = make_engine(f"sqlite:///{master}")
    offers = one_gpu_offers(engine)  # both servers rent these, in this order
    engine.dispose()
    print(f"{os.cpu_count()} cores; SQLite; {args.threads} client threads, {args.seconds:g} s per "
          f"run; the bare route sends {args.statements} statements")
    for round_ in range(1, args.rounds + 1):
        for kind in ("gpuyard", "bare"):
            db = f"{tmp}/{kind}-{round_}.db"
            shutil.copy(master, db)
            url = f"sqlite:///{db}"
            if kind == "gpuyard":
                servers = Servers(url, 1, tmp)
                base, proc = servers.urls[0], servers.procs[0]
            else:
                base, proc = start_bare(url, args.statements)
            try:
                clients = [httpx.Client(base_url=base, timeout=60,
                                        headers={"Authorization": f"Bearer {key}"})
                           for _ in range(args.threads)]
                targets, lock = iter(offers), threading.Lock()

                def rent(c: httpx.Client, targets=targets, lock=lock) -> bool | None:
                    with lock:
                        ask = next(targets, None)
                    if ask is None:
                        return None
                    return c.put(f"/api/v0/asks/{ask}/", json=BODY).status_code == 200

                run(clients, 1.0, rent)  # warm-up, not counted
                cpu0, loop0 = cpu_seconds([proc.pid]), cpu_seconds([proc.pid], True)
                ok, refused, took = run(clients, args.seconds, rent)
                cpu1, loop1 = cpu_seconds([proc.pid]), cpu_seconds([proc.pid], True)
                for c in clients:
                    c.close()
            finally:
                if kind == "gpuyard":
                    servers.close()
                else:
                    proc.terminate()
                    proc.wait(timeout=30)
            cpu = (f"; CPU {1000 * (cpu1 - cpu0) / ok:.2f} ms per rental, of which the event loop "
                   f"{1000 * (loop1 - loop0) / ok:.2f} ms"
                   if None not in (cpu0, cpu1, loop0, loop1) and ok else "")
            print(f"round {round_}, {kind:7s}: rentals {ok / took:6.1f}/s ({ok} ok, {refused} "
                  f"refused){cpu}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
