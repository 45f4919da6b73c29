"""``gpuyard serve`` exits on SIGTERM within its graceful timeout even while a request is stuck
(here: a write waiting for a SQLite lock another process holds for longer)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time

import httpx
from processes import GPUYARD, free_port, gpuyard, ready


def test_sigterm_exits_within_the_graceful_timeout_with_a_request_stuck(env, tmp_path):
    db_file = tmp_path / "stuck.db"
    db = f"sqlite:///{db_file}"
    key = gpuyard("admin", "create-user", "alice", "--db", db, env=env).stdout.strip()
    port = free_port()
    proc = subprocess.Popen([*GPUYARD, "serve", "--port", str(port), "--db", db, "--graceful-timeout", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    lock = sqlite3.connect(db_file, isolation_level=None)
    try:
        assert ready(base, proc, probe="/healthz")
        lock.execute("BEGIN IMMEDIATE")  # the server's writes now wait (up to 30 s)
        outcome: dict = {}

        def stuck_write() -> None:
            try:
                outcome["status"] = httpx.post(
                    f"{base}/api/v0/template/", json={"image": "busybox"}, timeout=60,
                    headers={"Authorization": f"Bearer {key}"}).status_code
            except httpx.TransportError as exc:
                outcome["error"] = type(exc).__name__

        writer = threading.Thread(target=stuck_write)
        writer.start()
        time.sleep(1.0)
        assert writer.is_alive(), "the write should be waiting for the lock"
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        took = time.monotonic() - start
        # uvicorn re-raises the signal once it has shut down: "ended by SIGTERM" is a clean exit
        assert code in (0, -signal.SIGTERM), proc.stderr.read() if proc.stderr else ""
        assert took < 8, f"the server took {took:.1f} s to exit (graceful timeout 2 s)"
        writer.join(timeout=30)
        assert "status" not in outcome or outcome["status"] != 200  # the stuck write did not land
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
