"""Launch to running on a real engine: gpuyard's API against the engine alone, in one run.

This is a benchmark script, not a test: it prints figures and checks nothing.

Each round, in alternation (so both see the same load on a shared machine):

* **engine alone** (the floor): the Docker Engine API creates and starts a container of the same
  image with the same main process, init and labels (``create_container`` + ``start``, the two
  calls any client needs), then it is removed (not timed);
* **through gpuyard**: ``PUT /api/v0/asks/{id}/`` on a docker machine of that engine, timed until
  the answer, and until a ``GET /api/v0/instances/{id}/`` first reads ``actual_status`` running;
  then the instance is destroyed (not timed).

The server is ``create_app`` under uvicorn in a thread of this process, with its background sweep
on, as ``gpuyard serve`` runs it. Needs an engine with the image present (nothing is pulled):

    .venv/bin/python bench/launch_podman.py --docker-url unix:///path/podman.sock \
        [--image localhost/gpuyard-test/busybox:latest] [--rounds 30] [--db URL]

``scripts/test`` prints the socket of the Podman it starts; or start one yourself with
``podman system service --time=0 unix:///tmp/podman.sock``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from gpuyard.runtimes.docker import KEEP_ALIVE
from gpuyard.services.accounts.users import create_user
from gpuyard.services.market.fleet import load_fleet, parse_yaml
from gpuyard.settings import Settings
from gpuyard.store.db import transaction

FLEET = """
machines:
  - hostname: bench-box
    gpu_name: RTX 4090
    num_gpus: 8
    gpu_ram: 24
    cpu_cores: 32
    cpu_ram: 128
    disk_space: 2000
    inet_down: 1000
    inet_up: 1000
    dph_per_gpu: 0.5
    min_bid_per_gpu: 0.1
    runtime: docker
    docker_url: {url}
    gpu_runtime: none
    public_ipaddr: 127.0.0.1
"""


@contextmanager
def server(settings: Settings):
    import uvicorn

    from gpuyard.api.app import create_app

    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    finally:
        srv.should_exit = True
        thread.join(timeout=15)
        app.state.engine.dispose()


def engine_alone(client, image: str, n: int) -> float:
    """Seconds to create and start one container like gpuyard's (then removed, untimed)."""
    api = client.api
    t0 = time.perf_counter()
    made = api.create_container(
        image, entrypoint=["sh", "-c", KEEP_ALIVE], command=[], name=f"gpuyard-bench-floor-{n}",
        labels={"gpuyard.bench": "floor"}, environment={"GPUYARD_INSTANCE_ID": str(n)},
        host_config=api.create_host_config(init=True), detach=True)
    api.start(made["Id"])
    took = time.perf_counter() - t0
    api.remove_container(made["Id"], force=True)
    return took


def through_api(c: httpx.Client, image: str) -> tuple[float, float, int]:
    """(seconds to the answer, seconds to the first GET that reads running, instance id)."""
    offers = c.post("/api/v0/bundles/", json={"num_gpus": {"eq": 1}, "order": [["id", "asc"]]})
    ask = offers.json()["offers"][0]["id"]
    t0 = time.perf_counter()
    r = c.put(f"/api/v0/asks/{ask}/", json={"client_id": "me", "image": image, "disk": 1,
                                            "runtype": "ssh"})
    answered = time.perf_counter() - t0
    r.raise_for_status()
    iid = r.json()["new_contract"]
    while True:
        row = c.get(f"/api/v0/instances/{iid}/", params={"owner": "me"}).json()["instances"]
        if row["actual_status"] == "running":
            return answered, time.perf_counter() - t0, iid
        if row["actual_status"] == "exited" or time.perf_counter() - t0 > 60:
            raise RuntimeError(f"instance {iid}: {row['actual_status']} {row['status_msg']}")
        time.sleep(0.005)


def ms(values: list[float]) -> str:
    qs = statistics.quantiles(values, n=10) if len(values) >= 2 else values * 9
    return (f"p50 {1000 * statistics.median(values):6.1f} ms  p10 {1000 * qs[0]:6.1f}  "
            f"p90 {1000 * qs[-1]:6.1f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--docker-url", default=os.environ.get("GPUYARD_TEST_DOCKER_URL")
                   or os.environ.get("DOCKER_HOST"))
    p.add_argument("--image", default=os.environ.get("GPUYARD_TEST_IMAGE",
                                                     "localhost/gpuyard-test/busybox:latest"))
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--db", help="database URL (default: a SQLite file in a temp dir)")
    args = p.parse_args(argv)
    if not args.docker_url:
        p.error("give --docker-url (or set GPUYARD_TEST_DOCKER_URL / DOCKER_HOST)")

    import docker

    engine = docker.DockerClient(base_url=args.docker_url, timeout=60)
    engine.images.get(args.image)  # present, or this raises: nothing is pulled
    tmp = tempfile.mkdtemp(prefix="gpuyard-launch-bench-")
    settings = Settings.build(db_url=args.db or f"sqlite:///{Path(tmp) / 'bench.db'}", runtime="docker",
                              docker_url=args.docker_url, data_dir=tmp)
    floor: list[float] = []
    answer: list[float] = []
    running: list[float] = []
    with server(settings) as (base, app):
        with transaction(app.state.sessions) as session:
            _user, key = create_user(session, "bench")
            load_fleet(session, parse_yaml(FLEET.format(url=args.docker_url)))
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
            for n in range(args.warmup + args.rounds):
                f = engine_alone(engine, args.image, n)
                a, r, iid = through_api(c, args.image)
                c.request("DELETE", f"/api/v0/instances/{iid}/", json={}).raise_for_status()
                if n >= args.warmup:
                    floor.append(f)
                    answer.append(a)
                    running.append(r)
    print(f"engine {args.docker_url} ({engine.version().get('Version')}), image {args.image}, "
          f"{args.rounds} rounds after {args.warmup} warm-up, {os.cpu_count()} cores")
    print(f"engine alone, create + start:        {ms(floor)}")
    print(f"gpuyard, PUT /asks answered:         {ms(answer)}")
    print(f"gpuyard, first GET reading running:  {ms(running)}")
    base_ms = statistics.median(floor)
    print(f"ratio to the floor (p50): answer {statistics.median(answer) / base_ms:.2f}x, "
          f"running {statistics.median(running) / base_ms:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
