"""Many processes, many engines: engine heartbeats (a machine whose engine stops answering goes
offline after the threshold, its offers hidden, its instances "unknown"; the other machines are
unaffected; it comes back online by itself) and lease takeovers (the process that takes over an
instance from a dead one removes what that one left, so an instance never has two containers;
the orphan sweep never removes a leased instance's container)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from gpuyard.control.heartbeats import check_engines
from gpuyard.control.leases import InstanceLeases
from gpuyard.reconciler import Reconciler
from gpuyard.services.market.fleet import load_fleet, parse_yaml
from gpuyard.store.db import transaction
from gpuyard.store.models import Instance, InstanceLease, Machine
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


def containers_of(engine, installation: str, instance_id: int) -> list[str]:
    labels = ["gpuyard.managed=true", f"gpuyard.installation={installation}",
              f"gpuyard.instance={instance_id}"]
    return sorted(c.name for c in engine.containers.list(all=True, filters={"label": labels}))


def test_a_takeover_removes_what_the_dead_holder_left_and_the_orphan_sweep_waits_for_it(
        app, api, two_boxes, engine, test_image):
    near = two_boxes["near"]
    iid = rent_on(api, near, test_image)
    wait_status(api, iid, "running")
    [first] = containers_of(engine, app.state.installation, iid)

    def died_while_creating(lease_until: float) -> str:
        """As if a worker had made a container for the instance and died before recording it,
        its lease on the instance expiring at ``lease_until``; the container's name."""
        with transaction(app.state.sessions) as session:
            inst = session.get(Instance, iid)
            inst.runtime_ref, inst.applied_generation, inst.actual_status = None, 0, "loading"
            session.merge(InstanceLease(instance_id=iid, holder="dead-worker", expires_at=lease_until))
        return containers_of(engine, app.state.installation, iid)[-1]

    # the orphan sweep leaves a leased instance's container alone, and removes it once the
    # lease has expired
    died_while_creating(4102444800.0)  # (a lease until 2100)
    app.state.reconciler.collect_garbage(min_age=0)
    assert containers_of(engine, app.state.installation, iid) == [first]
    died_while_creating(2000.0)
    app.state.reconciler.collect_garbage(min_age=0)
    assert containers_of(engine, app.state.installation, iid) == []

    # another worker waits for the lease, then takes over: it removes what the dead one left
    # and makes the one container
    left = app.state.runtimes["docker"].at(engine_url(app, near)).create(spec_of(app, iid)).ref
    died_while_creating(2010.0)
    now = [2009.0]
    survivor = Reconciler(app.state.sessions, app.state.runtimes,
                          leases=InstanceLeases(app.state.sessions, "survivor", clock=lambda: now[0]))
    assert survivor.reconcile(iid) is False
    assert containers_of(engine, app.state.installation, iid) == [left]
    now[0] = 2010.5
    assert survivor.reconcile(iid) is True
    [made] = containers_of(engine, app.state.installation, iid)
    assert made != left
    running = wait_status(api, iid, "running")
    assert running["actual_status"] == "running"


def engine_url(app, machine_id: int) -> str:
    with transaction(app.state.sessions, write=False) as session:
        return session.get(Machine, machine_id).docker_url


def spec_of(app, iid: int):
    from gpuyard.reconciler import launch_spec

    with transaction(app.state.sessions, write=False) as session:
        inst = session.get(Instance, iid)
        return launch_spec(inst, session.get(Machine, inst.machine_id), None)
