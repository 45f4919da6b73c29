"""Renting one offer (services/rentals/settle.rent_offer): one write transaction when the machine
rules on no image, the three steps (merge, the engine's verdict, rental) when it does."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, func, select

from gpuyard.errors import Conflict, InvalidInput, Unavailable
from gpuyard.reconciler import Reconciler
from gpuyard.runtimes.base import ImageUnavailable, RuntimeError_
from gpuyard.runtimes.simulated import SimulatedRuntime
from gpuyard.services.rentals import instances
from gpuyard.services.rentals.settle import rent_offer, settle_launch
from gpuyard.store.db import transaction
from gpuyard.store.models import Ask, Instance, InstanceEvent, User
from gpuyard.wire.base import parse
from gpuyard.wire.instances import LaunchRequest

pytestmark = pytest.mark.usefixtures("only_our_reconciler")  # tests/services/conftest.py


def first_offer(app) -> int:
    with transaction(app.state.sessions, write=False) as session:
        return session.scalar(select(Ask.id).where(Ask.kind == "gpu", Ask.active.is_(True),
                                                   Ask.num_gpus == 1).order_by(Ask.id))


def count_instances(app) -> int:
    with transaction(app.state.sessions, write=False) as session:
        return session.scalar(select(func.count()).select_from(Instance))


class Runner:
    """``run`` as the API gives it to rent_offer: each call one transaction for ``owner``;
    records which kind of transaction each service call had."""

    def __init__(self, app, owner):
        self.app, self.owner, self.calls = app, owner, []

    async def __call__(self, fn, *args, write: bool, then=None, **kwargs):
        self.calls.append((fn.__name__, write))
        with transaction(self.app.state.sessions, write=write) as session:
            result = fn(session, session.get(User, self.owner.id), *args, **kwargs)
        if then is not None:
            then(result)
        return result


class CheckingRuntime(SimulatedRuntime):
    """A simulated runtime whose engine rules on images, as docker's does: refuses "missing"."""

    name = "checking"
    in_memory = False  # as an engine: rentals ask it first

    def __init__(self):
        super().__init__()
        self.asked: list[str] = []

    def prepare_image(self, image: str, tag: str, login=None) -> None:
        self.asked.append(f"{image}:{tag}")
        if image == "missing":
            raise ImageUnavailable(f"no image {image}:{tag} on the registry")


def run_async(coro):
    """Run ``coro`` to its end on a thread of its own: a test elsewhere in the suite may leave an
    event loop running on this one (asyncio.run refuses to start a second)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def launch(image: str = "busybox", **body) -> LaunchRequest:
    return parse(LaunchRequest, {"image": image, **body})


def test_a_simulated_machine_is_rented_in_one_write_transaction(app, fleet, owner):
    run = Runner(app, owner)
    reconciler = Reconciler(app.state.sessions, {"simulated": SimulatedRuntime()})
    ask = first_offer(app)
    outcome = run_async(rent_offer(run, reconciler, launch(env="-e A=1"), ask, "simulated"))
    assert run.calls == [("rent_at_once", True)]
    assert outcome.settled and outcome.refusal is None  # reconciled on the same thread
    with transaction(app.state.sessions, write=False) as session:
        inst = session.get(Instance, outcome.instance_id)
        assert inst.image == "busybox" and inst.env == "-e A=1"
        assert inst.actual_status == "running"
        assert session.get(Ask, ask).active is False  # its GPU is taken


def events_of(app, instance_id: int) -> list[str]:
    with transaction(app.state.sessions, write=False) as session:
        return list(session.scalars(select(InstanceEvent.text).where(
            InstanceEvent.instance_id == instance_id).order_by(InstanceEvent.id)))


def rent_watching(app, owner, reconciler, name: str, listener) -> instances.Outcome:
    """Rent the first offer with ``listener`` on the engine's event ``name`` meanwhile."""
    engine = app.state.sessions.kw["bind"]
    ask = first_offer(app)
    event.listen(engine, name, listener)
    try:
        return run_async(rent_offer(Runner(app, owner), reconciler, launch(), ask, "simulated"))
    finally:
        event.remove(engine, name, listener)


def test_a_simulated_rental_is_reconciled_inside_its_own_transaction(app, fleet, owner):
    runtime = SimulatedRuntime()
    reconciler = Reconciler(app.state.sessions, {"simulated": runtime})
    begun: list[int] = []
    outcome = rent_watching(app, owner, reconciler, "begin", lambda _conn: begun.append(1))
    assert len(begun) == 1  # the rental's: no transaction of its own for the first reconcile
    assert outcome.recorded == ("running", "running") and outcome.instance_id not in outcome.instance_ids
    with transaction(app.state.sessions, write=False) as session:
        inst = session.get(Instance, outcome.instance_id)
        assert inst.actual_status == "running" and inst.applied_generation == inst.generation == 1
        assert runtime.status(inst.runtime_ref).status == "running"  # the runtime has it
    assert events_of(app, outcome.instance_id) == ["created from busybox:latest", "loading → running"]


def test_a_simulated_rental_stays_within_its_statement_budget(app, fleet, owner):
    """What a rental costs is mostly its statements: the rental, its bundles, its usage and its
    first reconcile in one transaction read no row twice, and the offer and its machine are
    read by one statement (bench/README.md, rentals.py). On PostgreSQL the account and the
    machine are read again under their row locks, and the offer after the machine's lock."""
    reconciler = Reconciler(app.state.sessions, {"simulated": SimulatedRuntime()})
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement.split(None, 1)[0])

    outcome = rent_watching(app, owner, reconciler, "before_cursor_execute", seen)
    assert outcome.recorded is not None and outcome.recorded[0] == "running"
    sqlite = app.state.sessions.kw["bind"].dialect.name == "sqlite"
    budget = 16 if sqlite else 18  # (SQLite's count has its BEGIN)
    assert len(statements) <= budget, statements


def test_a_rental_rolled_back_after_its_reconcile_leaves_nothing_in_the_runtime(app, fleet, owner):
    runtime = SimulatedRuntime()
    reconciler = Reconciler(app.state.sessions, {"simulated": runtime})
    ask, before = first_offer(app), count_instances(app)
    made = []
    with pytest.raises(RuntimeError, match="after the rental"):
        with transaction(app.state.sessions) as session:
            user = session.get(User, owner.id)
            outcome = instances.rent_at_once(session, user, ask, launch(), "simulated",
                                             reconciler.checks_images, reconciler.act_in)
            made.append(session.get(Instance, outcome.instance_id).runtime_ref)
            assert runtime.status(made[0]).status == "running"
            raise RuntimeError("something failed after the rental")
    assert runtime.status(made[0]).status == "missing"  # removed with the rollback
    assert count_instances(app) == before


def test_a_machine_that_rules_on_images_is_asked_before_anything_is_rented(app, fleet, owner):
    runtime = CheckingRuntime()
    reconciler = Reconciler(app.state.sessions, {"checking": runtime})
    assert reconciler.checks_images("checking") and reconciler.checks_images("docker")
    assert not Reconciler(app.state.sessions, {"simulated": SimulatedRuntime()}).checks_images("simulated")
    ask, before = first_offer(app), count_instances(app)

    run = Runner(app, owner)
    with pytest.raises(InvalidInput) as refused:
        run_async(rent_offer(run, reconciler, launch("missing"), ask, "checking"))
    assert refused.value.code == "image_unavailable" and "nothing was rented" in refused.value.msg
    assert runtime.asked == ["missing:latest"]
    assert [name for name, _write in run.calls] == ["rent_at_once"]
    assert count_instances(app) == before  # the first write transaction wrote nothing
    with transaction(app.state.sessions, write=False) as session:
        assert session.get(Ask, ask).active is True

    run = Runner(app, owner)
    outcome = run_async(rent_offer(run, reconciler, launch(), ask, "checking"))
    assert run.calls == [("rent_at_once", True), ("create_instance", True)]  # merged once
    assert runtime.asked[-1] == "busybox:latest" and count_instances(app) == before + 1
    assert outcome.instance_id is not None and not outcome.settled  # settle_launch does it


def test_a_dry_run_checks_no_image_and_rents_nothing(app, fleet, owner):
    runtime = CheckingRuntime()
    reconciler = Reconciler(app.state.sessions, {"checking": runtime})
    before = count_instances(app)
    outcome = run_async(rent_offer(Runner(app, owner), reconciler, launch("missing", dry_run=True),
                                     first_offer(app), "checking"))
    assert outcome.launch["image"] == "missing" and runtime.asked == []
    assert count_instances(app) == before


def test_rent_at_once_leaves_nothing_behind_when_it_defers(app, fleet, owner):
    ask = first_offer(app)
    with transaction(app.state.sessions) as session:
        user = session.get(User, owner.id)
        deferred = instances.rent_at_once(session, user, ask, launch(), "simulated", lambda _n: True)
        assert isinstance(deferred, instances.Deferred) and not session.new and not session.dirty
        assert deferred.merged["image"] == "busybox" and deferred.target[0] == "simulated"


def test_a_runtime_the_server_lacks_is_refused_before_anything_is_rented(app, fleet, owner):
    reconciler = Reconciler(app.state.sessions, {"simulated": SimulatedRuntime()})
    before = count_instances(app)
    with pytest.raises(Unavailable) as refused:  # the machines' runtime: the server's default
        run_async(rent_offer(Runner(app, owner), reconciler, launch(), first_offer(app), "docker"))
    assert refused.value.code == "engine_unavailable"
    assert "docker runtime is not available on this server" in refused.value.msg
    assert "nothing was rented" in refused.value.msg and count_instances(app) == before


class RefusingRuntime(SimulatedRuntime):
    """An in-memory runtime whose machine refuses every create, as an engine refusing a device."""

    def create(self, spec):
        raise RuntimeError_("no such device: nvidia0")


def test_a_launch_the_machine_refuses_at_once_is_undone_and_answered(app, fleet, owner):
    reconciler = Reconciler(app.state.sessions, {"simulated": RefusingRuntime()})
    ask, before = first_offer(app), count_instances(app)
    outcome = run_async(rent_offer(Runner(app, owner), reconciler, launch(), ask, "simulated"))
    assert outcome.settled  # on the rental's own thread, the refusal kept for the answer
    assert outcome.recorded == ("exited", "error: no such device: nvidia0")  # in its transaction
    with pytest.raises(Conflict) as refused:
        run_async(settle_launch(app.state.sessions, reconciler, outcome))
    assert refused.value.code == "engine_refused"
    assert "no such device: nvidia0" in refused.value.msg and "nothing was rented" in refused.value.msg
    with transaction(app.state.sessions, write=False) as session:
        inst = session.get(Instance, outcome.instance_id)
        assert inst.destroyed_at is not None and count_instances(app) == before + 1
        assert session.get(Ask, ask).active is True  # offered again
    assert events_of(app, outcome.instance_id)[0] == "error: no such device: nvidia0"
