"""The official vastai 1.9.1 CLI's and SDK's ``ssh-url``/``scp-url`` print URLs that work as is
through the gateway: the CLI adds 1 to the port for jupyter runtypes, the SDK does not, and
the gateway listens on both."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.conftest import SSH_OPTIONS, rent, running_with_port

VASTAI = Path(sys.executable).with_name("vastai")
if not VASTAI.exists():  # pragma: no cover - only outside the project venv
    VASTAI = Path(shutil.which("vastai") or VASTAI)
URL = re.compile(r"^(ssh|scp)://root@([^:]+):(\d+)$")


def _cli(live_server: str, key: str, home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAST", "XDG_"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / "cache"),
               XDG_CONFIG_HOME=str(home / "config"), VAST_URL=live_server,
               VASTAI_NO_UPDATE_CHECK="1", CI="1", NO_COLOR="1")
    r = subprocess.run([str(VASTAI), "--url", live_server, "--api-key", key, *args], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _works(url: str, key) -> None:
    scheme, host, port = URL.match(url).groups()
    r = subprocess.run(["ssh", "-i", str(key.path), *SSH_OPTIONS, "-p", port, f"root@{host}",
                        "echo through-$GPUYARD_INSTANCE_ID"], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"through-")


@pytest.mark.parametrize("runtype", ["ssh_proxy", "jupyter_proxy ssh_proxy"])
def test_official_cli_and_sdk_urls_work(api, alice, live_server, gateway, machines, alice_key,
                                        test_image, tmp_path, monkeypatch, runtype):
    iid = rent(api, "RTX 4090", image=test_image, runtype=runtype)
    row = running_with_port(api, gateway, iid)
    port = row["ssh_port"]
    home = tmp_path / "home"
    cli_url = _cli(live_server, alice.key, home, "ssh-url", str(iid))
    scp_url = _cli(live_server, alice.key, home, "scp-url", str(iid))
    bump = 1 if "jupyter" in runtype else 0
    assert cli_url == f"ssh://root@127.0.0.1:{port + bump}"
    assert scp_url == f"scp://root@127.0.0.1:{port + bump}"
    _works(cli_url, alice_key)

    from vastai import VastAI

    monkeypatch.setenv("HOME", str(home))
    sdk = VastAI(api_key=alice.key, server_url=live_server)
    sdk_url = sdk.ssh_url(iid)
    assert sdk_url == f"ssh://root@127.0.0.1:{port}"
    assert sdk.scp_url(iid) == f"scp://root@127.0.0.1:{port}"
    _works(sdk_url, alice_key)
