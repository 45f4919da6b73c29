"""The reconciler and the simulated runtime: boot delays, restarts of the server, runtime
failures, and cleaning up after destroyed instances."""

from __future__ import annotations

import pytest

from gpuyard.reconciler import Reconciler
from gpuyard.runtimes.base import EngineUnreachable, LaunchSpec, RuntimeError_, RuntimeState
from gpuyard.runtimes.simulated import SimulatedRuntime
from gpuyard.services.rentals import instances
from gpuyard.store.db import transaction
from gpuyard.store.models import Ask, Instance, InstanceEvent
from gpuyard.wire.base import parse
from gpuyard.wire.instances import LaunchRequest

pytestmark = pytest.mark.usefixtures("only_our_reconciler")  # tests/services/conftest.py


def rent(app, owner, ask: int | None = None, **body) -> int:
    with transaction(app.state.sessions) as session:
        if ask is None:
            found = session.query(Ask).filter_by(kind="gpu", active=True, num_gpus=1)
            ask = found.order_by(Ask.id).first().id
        request = parse(LaunchRequest, {"image": "busybox", **body})
        merged = instances.prepare_launch(session, owner, request)
        outcome = instances.create_instance(session, owner, ask, request, merged, runtime="simulated")
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


class SilentEngine(SimulatedRuntime):
    """A simulated engine that can stop answering."""

    answers = True

    def destroy(self, ref: str) -> None:
        if not self.answers:
            raise EngineUnreachable("the Docker engine at ssh://box is unreachable (remove)")
        super().destroy(ref)


def asks_of(app, machine_id: int) -> dict[str, bool]:
    with transaction(app.state.sessions, write=False) as session:
        return {a.gpus: a.active for a in session.query(Ask).filter_by(machine_id=machine_id, kind="gpu")}


def test_a_destroyed_instance_holds_its_gpus_until_its_container_is_removed(app, fleet, owner):
    box = fleet.machine_ids["box-4090"]
    runtime = SilentEngine()
    rec = Reconciler(app.state.sessions, {"simulated": runtime})
    with transaction(app.state.sessions) as session:
        ask_of = {a.gpus: a.id for a in session.query(Ask).filter_by(machine_id=box, kind="gpu")}
    bid = rent(app, owner, ask=ask_of["0"], price=0.3)
    rec.reconcile(bid)
    on_demand = rent(app, owner, ask=ask_of["0,1"])  # preempts the bid
    rec.sweep()
    assert row(app, bid).outbid and row(app, on_demand).actual_status == "running"

    runtime.answers = False
    with transaction(app.state.sessions) as session:
        instances.destroy(session, owner, [on_demand])
    rec.sweep()
    assert row(app, on_demand).runtime_ref is not None  # its container may still run
    assert not any(asks_of(app, box).values())  # its GPUs are not offered
    waiting = row(app, bid)
    assert waiting.outbid and waiting.actual_status == "stopped"
    assert "a destroyed instance whose container is not removed yet" in waiting.outbid_msg

    runtime.answers = True
    rec.reconcile(on_demand)  # (a sweep tries the engine again after PROBE_EVERY)
    assert row(app, on_demand).runtime_ref is None
    rec.sweep()
    assert row(app, bid).actual_status == "running" and not row(app, bid).outbid
    assert asks_of(app, box)["1"] is True  # the GPU the bid does not hold is offered again
