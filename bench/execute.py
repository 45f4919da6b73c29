"""``execute`` latency and output throughput on a real engine (a benchmark script, not a test: it
asserts nothing).

It starts a gpuyard server (SQLite in a temp dir, uvicorn in a thread of this process) with one
docker machine on ``--docker-url`` (default ``GPUYARD_TEST_DOCKER_URL``, which scripts/test sets
while it runs Podman; any Docker Engine API works), rents one instance of ``--image`` (default
``GPUYARD_TEST_IMAGE``, a busybox image) whose onstart makes ``--files`` empty files, and then
times, ``--reps`` times each:

1. the floor: the engine's own exec of the same commands through the ``docker`` package
   (``exec_run``), with nothing of gpuyard in between;
2. ``execute`` end to end as a client sees it: ``PUT /api/v0/instances/command/{id}/`` and the
   ``GET`` of its ``result_url`` (httpx, keep-alive), for ``ls /`` (a few hundred bytes) and for
   ``ls -l`` of the files (about 60 bytes a file, cut at 1 MiB).

It prints p50/p90 per case, the output size and throughput, and the overhead over the floor.

Run (from the project root, with an engine)::

    .venv/bin/python bench/execute.py --docker-url unix:///run/podman/podman.sock \\
        --image localhost/gpuyard-test/busybox:latest
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def show(name: str, seconds: list[float], size: int) -> None:
    p50 = statistics.median(seconds)
    print(f"  {name:<38} p50 {p50 * 1000:8.1f} ms  p90 {pct(seconds, 0.9) * 1000:8.1f} ms  "
          f"{size:>9} B  {size / p50 / 1e6:8.1f} MB/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docker-url", default=os.environ.get("GPUYARD_TEST_DOCKER_URL"))
    ap.add_argument("--image", default=os.environ.get("GPUYARD_TEST_IMAGE",
                                                      "localhost/gpuyard-test/busybox:latest"))
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--files", type=int, default=20000)
    args = ap.parse_args()
    if not args.docker_url:
        sys.exit("give --docker-url (or set GPUYARD_TEST_DOCKER_URL)")

    import dataclasses

    import docker
    import httpx
    import uvicorn

    from gpuyard.api import serving as api_serving
    from gpuyard.api.app import create_app
    from gpuyard.services.accounts.users import create_user
    from gpuyard.services.market.fleet import load_fleet, parse_yaml
    from gpuyard.settings import Settings
    from gpuyard.store.db import transaction

    tmp = Path(tempfile.mkdtemp(prefix="gpuyard-bench-exec-"))
    app = create_app(Settings.build(db_url=f"sqlite:///{tmp / 'db.sqlite'}", data_dir=tmp))
    settings = dataclasses.replace(app.state.settings, host="127.0.0.1", port=0)
    config = api_serving.config(app, settings, log_level="warning")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config.port = port
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    fleet = f"""
machines:
  - hostname: bench-box
    gpu_name: RTX 4090
    num_gpus: 1
    gpu_ram: 24
    cpu_cores: 8
    cpu_ram: 32
    disk_space: 200
    inet_down: 1000
    inet_up: 1000
    dph_per_gpu: 0.5
    min_bid_per_gpu: 0.1
    runtime: docker
    docker_url: {args.docker_url}
    gpu_runtime: none
    direct_port_start: 61000
    direct_port_count: 10
    public_ipaddr: 127.0.0.1
"""
    with transaction(app.state.sessions) as session:
        load_fleet(session, parse_yaml(fleet))
        _user, key = create_user(session, "bench")
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120)
    engine = docker.DockerClient(base_url=args.docker_url, timeout=120)
    iid = None
    try:
        offer = api.post("/api/v0/bundles/", json={}).json()["offers"][0]["id"]
        onstart = (f"mkdir -p /many && cd /many && seq 1 {args.files} | xargs touch && "
                   "echo done > /ready")
        onstart = "for a in seq xargs; do [ -e /bin/$a ] || ln -s busybox /bin/$a; done; " + onstart
        r = api.put(f"/api/v0/asks/{offer}/", json={"image": args.image, "runtype": "ssh",
                                                    "onstart": onstart, "disk": 1})
        iid = r.json()["new_contract"]
        def ready_container():
            """The instance's container once it runs and its files are made (gpuyard makes it
            again when something else removed it: other runs on a shared engine may)."""
            while True:
                row = api.get(f"/api/v0/instances/{iid}/").json()["instances"]
                found = engine.containers.list(filters={"label": f"gpuyard.instance={iid}"})
                if row["actual_status"] == "running" and found:
                    try:
                        if found[0].exec_run(["ls", "/ready"]).exit_code == 0:
                            return found[0]
                    except docker.errors.APIError:
                        pass
                time.sleep(0.2)

        container = ready_container()
        print(f"execute bench: {args.image} on {args.docker_url}, {args.reps} reps, "
              f"{args.files} files")
        lost = 0
        for command in (["ls", "/"], ["ls", "-l", "/many"]):
            floor, through, size = [], [], 0
            while len(through) < args.reps:
                try:
                    t = time.perf_counter()
                    out = container.exec_run(command).output
                    floor_s = time.perf_counter() - t
                    t = time.perf_counter()
                    answer = api.put(f"/api/v0/instances/command/{iid}/",
                                     json={"command": " ".join(command)}).json()
                    text = httpx.get(answer["result_url"]).content
                    through_s = time.perf_counter() - t
                except (docker.errors.APIError, KeyError):  # the container went: not counted
                    lost += 1
                    container = ready_container()
                    continue
                floor.append(floor_s)
                through.append(through_s)
                size = len(text)
            print(f" {' '.join(command)}")
            show("engine exec_run (floor)", floor, len(out))
            show("gpuyard execute (PUT + GET result_url)", through, size)
            extra = statistics.median(through) - statistics.median(floor)
            print(f"  overhead over the floor: {extra * 1000:.1f} ms")
        if lost:
            print(f" ({lost} reps lost to a container removed meanwhile, and not counted)")
    finally:
        if iid is not None:
            api.request("DELETE", f"/api/v0/instances/{iid}/", json={})
        server.should_exit = True


if __name__ == "__main__":
    main()
