"""The roles as commands: ``gpuyard worker`` and ``gpuyard serve --no-worker``. On SQLite one
process serves a database file, so a worker beside a server is refused, and so is an API-only
server (no worker could join it); the worker answers its probes and /metrics."""

from __future__ import annotations

import subprocess

import httpx
from processes import GPUYARD, free_port, ready


def start(env: dict[str, str], *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([*GPUYARD, *args, "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_on_sqlite_a_worker_beside_a_server_and_an_api_only_server_are_refused(env, tmp_path):
    db = f"sqlite:///{tmp_path / 'one.db'}"
    api_only, _ = start(env, "serve", "--no-worker", "--db", db)
    assert api_only.wait(timeout=60) == 1
    err = api_only.stderr.read()
    assert "'serve --no-worker' needs PostgreSQL" in err, err

    server, base = start(env, "serve", "--db", db)
    try:
        assert ready(base, server)
        worker, _ = start(env, "worker", "--db", db)
        assert worker.wait(timeout=60) == 1
        err = worker.stderr.read()
        assert "another gpuyard server is already running" in err and "PostgreSQL" in err, err
        assert httpx.get(f"{base}/healthz").status_code == 200
    finally:
        stop(server)


def test_a_worker_answers_its_probes_and_metrics_and_nothing_else(env, tmp_path):
    worker, base = start(env, "worker", "--db", f"sqlite:///{tmp_path / 'w.db'}")
    try:
        assert ready(base, worker), worker.stderr.read() if worker.poll() is not None else "no answer"
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        metrics = httpx.get(f"{base}/metrics").text
        assert "gpuyard_reconcile_backlog" in metrics and "gpuyard_machines" in metrics
        assert httpx.get(f"{base}/api/v0/instances/").status_code == 404  # no API here
    finally:
        stop(worker)
