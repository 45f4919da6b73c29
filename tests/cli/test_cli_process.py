"""The command-line contract, run as real processes: serve, admin create-user, --help."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time

import httpx
from processes import GPUYARD, free_port, gpuyard, ready


def test_help_does_not_load_the_http_stack_or_the_server(env):
    probe = (
        "import sys\n"
        "from gpuyard.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ['httpx', 'fastapi', 'sqlalchemy', 'uvicorn', 'rich', 'starlette', 'alembic']\n"
        "print('LOADED', [m for m in heavy if m in sys.modules])\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert "create" in r.stdout and "serve" in r.stdout  # the help itself
    assert "LOADED []" in r.stdout


def test_subcommand_help_lists_the_official_flags(env):
    r = gpuyard("create", "template", "--help", env=env)
    for flag in ("--image_tag", "--search_params", "--disk_space", "--onstart-cmd", "--jupyter-lab",
                 "--login", "--public", "--hide-readme", "--raw"):
        assert flag in r.stdout


def test_admin_create_user_prints_only_the_key_and_stores_its_hash(env, tmp_path):
    db = tmp_path / "users.db"
    r = gpuyard("admin", "create-user", "dana", "--db", f"sqlite:///{db}", env=env)
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", key) and r.stdout == key + "\n"
    raw = db.read_bytes() + (db.with_name("users.db-wal").read_bytes()
                             if db.with_name("users.db-wal").exists() else b"")
    assert key.encode() not in raw  # never stored in plain text
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT key_hash FROM api_keys").fetchone()
    assert stored != key and len(stored) == 64
    again = gpuyard("admin", "create-user", "dana", "--db", f"sqlite:///{db}", env=env)
    assert again.returncode == 1 and "already exists" in again.stderr and again.stdout == ""


def test_default_database_is_in_the_users_data_dir_and_gpuyard_db_overrides(env, tmp_path):
    r = gpuyard("admin", "create-user", "erin", env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "data" / "gpuyard" / "gpuyard.db").exists()
    env["GPUYARD_DB"] = f"sqlite:///{tmp_path / 'other.db'}"
    assert gpuyard("admin", "create-user", "erin", env=env).returncode == 0
    assert (tmp_path / "other.db").exists()


def test_serve_demo_seeds_data_prints_a_key_and_answers_healthz(env, tmp_path):
    port = free_port()
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    proc = subprocess.Popen(
        [*GPUYARD, "serve", "--demo", "--port", str(port), "--db", db],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        stdin=subprocess.DEVNULL,
    )
    try:
        key = None
        printed = []
        deadline = time.time() + 30
        while key is None and time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            printed.append(line)
            m = re.search(r"Demo API key: ([0-9a-f]{64})", line)
            key = m.group(1) if m else None
        assert key, "serve --demo printed no API key"
        base = f"http://127.0.0.1:{port}"
        assert ready(base, proc, seconds=max(1.0, deadline - time.time()), probe="/healthz")
        r = httpx.get(f"{base}/api/v0/template/", headers={"Authorization": f"Bearer {key}"},
                      params={"select_filters": json.dumps({"name": {"eq": "vLLM Inference Server"}})})
        assert r.status_code == 200
        [vllm] = r.json()["templates"]
        assert vllm["image"] == "vllm/vllm-openai" and vllm["private"] is False
        assert vllm["recommended"] is True  # the seed's "recommended == True" search finds it
        # the demo fleet: machines, GPU names, and offers that fit the demo template's filters
        assert any(re.match(r"Demo fleet: 8 machines with 37 GPUs", line) for line in printed)
        names = httpx.get(f"{base}/api/v0/gpu_names/unique/").json()["gpu_names"]
        assert {"RTX 3090", "RTX 4090", "H100 SXM"} <= set(names)
        tgi = {"gpu_ram": {"gte": 23000.0}, "num_gpus": {"eq": "1"}, "gpu_name": {"eq": "RTX 3090"},
               "inet_down": {"gt": "128"}, "direct_port_count": {"gt": "3"},
               "disk_space": {"gte": "192"}, "verified": {"eq": True}}
        r = httpx.post(f"{base}/api/v0/bundles/", json=tgi, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.json()["offers"]
        assert {o["gpu_name"] for o in r.json()["offers"]} == {"RTX 3090"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
