"""Running the gpuyard command as a real process, for the CLI tests."""

from __future__ import annotations

import socket
import subprocess
import sys

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
