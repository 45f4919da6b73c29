"""``gpuyard ssh`` and ``gpuyard copy``: the system's ssh and scp pointed at an instance's
gateway address, run as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gateway.conftest import rent, running_with_port

GPUYARD = Path(sys.executable).with_name("gpuyard")


def _run(alice, key, tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    options = ["-i", str(key.path), "-o", "StrictHostKeyChecking=no", "-o",
               f"UserKnownHostsFile={tmp_path / 'known_hosts'}", "-o", "BatchMode=yes"]
    verb, *rest = args
    return subprocess.run([str(GPUYARD), verb, "--url", alice.url, "--api-key", alice.key,
                           *options, *rest], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)


def test_ssh_runs_a_command_and_copy_moves_files_both_ways(api, alice, gateway, machines,
                                                           alice_key, test_image, tmp_path):
    iid = rent(api, "RTX 4090", image=test_image, runtype="ssh", env={"WHO": "the instance"})
    running_with_port(api, gateway, iid)
    r = _run(alice, alice_key, tmp_path, "ssh", str(iid), "--", 'echo "in $WHO"; exit 2')
    assert r.returncode == 2 and r.stdout == "in the instance\n", r.stderr

    local = tmp_path / "data"
    local.mkdir()
    (local / "a.txt").write_text("alpha")
    r = _run(alice, alice_key, tmp_path, "copy", str(local), f"{iid}:/tmp/")
    assert r.returncode == 0, r.stderr
    r = _run(alice, alice_key, tmp_path, "ssh", str(iid), "--", "cat /tmp/data/a.txt")
    assert r.stdout == "alpha", r.stderr
    back = tmp_path / "back.txt"
    r = _run(alice, alice_key, tmp_path, "copy", f"{iid}:/tmp/data/a.txt", str(back))
    assert r.returncode == 0 and back.read_text() == "alpha", r.stderr


def test_ssh_into_a_simulated_instance_says_why_not(api, alice, gateway, machines, alice_key,
                                                    tmp_path):
    iid = rent(api, "RTX 3090", image="pytorch/pytorch", runtype="ssh")
    running_with_port(api, gateway, iid)
    r = _run(alice, alice_key, tmp_path, "ssh", str(iid))
    assert r.returncode == 1 and "simulated instance: no shell" in r.stderr
    r = _run(alice, alice_key, tmp_path, "copy", "x", "y")
    assert r.returncode == 1 and "ID:/path" in r.stderr
