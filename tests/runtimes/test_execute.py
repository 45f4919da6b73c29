"""``execute`` (VAST-WIRE §16.1) in real containers: the official SDK's ``execute()`` gets the
output of ls, du and rm run in the instance; shell syntax and other commands are refused with a
msg that says what is allowed; another user's instance is not found; the output is cut at its
bound; and the result_url stops answering once its snapshot has aged out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
from test_docker_runtime import destroy_all, load_box, rent
from vastai import VastAI

from gpuyard.services.instance_access import execute
from gpuyard.services.rentals import instance_logs
from gpuyard.store.db import transaction
from gpuyard.store.models import LogRequest
from instance_reads import wait_status

VASTAI = Path(sys.executable).with_name("vastai")
if not VASTAI.exists():
    VASTAI = Path(shutil.which("vastai") or VASTAI)

# The busybox test image links a few applets only; the instance links the others it needs itself
# (before it writes the files the tests wait for).
APPLETS = "for a in du seq xargs; do [ -e /bin/$a ] || ln -s busybox /bin/$a; done"
FILES = (f"{APPLETS}; mkdir -p /workspace/sub && echo hello > /workspace/greeting.txt && "
         "echo x > /workspace/sub/x")


@pytest.fixture
def box(app, docker_url) -> Iterator[dict]:
    """One docker machine on the test engine (as in test_docker_runtime)."""
    yield load_box(app, docker_url)
    destroy_all(app)


@pytest.fixture
def official(alice, tmp_path, monkeypatch) -> VastAI:
    for var, sub in (("HOME", ""), ("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache")):
        monkeypatch.setenv(var, str(tmp_path / "home" / sub))
    return VastAI(api_key=alice.key, server_url=alice.url)


def running(api, test_image: str, onstart: str = FILES) -> int:
    iid = rent(api, image=test_image, runtype="ssh", onstart=onstart)
    wait_status(api, iid, "running")
    return iid


def wait_for(official: VastAI, iid: int, command: str, needle: str) -> str:
    """The output of ``command`` once it shows ``needle`` (the onstart script runs meanwhile)."""
    for _ in range(300):
        try:
            text = official.execute(iid, command)
        except requests.HTTPError as exc:  # say what became of the instance
            raise AssertionError(f"{exc.response.text}\n{official.logs(iid, daemon_logs=True)}\n"
                                 f"{official.logs(iid)}") from None
        if needle in text:
            return text
    raise AssertionError(f"{command!r} never showed {needle!r}: {text!r}")


def http_error(call) -> tuple[int, str]:
    with pytest.raises(requests.HTTPError) as info:
        call()
    return info.value.response.status_code, info.value.response.json()["msg"]


def test_the_official_sdk_runs_ls_du_and_rm_in_the_container(api, box, test_image, official):
    iid = running(api, test_image)
    listing = wait_for(official, iid, "ls -l /workspace", "greeting.txt")
    assert "sub" in listing and listing.startswith("total")
    usage = official.execute(iid, "du -s /workspace/sub")
    assert usage.split()[1] == "/workspace/sub"
    assert official.execute(iid, "ls '/workspace/greeting.txt'").strip() == "/workspace/greeting.txt"
    assert official.execute(iid, "rm /workspace/greeting.txt") == ""
    assert "greeting.txt" not in official.execute(iid, "ls /workspace")
    # a failing command's error output is the text, and the answer carries its exit status
    r = api.put(f"/api/v0/instances/command/{iid}/", json={"command": "ls /workspace/nothing"})
    assert r.status_code == 200 and r.json()["exit_code"] == 1, r.text
    assert "No such file" in httpx.get(r.json()["result_url"]).text


@pytest.mark.parametrize("command", [
    "ls /; rm -rf /workspace", "ls | head", "ls $(echo /)", "ls `pwd`", "ls > /tmp/out",
    "ls && rm -r /workspace", "du -s /workspace &",
])
def test_shell_syntax_is_refused_and_nothing_runs(api, box, test_image, official, command):
    iid = running(api, test_image)
    wait_for(official, iid, "ls /workspace", "greeting.txt")
    status, msg = http_error(lambda: official.execute(iid, command))
    assert status == 400
    assert "shell syntax" in msg and "ls, rm and du" in msg
    assert "greeting.txt" in official.execute(iid, "ls /workspace")


def test_other_commands_and_other_users_are_refused(api, bob, box, test_image, official):
    iid = running(api, test_image)
    status, msg = http_error(lambda: official.execute(iid, "cat /etc/passwd"))
    assert status == 400 and "'cat' is not allowed" in msg and "ls, rm and du" in msg
    status, msg = http_error(lambda: official.execute(iid, "/bin/rm /workspace/sub/x"))
    assert status == 400 and "not allowed" in msg
    with bob.http() as other:
        r = other.put(f"/api/v0/instances/command/{iid}/", json={"command": "ls /"})
    assert r.status_code == 404, r.text


def test_the_official_cli_shows_why_a_command_is_refused(alice, box, api, test_image, tmp_path):
    iid = running(api, test_image)
    home = tmp_path / "cli"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_CACHE_HOME": str(home / "cache"), "VAST_URL": alice.url,
           "VASTAI_NO_UPDATE_CHECK": "1", "VASTAI_MANIFEST_URL": f"{alice.url}/cli/manifest.json",
           "CI": "1", "NO_COLOR": "1"}
    r = subprocess.run([str(VASTAI), "--url", alice.url, "--api-key", alice.key, "execute", str(iid),
                        "ls / | head"], capture_output=True, text=True, env=env, timeout=120,
                       stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert "Failed with error 400" in out and "ls, rm and du" in out, out


def test_output_is_cut_at_its_bound(api, box, test_image, official):
    many = f"{APPLETS}; mkdir -p /many && cd /many && seq 1 40000 | xargs touch && echo done > /ready"
    iid = running(api, test_image, onstart=many)
    wait_for(official, iid, "ls /", "ready")
    text = official.execute(iid, "ls -l /many")
    assert text.endswith(f"[output cut at {execute.MAX_OUTPUT} bytes]\n")
    assert len(text.encode()) <= execute.MAX_OUTPUT + 100


def test_the_result_url_needs_no_key_and_expires(app, api, box, test_image):
    iid = running(api, test_image)
    r = api.put(f"/api/v0/instances/command/{iid}/", json={"command": "ls /"})
    assert r.status_code == 200, r.text
    url = r.json()["result_url"]
    first = httpx.get(url)  # no Authorization
    assert first.status_code == 200 and "bin" in first.text.split()
    with transaction(app.state.sessions) as session:
        for entry in session.query(LogRequest):
            entry.created_at -= instance_logs.LOG_TTL + 1
    gone = httpx.get(url)
    assert gone.status_code == 404 and "expired" in gone.json()["msg"]


def test_a_stopped_instance_says_to_start_it(api, box, test_image):
    iid = running(api, test_image)
    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"}).status_code == 200
    wait_status(api, iid, "stopped")
    r = api.put(f"/api/v0/instances/command/{iid}/", json={"command": "ls /"})
    assert r.status_code == 409 and "start it" in r.json()["msg"], r.text


def test_gpuyard_execute_prints_the_output_and_fails_with_the_command(
        alice, api, box, test_image, official, capsys, monkeypatch, tmp_path):
    from gpuyard.cli.main import main

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("GPUYARD_URL", alice.url)
    monkeypatch.setenv("GPUYARD_API_KEY", alice.key)
    iid = running(api, test_image)
    wait_for(official, iid, "ls /workspace", "greeting.txt")
    capsys.readouterr()
    assert main(["execute", str(iid), "ls /workspace"]) == 0
    out, _err = capsys.readouterr()
    assert out.split() == ["greeting.txt", "sub"]
    assert main(["execute", str(iid), "ls /workspace/nothing"]) == 1
    out, err = capsys.readouterr()
    assert "No such file" in out and "exited with status 1" in err
    assert main(["execute", str(iid), "ls /workspace | head"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "ls, rm and du" in err
