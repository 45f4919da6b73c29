"""gpuyard admin load-fleet: in process, and once as a real process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from gpuyard.cli.main import main

FLEET = textwrap.dedent("""\
    machines:
      - hostname: box-a
        gpu_name: RTX 4090
        num_gpus: 4
        gpu_ram: 24            # GB per GPU
        cpu_cores: 32
        cpu_ram: 128           # GB
        disk_space: 2000       # GB
        inet_down: 1000        # Mbps
        inet_up: 800
        dph_per_gpu: 0.40      # on-demand $/hour per GPU
        min_bid_per_gpu: 0.10  # lowest interruptible bid per GPU
        storage_cost: 0.10     # $/GB/month, optional
        reliability: 0.995
        geolocation: US
        verified: true
        direct_port_count: 200
        runtime: simulated
      - hostname: box-b
        gpu_name: RTX 3090
        num_gpus: 6
        gpu_ram: 24
        cpu_cores: 16
        cpu_ram: 64
        disk_space: 1000
        inet_down: 500
        inet_up: 500
        dph_per_gpu: 0.20
        min_bid_per_gpu: 0.05
    """)


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'fleet.db'}"


def rows(db: str, sql: str) -> list[tuple]:
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        return conn.execute(sql).fetchall()


def test_load_then_reload_updates_in_place(tmp_path, db, capsys):
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    assert main(["admin", "load-fleet", str(path), "--db", db]) == 0
    assert capsys.readouterr().out == "2 machines added, 0 updated; 10 GPUs offered\n"
    before = rows(db, "SELECT id, hostname FROM machines ORDER BY id")
    path.write_text(FLEET.replace("dph_per_gpu: 0.40", "dph_per_gpu: 0.45"))
    assert main(["admin", "load-fleet", str(path), "--db", db]) == 0
    assert capsys.readouterr().out == "0 machines added, 2 updated; 10 GPUs offered\n"
    assert rows(db, "SELECT id, hostname FROM machines ORDER BY id") == before
    assert rows(db, "SELECT dph_per_gpu FROM machines WHERE hostname = 'box-a'") == [(0.45,)]


def test_an_invalid_file_stores_nothing_and_exits_1(tmp_path, db, capsys):
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET.replace("reliability: 0.995", "reliability: 99.5"))
    assert main(["admin", "load-fleet", str(path), "--db", db]) == 1
    err = capsys.readouterr().err
    assert "machine 'box-a' (machines[0]), key 'reliability'" in err and "between 0 and 1" in err
    assert not (tmp_path / "fleet.db").exists()  # checked before the database is opened
    path.write_text(FLEET.replace("    inet_up: 500\n", "    inet_upp: 500\n"))
    assert main(["admin", "load-fleet", str(path), "--db", db]) == 1
    err = capsys.readouterr().err
    assert "machine 'box-b' (machines[1]), key 'inet_upp'" in err and "did you mean 'inet_up'" in err


def test_missing_file_and_bad_yaml(tmp_path, db, capsys):
    assert main(["admin", "load-fleet", str(tmp_path / "nope.yaml"), "--db", db]) == 1
    assert "cannot read fleet file" in capsys.readouterr().err
    path = tmp_path / "fleet.yaml"
    path.write_text("machines:\n  - hostname: [box\n")
    assert main(["admin", "load-fleet", str(path), "--db", db]) == 1
    assert "is not valid YAML" in capsys.readouterr().err


def test_machine_lost_with_nothing_to_forget_and_an_unknown_machine(tmp_path, db, capsys):
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    assert main(["admin", "load-fleet", str(path), "--db", db]) == 0
    capsys.readouterr()
    assert main(["admin", "machine-lost", "1", "--db", db]) == 0
    assert capsys.readouterr().out == (
        "Machine 1 (box-a) has no destroyed instance waiting for its container to be removed; "
        "nothing to do.\n")
    assert main(["admin", "machine-lost", "99", "--db", db]) == 1
    assert "machine 99 not found" in capsys.readouterr().err
    assert main(["admin", "machine-lost", "box-a", "--db", db]) == 1
    assert "machine id" in capsys.readouterr().err


def test_load_fleet_as_a_real_process(tmp_path, db):
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    cmd = [sys.executable, "-m", "gpuyard.cli.main", "admin", "load-fleet", str(path), "--db", db]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "2 machines added, 0 updated; 10 GPUs offered\n"
    assert rows(db, "SELECT count(*) FROM asks WHERE kind = 'gpu' AND active") == [(7,)]
    path.write_text(FLEET.replace("num_gpus: 6", "num_gpus: -6"))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "key 'num_gpus': must not be negative" in r.stderr
