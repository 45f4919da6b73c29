"""Running the gpuyard command as a real process, for the CLI tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

GPUYARD = [sys.executable, "-m", "gpuyard.cli.main"]


def gpuyard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GPUYARD, *args], capture_output=True, text=True, timeout=60, env=env,
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(base: str, proc: subprocess.Popen | None = None, seconds: float = 60,
          probe: str = "/readyz") -> bool:
    """Whether the server at ``base`` answers 200 on ``probe`` within ``seconds`` (gives up at
    once if ``proc`` ends)."""
    deadline = time.time() + seconds
    while time.time() < deadline and (proc is None or proc.poll() is None):
        try:
            if httpx.get(f"{base}{probe}").status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False
