"""SSH gateway file copies: scp up and down through the gateway against the engine's own floor.

A benchmark, not a test: it prints figures and checks nothing about speed. It starts a busybox
container on an engine, serves it through a gateway in this process (login checked against a
key made here, no database), and times:

* ``scp`` up and down (SFTP mode) of a file of ``--mb`` MB through the gateway;
* the floor, in the same run: the same bytes into an exec of ``cat`` and out of the archive
  stream, straight through the engine API with no SSH;
* the peak resident memory of this process (gateway included) before and after the copies.

    python bench/gateway_copy.py --docker-url unix:///run/podman/podman.sock \
        --image localhost/gpuyard-test/busybox:latest --mb 100
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import docker

from gpuyard.gateway.access import Entry
from gpuyard.gateway.container_files import ContainerFiles
from gpuyard.gateway.engine_http import EngineHTTP
from gpuyard.gateway.exec_bridge import Exec
from gpuyard.gateway.server import Gateway


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docker-url", default=os.environ.get("GPUYARD_TEST_DOCKER_URL"))
    parser.add_argument("--image", default=os.environ.get("GPUYARD_TEST_IMAGE",
                                                          "localhost/gpuyard-test/busybox:latest"))
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()
    client = docker.DockerClient(base_url=args.docker_url)
    container = client.containers.run(args.image, ["sh", "-c", "while :; do sleep 3600; done"],
                                      detach=True, labels={"gpuyard.bench": "true"})
    work = Path(tempfile.mkdtemp())
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "key")],
                       check=True)
        gw = Gateway(None, work / "data", public_host="127.0.0.1")
        gw.entry = lambda iid: Entry(iid, None, container.name, args.docker_url,
                                     [(work / "key.pub").read_text()])
        port = free_port()
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(gw._listen(port, 1), loop).result(10)

        src = work / "src.bin"
        with src.open("wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(1 << 20))
        digest = sha256(src)
        before = peak_rss_mb()
        opts = ["-i", str(work / "key"), "-o", "StrictHostKeyChecking=no", "-o",
                "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-P", str(port)]
        t = time.perf_counter()
        subprocess.run(["scp", *opts, str(src), "root@127.0.0.1:/tmp/up.bin"], check=True)
        up = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run(["scp", *opts, "root@127.0.0.1:/tmp/up.bin", str(work / "down.bin")],
                       check=True)
        down = time.perf_counter() - t
        after = peak_rss_mb()
        same = sha256(work / "down.bin") == digest

        async def floor() -> tuple[float, float]:
            http = EngineHTTP(args.docker_url)
            t0 = time.perf_counter()
            ex = await Exec.start(http, container.name, ["sh", "-c", "cat > /tmp/floor.bin"])
            with src.open("rb") as f:
                while chunk := f.read(256 * 1024):
                    await ex.write(chunk)
            ex.end_input()
            async for _ in ex.output():
                pass
            await ex.exit_status()
            ex.close()
            t1 = time.perf_counter()
            reader = await ContainerFiles(http, container.name).reader("/tmp/floor.bin")
            while await reader.read(reader.pos, 1 << 20):
                pass
            reader.close()
            return t1 - t0, time.perf_counter() - t1

        floor_up, floor_down = asyncio.run(floor())
        mb = args.mb
        print(f"{mb} MB through the gateway: scp up {up:.2f} s ({mb / up:.0f} MB/s), "
              f"down {down:.2f} s ({mb / down:.0f} MB/s), checksums equal: {same}")
        print(f"floor (engine API, no SSH): in {floor_up:.2f} s ({mb / floor_up:.0f} MB/s), "
              f"out {floor_down:.2f} s ({mb / floor_down:.0f} MB/s)")
        print(f"peak RSS of this process: {before:.0f} MB before the copies, {after:.0f} MB after "
              f"(the file is {mb} MB)")
    finally:
        container.remove(force=True)


if __name__ == "__main__":
    main()
