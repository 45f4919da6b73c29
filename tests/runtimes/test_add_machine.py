"""gpuyard admin add-machine / probe-machine against a real engine (the Podman service of
scripts/test, which has no GPUs: the host registers CPU-only)."""

from __future__ import annotations

import os
import sqlite3

import pytest

from gpuyard.cli.main import main


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'gpuyard.db'}"


def rows(db: str, sql: str) -> list[tuple]:
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        return conn.execute(sql).fetchall()


def test_add_machine_dry_run_then_register_a_cpu_only_host(docker_url, test_image, engine, db, capsys):
    cpus = engine.info()["NCPU"]
    assert main(["admin", "add-machine", docker_url, "--dry-run", "--image", test_image, "--db", db]) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith(" "))
    assert lines["engine"].strip().startswith(docker_url)
    assert lines["hostname"].strip() == engine.info()["Name"]
    assert lines["cpu"].strip().startswith(f"{cpus} cores")
    assert float(lines["ram"].split()[0]) == round(engine.info()["MemTotal"] / 2**30, 1)
    assert float(lines["disk"].split()[0]) > 0
    assert lines["os"].strip().startswith(engine.info()["OperatingSystem"])
    assert lines["gpus"].strip().startswith("none: CPU-only (the engine offers no NVIDIA GPUs")
    assert out.rstrip().endswith("dry run: nothing registered")
    assert not os.path.exists(db.removeprefix("sqlite:///"))  # the database was never opened

    assert main(["admin", "create-user", "ops", "--admin", "--db", db]) == 0
    assert main(["admin", "create-user", "hoster", "--db", db]) == 0
    capsys.readouterr()
    assert main(["admin", "add-machine", docker_url, "--name", "podman-box", "--owner", "hoster",
                 "--image", test_image, "--ports", "41000-41099", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "Machine 1 (podman-box) added, owner hoster: CPU-only: no GPUs found, so no GPU offers" in out
    ((name, gpus, cores, runtime, url, owner, first, count),) = rows(
        db, "SELECT hostname, num_gpus, cpu_cores, runtime, docker_url, owner_id, direct_port_start, "
            "direct_port_count FROM machines")
    assert (name, gpus, cores, runtime, url, first, count) == (
        "podman-box", 0, cpus, "docker", docker_url, 41000, 100)
    assert owner == rows(db, "SELECT id FROM users WHERE username = 'hoster'")[0][0]
    assert rows(db, "SELECT kind, active FROM asks") == [("volume", 1)]

    # Again under the same name: refused; probe-machine re-reads it instead.
    assert main(["admin", "add-machine", docker_url, "--name", "podman-box", "--image", test_image,
                 "--db", db]) == 1
    assert "exists already (id 1): re-read its hardware with gpuyard admin probe-machine 1" \
        in capsys.readouterr().err
    assert main(["admin", "probe-machine", "1", "--image", test_image, "--db", db]) == 0
    assert "Machine 1 (podman-box): hardware unchanged; specs re-read." in capsys.readouterr().out

    # Without --owner the first administrator owns it.
    assert main(["admin", "add-machine", docker_url, "--name", "second", "--image", test_image,
                 "--db", db]) == 0
    assert "added, owner ops: CPU-only" in capsys.readouterr().out


def test_add_machine_errors(docker_url, db, capsys):
    assert main(["admin", "add-machine", "http://example", "--dry-run", "--db", db]) == 1
    assert "is not an engine URL" in capsys.readouterr().err
    assert main(["admin", "add-machine", "unix:///nonexistent/docker.sock", "--dry-run", "--db", db]) == 1
    assert "unix:///nonexistent/docker.sock" in capsys.readouterr().err
    assert main(["admin", "add-machine", docker_url, "--image", "localhost/no/such:image", "--dry-run",
                 "--db", db]) == 1
    assert "the probe image localhost/no/such:image" in capsys.readouterr().err
    assert main(["admin", "add-machine", docker_url, "--ports", "9-3", "--db", db]) == 1
    assert "--ports '9-3'" in capsys.readouterr().err
    assert main(["admin", "add-machine", docker_url, "--owner", "nobody", "--db", db]) in (1,)
    assert "owner 'nobody' is not a user" in capsys.readouterr().err
