"""How fast does ``gpuyard --help`` answer? (The official ``vastai --help`` is printed beside it.)

Run: .venv/bin/python bench/cli_startup.py [--runs 20]

Prints the median and p95 wall time of each command over N runs. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                       stdin=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    home = tempfile.mkdtemp()
    env = {**os.environ, "HOME": home, "XDG_CONFIG_HOME": home, "XDG_CACHE_HOME": home,
           "VAST_URL": "http://127.0.0.1:9", "VASTAI_NO_UPDATE_CHECK": "1", "CI": "1"}
    commands = {
        "gpuyard --help": [str(bindir / "gpuyard"), "--help"],
        "gpuyard create template --help": [str(bindir / "gpuyard"), "create", "template", "--help"],
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
    }
    if (bindir / "vastai").exists():
        commands["vastai --help (official)"] = [str(bindir / "vastai"), "--help"]
    print(f"{'command':38} {'median':>9} {'p95':>9}  ({args.runs} runs)")
    for name, cmd in commands.items():
        t = sorted(measure(cmd, args.runs, env))
        p95 = t[min(len(t) - 1, int(len(t) * 0.95))]
        print(f"{name:38} {statistics.median(t) * 1000:8.1f}ms {p95 * 1000:8.1f}ms")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
