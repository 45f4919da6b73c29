"""/healthz is cheap and always answers; /readyz answers 503 while the database cannot take a
write (here: another connection holds the write lock) and 200 again once it can."""

from __future__ import annotations

import time
from contextlib import contextmanager

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def write_lock_held(db_url: str):
    """Another client holds the database's write lock (SQLite) or a lock on the table the probe
    writes (PostgreSQL)."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        import sqlite3

        conn = sqlite3.connect(url.database, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(db_url)
    with engine.connect() as conn, conn.begin():
        conn.execute(text("LOCK TABLE server_settings IN ACCESS EXCLUSIVE MODE"))
        yield
    engine.dispose()


def test_healthz_and_readyz(live_server):
    assert httpx.get(f"{live_server}/healthz").json()["status"] == "ok"
    r = httpx.get(f"{live_server}/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_readyz_fails_while_the_database_cannot_take_a_write(live_server, db_url):
    with write_lock_held(db_url):
        start = time.monotonic()
        r = httpx.get(f"{live_server}/readyz", timeout=30)
        took = time.monotonic() - start
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "not_ready" and "cannot take a write" in r.json()["msg"]
        assert took < 10, "the probe gives up after its own short timeout"
        assert httpx.get(f"{live_server}/healthz").status_code == 200  # liveness is unaffected
    assert httpx.get(f"{live_server}/readyz").status_code == 200
