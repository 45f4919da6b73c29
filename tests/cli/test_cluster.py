"""Two API replicas (``serve --no-worker``) and two workers on one PostgreSQL database, driving
containers on the test engine: launches spread over both APIs all run, no instance ever has two
containers, destroyed ones have none; after kill -9 of one API and one worker the survivors
destroy and launch, and every acknowledged write is there.

Real processes, a real engine (Podman from scripts/test), a database of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from processes import GPUYARD, free_port, gpuyard, ready
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG = (os.environ.get("GPUYARD_TEST_DB") or "").startswith("postgresql")
ENGINE = os.environ.get("GPUYARD_TEST_DOCKER_URL")
IMAGE = os.environ.get("GPUYARD_TEST_IMAGE")
pytestmark = pytest.mark.skipif(not (PG and ENGINE and IMAGE),
                                reason="needs the PostgreSQL run of scripts/test with Podman")
PATIENCE = 90.0
LEASE_SECONDS = 3
BODY = {"client_id": "me", "env": {}, "price": None, "disk": 1, "label": None, "onstart": None,
        "force": False, "template_hash_id": None, "runtype": "ssh"}


def fleet_yaml() -> str:
    return "machines:" + "".join(f"""
  - hostname: cluster-{n}
    gpu_name: RTX 4090
    num_gpus: 8
    gpu_ram: 24
    cpu_cores: 32
    cpu_ram: 256
    disk_space: 1000
    inet_down: 1000
    inet_up: 1000
    dph_per_gpu: 0.5
    min_bid_per_gpu: 0.1
    runtime: docker
    docker_url: {ENGINE}
    gpu_runtime: none""" for n in range(2))


@pytest.fixture
def database() -> Iterator[str]:
    base = make_url(os.environ["GPUYARD_TEST_DB"])
    name = f"gpuyard_cluster_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


class Cluster:
    def __init__(self, db: str, env: dict[str, str]):
        self.db, self.env = db, env
        self.procs: dict[str, subprocess.Popen] = {}
        self.urls: dict[str, str] = {}

    def start(self, name: str, *args: str) -> None:
        port = free_port()
        self.procs[name] = subprocess.Popen(
            [*GPUYARD, *args, "--port", str(port), "--db", self.db, "--runtime", "docker"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=self.env,
            stdin=subprocess.DEVNULL)
        self.urls[name] = f"http://127.0.0.1:{port}"

    def ready(self) -> None:
        for name, proc in self.procs.items():
            assert ready(self.urls[name], proc, 120), proc.stderr.read() if proc.poll() is not None else name

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(timeout=30)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


class Sampler:
    """Counts this installation's containers per instance (``gpuyard.instance`` label) on the
    engine, again and again, and keeps the worst count seen for each instance."""

    def __init__(self, installation: str):
        import docker

        self.client = docker.DockerClient(base_url=ENGINE, timeout=30)
        self.labels = ["gpuyard.managed=true", f"gpuyard.installation={installation}"]
        self.worst: Counter[int] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def count(self) -> Counter[int]:
        found = self.client.containers.list(all=True, filters={"label": self.labels}, sparse=True)
        return Counter(int((c.attrs.get("Labels") or {})["gpuyard.instance"]) for c in found)

    def _run(self) -> None:
        while not self._stop.is_set():
            for instance_id, n in self.count().items():
                self.worst[instance_id] = max(self.worst[instance_id], n)
            self.samples += 1
            time.sleep(0.1)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for c in self.client.containers.list(all=True, filters={"label": self.labels}):
            c.remove(force=True)
        self.client.close()


def launch(base: str, key: str) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    offers = httpx.post(f"{base}/api/v0/bundles/", headers=headers, timeout=30,
                        json={"num_gpus": {"eq": 1}, "order": [["id", "asc"]]}).json()["offers"]
    for offer in offers:  # another launch may win an offer first: take the next one
        r = httpx.put(f"{base}/api/v0/asks/{offer['id']}/", headers=headers, timeout=60,
                      json={**BODY, "image": IMAGE})
        if r.status_code == 200:
            return r.json()["new_contract"]
        assert r.status_code == 409, r.text
    raise AssertionError("no offer left")


def destroy(base: str, key: str, instance_id: int) -> None:
    r = httpx.delete(f"{base}/api/v0/instances/{instance_id}/",
                     headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert r.status_code == 200 and r.json()["success"], r.text


def statuses(base: str, key: str) -> dict[int, str]:
    r = httpx.get(f"{base}/api/v0/instances/", headers={"Authorization": f"Bearer {key}"},
                  params={"owner": "me"}, timeout=30)
    assert r.status_code == 200, r.text
    return {i["id"]: i["actual_status"] for i in r.json()["instances"]}


def until(what, timeout: float = PATIENCE):
    deadline = time.time() + timeout
    while True:
        found = what()
        if found:
            return found
        assert time.time() < deadline, f"gave up waiting for {what.__doc__}"
        time.sleep(0.2)


def test_two_apis_and_two_workers_survive_kill_9_of_one_of_each(database, env, tmp_path):
    env = {**env, "GPUYARD_LEASE_SECONDS": str(LEASE_SECONDS), "GPUYARD_HEARTBEAT_SECONDS": "1"}
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(fleet_yaml())
    assert gpuyard("admin", "load-fleet", str(fleet), "--db", database, env=env).returncode == 0
    made = gpuyard("admin", "create-user", "alice", "--db", database, env=env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    cluster = Cluster(database, env)
    for name, args in (("api1", ("serve", "--no-worker")), ("api2", ("serve", "--no-worker")),
                       ("worker1", ("worker",)), ("worker2", ("worker",))):
        cluster.start(name, *args)
    try:
        cluster.ready()
        engine = create_engine(database)
        with engine.connect() as conn:
            installation = conn.execute(text(
                "SELECT value FROM server_settings WHERE key = 'installation_id'")).scalar_one()
        api1, api2 = cluster.urls["api1"], cluster.urls["api2"]
        with Sampler(installation) as sampler:
            # launches spread over both APIs all reach running
            first = [launch((api1, api2)[n % 2], key) for n in range(6)]

            def all_running(ids=first):
                """every launch running"""
                seen = statuses(api2, key)
                return all(seen.get(i) == "running" for i in ids)

            until(all_running)
            destroy(api1, key, first[0])
            destroy(api2, key, first[1])

            # kill -9 one API and one worker with launches in flight on that API
            acknowledged: list[int] = []
            stop = threading.Event()

            def keep_launching() -> None:
                while not stop.is_set():
                    try:
                        acknowledged.append(launch(api1, key))
                    except (httpx.HTTPError, AssertionError):
                        return  # killed

            threads = [threading.Thread(target=keep_launching) for _ in range(2)]
            for t in threads:
                t.start()
            until(lambda: len(acknowledged) >= 2)
            cluster.kill("api1")
            cluster.kill("worker1")
            stop.set()
            for t in threads:
                t.join(timeout=60)

            # the survivors destroy and launch; every instance the database holds (the
            # acknowledged ones, and any whose answer the kill cut off) runs
            later = [launch(api2, key) for _ in range(2)]
            destroy(api2, key, first[2])
            destroy(api2, key, acknowledged[0])
            gone = [first[0], first[1], first[2], acknowledged[0]]
            with engine.connect() as conn:
                live = list(conn.scalars(text("SELECT id FROM instances WHERE destroyed_at IS NULL")))
            assert set(first[3:] + acknowledged[1:] + later) <= set(live)
            until(lambda: all_running(live))

            def containers_settled():
                """one container for each live instance, none for the destroyed ones"""
                counts = sampler.count()
                return all(counts[i] == 1 for i in live) and not any(counts[i] for i in gone)

            until(containers_settled)
            time.sleep(LEASE_SECONDS)  # a few more samples after the takeovers settled
        assert sampler.samples > 10
        twice = {i: n for i, n in sampler.worst.items() if n > 1}
        assert twice == {}, f"instances seen with more than one container: {twice}"
        # every acknowledged write is there
        seen = statuses(api2, key)
        assert set(seen) == set(live)  # destroyed ones are not listed, live ones all are
        with engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT id, destroyed_at IS NOT NULL FROM instances")).all())
        engine.dispose()
        assert {i for i, destroyed in rows.items() if destroyed} == set(gone)
        metrics = httpx.get(f"{cluster.urls['worker2']}/metrics").text
        assert "gpuyard_lease_takeovers_total" in metrics and "gpuyard_reconcile_lag_seconds" in metrics
    finally:
        cluster.stop()
