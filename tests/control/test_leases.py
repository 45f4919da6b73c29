"""Instance leases: one process acts on an instance at a time, a lease its holder stopped
renewing is taken over, and two reconcilers on one database make each instance once."""

from __future__ import annotations

import threading
import time

import pytest

from gpuyard.control.leases import InstanceLeases
from gpuyard.reconciler import Reconciler
from gpuyard.runtimes.base import LaunchSpec, RuntimeState
from gpuyard.runtimes.simulated import SimulatedRuntime
from gpuyard.services.accounts.users import create_user
from gpuyard.services.rentals import instances
from gpuyard.store.db import transaction
from gpuyard.store.models import Ask, Instance, InstanceEvent
from gpuyard.wire.base import parse
from gpuyard.wire.instances import LaunchRequest
from worker_pause import paused_worker


@pytest.fixture(autouse=True)
def _only_our_reconcilers(app):
    """Pause the server's own background reconciler, so that only the ones built here act."""
    with paused_worker(app):
        yield


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def leases(app, holder: str, clock=None, seconds: float = 10.0) -> InstanceLeases:
    return InstanceLeases(app.state.sessions, holder, seconds, clock=clock or time.time)


def test_one_holder_at_a_time_and_a_released_lease_is_free(app):
    a, b = leases(app, "a"), leases(app, "b")
    first = a.claim(7)
    assert first is not None and not first.takeover
    assert b.claim(7) is None  # a holds it
    assert a.claim(7) is not None  # the holder may take it again
    assert b.holders([7, 8]) == {7: "a"}
    a.release(7)
    taken = b.claim(7)
    assert taken is not None and not taken.takeover  # given back, not taken over
    assert a.holders([7]) == {7: "b"}


def test_a_lease_whose_holder_stopped_renewing_is_taken_over(app):
    clock = Clock()
    a, b = leases(app, "a", clock), leases(app, "b", clock)
    assert a.claim(3) is not None
    clock.now += 9.9
    assert b.claim(3) is None
    assert a.renew() == 1  # a is alive: its lease moves on
    clock.now += 9.9
    assert b.claim(3) is None
    clock.now += 10.1  # a stopped renewing (killed)
    taken = b.claim(3)
    assert taken is not None and taken.takeover and taken.previous == "a"
    assert a.claim(3) is None


def test_a_kept_lease_lives_while_the_work_goes_on_and_is_given_back_after(app):
    clock = Clock()
    a, b = leases(app, "a", clock), leases(app, "b", clock)
    working = [True]
    assert a.claim(5) is not None
    a.keep(5, lambda: working[0])
    for _ in range(3):
        clock.now += 5
        assert a.renew() == 1
        assert b.claim(5) is None
    working[0] = False
    assert a.renew() == 0  # the work ended: given back at once
    assert b.claim(5) is not None


class CountingRuntime(SimulatedRuntime):
    """One process's simulated runtime (machines shared with the other process), counting the
    containers it makes, a little slow to make them (as an engine is)."""

    def __init__(self, made: list[int]):
        super().__init__(boot_seconds=0, shared=True)
        self.made = made

    def create(self, spec: LaunchSpec) -> RuntimeState:
        time.sleep(0.01)
        self.made.append(spec.instance_id)
        return super().create(spec)


def rent_many(app, count: int) -> list[int]:
    with transaction(app.state.sessions) as session:
        owner, _key = create_user(session, "owner")
    ids = []
    for _ in range(count):
        with transaction(app.state.sessions) as session:
            ask = session.query(Ask).filter_by(kind="gpu", active=True, num_gpus=1).order_by(Ask.id).first()
            request = parse(LaunchRequest, {"image": "busybox"})
            merged = instances.prepare_launch(session, owner, request)
            ids.append(instances.create_instance(session, owner, ask.id, request, merged,
                                                 runtime="simulated").instance_id)
    return ids


def test_two_reconcilers_on_one_database_make_each_instance_once(app, big_fleet):
    made: list[int] = []
    workers = [Reconciler(app.state.sessions, {"simulated": CountingRuntime(made)},
                          leases=leases(app, name)) for name in ("w1", "w2")]
    ids = rent_many(app, 24)
    start = threading.Barrier(len(workers))

    def work(rec: Reconciler) -> None:
        start.wait()
        for _ in range(5):
            rec.sweep()

    threads = [threading.Thread(target=work, args=(rec,)) for rec in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(made) == sorted(ids)  # each made once, by one of them
    with transaction(app.state.sessions, write=False) as session:
        statuses = {i.id: i.actual_status for i in session.query(Instance).filter(Instance.id.in_(ids))}
        recreated = session.query(InstanceEvent).filter(
            InstanceEvent.text.like("%lost the instance%")).count()
    assert set(statuses.values()) == {"running"} and recreated == 0


@pytest.fixture
def big_fleet(app):
    """Six machines with eight GPUs each (enough one-GPU offers for the rentals above)."""
    from gpuyard.services.market.fleet import load_fleet, parse_yaml

    machines = "\n".join(f"""
  - hostname: m{n}
    gpu_name: RTX 4090
    num_gpus: 8
    gpu_ram: 24
    cpu_cores: 32
    cpu_ram: 256
    disk_space: 4000
    inet_down: 1000
    inet_up: 1000
    dph_per_gpu: 0.5
    min_bid_per_gpu: 0.1""" for n in range(6))
    with transaction(app.state.sessions) as session:
        return load_fleet(session, parse_yaml("machines:" + machines))
