"""Engine heartbeats: a machine whose engine stops answering goes offline after the threshold
(its offers hidden, its instances "unknown"), the other machines are unaffected, and it comes
back online by itself, its instances running again, when the engine answers."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from gpuyard.control.heartbeats import check_engines
from gpuyard.services.fleet import load_fleet, parse_yaml
from gpuyard.store.db import transaction
from gpuyard.store.models import Instance, Machine
from instance_reads import wait_status

BODY = {"client_id": "me", "image": None, "env": {}, "price": None, "disk": 1, "label": None,
        "onstart": None, "force": False, "template_hash_id": None}
FAILURES = 3


def machine(name: str, url: str, gpus: int) -> str:
    return f"""
  - hostname: {name}
    gpu_name: RTX 4090
    num_gpus: {gpus}
    gpu_ram: 24
    cpu_cores: 8
    cpu_ram: 32
    disk_space: 200
    inet_down: 1000
    inet_up: 1000
    dph_per_gpu: 0.5
    min_bid_per_gpu: 0.1
    runtime: docker
    docker_url: {url}
    gpu_runtime: none
    direct_port_start: {random.randrange(50000, 60000)}
    direct_port_count: 5
    public_ipaddr: 127.0.0.1"""


@pytest.fixture
def two_boxes(app, docker_url, engine_proxy) -> Iterator[dict[str, int]]:
    """``far`` reaches the engine through the proxy (which the test stops), ``near`` directly.
    The server's background worker is paused: the test beats by hand."""
    background = app.state.reconciler
    jobs = app.state.worker_jobs
    for job in jobs:
        job.stop()
    background.stop()
    with transaction(app.state.sessions) as session:
        loaded = load_fleet(session, parse_yaml(
            "machines:" + machine("far", engine_proxy.url, 2) + machine("near", docker_url, 1)))
    yield loaded.machine_ids
    engine_proxy.up()
    with transaction(app.state.sessions) as session:
        for inst in session.query(Instance).filter(Instance.destroyed_at.is_(None)):
            inst.destroyed_at, inst.intended_status = 1.0, "stopped"
    background.sweep()
    background.start()
    for job in jobs:
        job.start()


def beat(app):
    return check_engines(app.state.sessions, app.state.reconciler, default_runtime="simulated",
                         failures=FAILURES, timeout=2.0)


def offers_on(api, machine_id: int) -> list[int]:
    found = api.post("/api/v0/bundles/", json={"num_gpus": {"eq": 1},
                                               "order": [["id", "asc"]]}).json()["offers"]
    return [o["id"] for o in found if o["machine_id"] == machine_id]


def rent_on(api, machine_id: int, image: str) -> int:
    offer = offers_on(api, machine_id)[0]
    r = api.put(f"/api/v0/asks/{offer}/", json={**BODY, "image": image, "runtype": "ssh"})
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


def online(app, machine_id: int) -> bool:
    with transaction(app.state.sessions, write=False) as session:
        return session.get(Machine, machine_id).engine_online


def test_a_machine_whose_engine_stops_answering_goes_offline_and_comes_back(
        app, api, two_boxes, engine_proxy, test_image):
    far, near = two_boxes["far"], two_boxes["near"]
    lost = rent_on(api, far, test_image)
    fine = rent_on(api, near, test_image)
    app.state.reconciler.sweep()
    wait_status(api, lost, "running")
    wait_status(api, fine, "running")
    assert beat(app).checked == 2 and online(app, far) and online(app, near)
    [free_gpu] = offers_on(api, far)

    engine_proxy.down()
    for _ in range(FAILURES - 1):  # below the threshold: still online, still "running"
        assert beat(app).offline == []
    assert online(app, far) and api.get(f"/api/v0/instances/{lost}/").json()["instances"][
        "actual_status"] == "running"
    assert beat(app).offline == [far]
    assert not online(app, far) and online(app, near)
    unknown = wait_status(api, lost, "unknown")
    assert unknown["status_msg"].startswith("engine unreachable since "), unknown["status_msg"]
    assert offers_on(api, far) == []  # hidden (it has a free GPU)
    r = api.put(f"/api/v0/asks/{free_gpu}/", json={**BODY, "image": test_image})
    assert r.status_code == 409 and "offline" in r.json()["msg"], r.text
    assert wait_status(api, fine, "running")  # the other machine is unaffected
    assert app.state.reconciler.sweep() == 0  # nothing tries the offline engine meanwhile

    # the rest of the fleet works on
    assert api.delete(f"/api/v0/instances/{fine}/").json()["success"]
    app.state.reconciler.sweep()
    assert offers_on(api, near)

    engine_proxy.up()
    back = beat(app)
    assert back.online == [far] and online(app, far)
    app.state.reconciler.sweep()
    again = wait_status(api, lost, "running")
    assert again["status_msg"].startswith("running")
    assert offers_on(api, far) == [free_gpu]  # offered again
