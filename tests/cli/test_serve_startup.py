"""Start-up is safe when processes start together: migrations and first-run initialization run
one process at a time (on a fresh PostgreSQL database two servers started at the same moment both
come up), and a second server on one SQLite file is refused with a clear message."""

from __future__ import annotations

import os
import subprocess
import uuid

import httpx
import pytest
from processes import GPUYARD, free_port, gpuyard, ready
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def start(db: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([*GPUYARD, "serve", "--port", str(port), "--db", db],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}"


def stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_second_server_on_one_sqlite_file_is_refused(env, tmp_path):
    db = f"sqlite:///{tmp_path / 'one.db'}"
    first, base = start(db, env)
    try:
        assert ready(base, first)
        second, _ = start(db, env)
        code = second.wait(timeout=60)
        err = second.stderr.read()
        assert code == 1 and "another gpuyard server is already running" in err and "PostgreSQL" in err
        assert httpx.get(f"{base}/healthz").status_code == 200  # the first one is unharmed
        # admin commands still work beside the running server
        assert gpuyard("admin", "create-user", "ops", "--db", db, env=env).returncode == 0
    finally:
        stop(first)


def test_admin_commands_started_together_on_a_fresh_sqlite_file_both_work(env, tmp_path):
    db = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [subprocess.Popen([*GPUYARD, "admin", "create-user", f"u{i}", "--db", db],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert len(out.strip()) == 64


@pytest.mark.skipif(not (os.environ.get("GPUYARD_TEST_DB") or "").startswith("postgresql"),
                    reason="needs the PostgreSQL test server (the PostgreSQL run of scripts/test)")
def test_two_servers_started_together_on_a_fresh_postgresql_database(env):
    base_url = make_url(os.environ["GPUYARD_TEST_DB"])
    name = f"gpuyard_startup_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    db = base_url.set(database=name).render_as_string(hide_password=False)
    procs: list[subprocess.Popen] = []
    try:
        procs = [start(db, env) for _ in range(2)]
        for proc, base in procs:
            assert ready(base, proc), proc.stderr.read() if proc.poll() is not None else "no answer"
        engine = create_engine(db)
        with engine.connect() as conn:
            ids = conn.execute(text("SELECT value FROM server_settings WHERE key = 'installation_id'")).all()
        engine.dispose()
        assert len(ids) == 1
    finally:
        stop(*(p for p, _ in procs))
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
