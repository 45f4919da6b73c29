"""The reconciler and the simulated runtime: boot delays, restarts of the server, runtime
failures, and cleaning up after destroyed instances."""

from __future__ import annotations

import pytest

from gpuyard.reconciler import Reconciler
from gpuyard.runtimes.base import LaunchSpec, RuntimeError_, RuntimeState
from gpuyard.runtimes.simulated import SimulatedRuntime
from gpuyard.services import instances
from gpuyard.services.users import create_user
from gpuyard.store.db import transaction
from gpuyard.store.models import Ask, Instance, InstanceEvent
from gpuyard.wire.base import parse
from gpuyard.wire.instances import LaunchRequest


@pytest.fixture(autouse=True)
def _only_our_reconciler(app):
    """Pause the server's own background reconciler (if the live server runs), so that only
    the reconcilers these tests build act on the instances."""
    background = app.state.reconciler
    running = background._thread is not None
    background.stop()
    yield
    if running:
        background.start()


@pytest.fixture
def owner(app):
    with transaction(app.state.sessions) as session:
        user, _key = create_user(session, "owner")
        return user


def rent(app, owner, **body) -> int:
    with transaction(app.state.sessions) as session:
        ask = session.query(Ask).filter_by(kind="gpu", active=True, num_gpus=1).order_by(Ask.id).first()
        request = parse(LaunchRequest, {"image": "busybox", **body})
        merged = instances.prepare_launch(session, owner, request)
        outcome = instances.create_instance(session, owner, ask.id, request, merged, runtime="simulated")
        return outcome.instance_id


def row(app, iid: int) -> Instance:
    with transaction(app.state.sessions, write=False) as session:
        inst = session.get(Instance, iid)
        session.expunge(inst)
        return inst


def events(app, iid: int) -> list[str]:
    with transaction(app.state.sessions, write=False) as session:
        found = session.query(InstanceEvent).filter_by(instance_id=iid).order_by(InstanceEvent.id)
        return [e.text for e in found]


def test_boot_delay_shows_loading_then_running(app, fleet, owner):
    now = [1000.0]  # the runtime's clock, moved by hand: no race with a real boot delay
    runtime = SimulatedRuntime(boot_seconds=30, clock=lambda: now[0])
    rec = Reconciler(app.state.sessions, {"simulated": runtime})
    iid = rent(app, owner)
    rec.reconcile(iid)
    first = row(app, iid)
    assert first.actual_status == "loading" and "starting busybox:latest" in first.status_msg
    now[0] += 29.9
    rec.sweep()
    assert row(app, iid).actual_status == "loading"
    now[0] += 0.1
    assert rec.sweep() >= 1
    assert row(app, iid).actual_status == "running"
    assert "loading → running" in events(app, iid)


def test_after_a_restart_the_running_instances_come_back(app, fleet, owner):
    before = Reconciler(app.state.sessions, {"simulated": SimulatedRuntime()})
    iid = rent(app, owner)
    before.reconcile(iid)
    old_ref = row(app, iid).runtime_ref
    restarted = Reconciler(app.state.sessions, {"simulated": SimulatedRuntime()})  # empty memory
    restarted.sweep(everything=True)
    after = row(app, iid)
    assert after.actual_status == "running" and after.runtime_ref and after.runtime_ref != old_ref
    assert "the runtime lost the instance; creating it again" in events(app, iid)


class BrokenRuntime(SimulatedRuntime):
    def create(self, spec: LaunchSpec) -> RuntimeState:
        raise RuntimeError_(f"image {spec.image_uuid} not found")


def test_runtime_errors_reach_the_user_and_are_not_retried_in_a_tight_loop(app, fleet, owner):
    rec = Reconciler(app.state.sessions, {"simulated": BrokenRuntime()})
    iid = rent(app, owner)
    rec.reconcile(iid)
    failed = row(app, iid)
    assert failed.actual_status == "exited"
    assert failed.status_msg == "error: image busybox:latest not found"
    assert rec.sweep() == 0  # waits before trying again


def test_an_unknown_runtime_is_reported_not_crashed(app, fleet, owner):
    rec = Reconciler(app.state.sessions, {"other": SimulatedRuntime()})
    iid = rent(app, owner)
    rec.reconcile(iid)
    assert "the simulated runtime is not available" in row(app, iid).status_msg


def test_destroyed_instances_are_removed_from_the_runtime(app, fleet, owner):
    runtime = SimulatedRuntime()
    rec = Reconciler(app.state.sessions, {"simulated": runtime})
    iid = rent(app, owner)
    rec.reconcile(iid)
    ref = row(app, iid).runtime_ref
    assert runtime.status(ref).status == "running"
    with transaction(app.state.sessions) as session:
        instances.destroy(session, owner, [iid])
    rec.sweep()
    assert runtime.status(ref).status == "missing"
    assert row(app, iid).runtime_ref is None
    assert "removed from the machine" in events(app, iid)


def test_the_runtime_gets_the_env_parsed_at_launch_not_reparsed(app, fleet, owner):
    """An instance keeps its env as the pairs parsed at launch: the reconciler builds the
    runtime's spec from them, so a sweep does the same small work whatever the env's size."""
    from gpuyard.reconciler import launch_spec
    from gpuyard.store.models import Machine

    iid = rent(app, owner, env="-e A=1 -e 'B=two words' -h box -p 8000:8000")
    with transaction(app.state.sessions) as session:
        inst = session.get(Instance, iid)
        assert inst.launch["extra_env"] == [["A", "1"], ["B", "two words"], ["-p 8000:8000", "1"],
                                            ["-h", "box"]]
        inst.env = "-e 'unclosed"  # the stored text is no longer read
    with transaction(app.state.sessions, write=False) as session:
        inst = session.get(Instance, iid)
        spec = launch_spec(inst, session.get(Machine, inst.machine_id), None)
    assert spec.env == {"A": "1", "B": "two words"} and spec.options == (("-h", "box"),)
    assert "8000/tcp" in spec.ports
