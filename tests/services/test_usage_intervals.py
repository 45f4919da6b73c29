"""How usage intervals are written (services/ledger/usage.py, docs/usage.md): a change in the
transaction that opened an interval gives it the new rates in place (nobody else ever saw the
first ones); a change in a later transaction closes it and opens another."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gpuyard.reconciler import Reconciler
from gpuyard.runtimes.simulated import SimulatedRuntime
from gpuyard.services.rentals import instances
from gpuyard.store.db import transaction
from gpuyard.store.models import Ask, Instance, UsageInterval, User
from gpuyard.wire.base import parse
from gpuyard.wire.instances import LaunchRequest
from usage_clock import HOUR, T0, controlled

pytestmark = pytest.mark.usefixtures("only_our_reconciler")  # tests/services/conftest.py


def one_gpu_offers(app) -> list[int]:
    with transaction(app.state.sessions, write=False) as session:
        return list(session.scalars(select(Ask.id).where(Ask.kind == "gpu", Ask.active.is_(True),
                                                         Ask.num_gpus == 1).order_by(Ask.id)))


def intervals(app, instance_id: int) -> list[tuple]:
    with transaction(app.state.sessions, write=False) as session:
        rows = session.scalars(select(UsageInterval).where(UsageInterval.instance_id == instance_id)
                               .order_by(UsageInterval.id))
        return [(r.gpus, r.gpu_dph, r.started_at, r.ended_at) for r in rows]


def rent(session, owner, ask: int, reconciler: Reconciler, **body) -> instances.Outcome:
    request = parse(LaunchRequest, {"image": "busybox", **body})
    return instances.rent_at_once(session, session.get(User, owner.id), ask, request, "simulated",
                                  reconciler.checks_images, reconciler.act_in)


def test_an_instance_running_from_its_rentals_transaction_has_one_interval(app, fleet, owner):
    reconciler = Reconciler(app.state.sessions, {"simulated": SimulatedRuntime()})
    with controlled(app) as clock:
        with transaction(app.state.sessions) as session:
            outcome = rent(session, owner, one_gpu_offers(app)[0], reconciler)
            dph = session.get(Instance, outcome.instance_id).dph_base
        assert outcome.recorded[0] == "running"  # made "loading", running in the same transaction
        # one interval at the running rates from the rental on, not a closed disk-only one first
        assert intervals(app, outcome.instance_id) == [(1, pytest.approx(dph), T0, None)]

        clock.advance(HOUR)  # a change in a later transaction: closed, and a new one opened
        with transaction(app.state.sessions) as session:
            instances.set_state(session, session.get(User, owner.id), [outcome.instance_id], "stopped")
        reconciler.reconcile(outcome.instance_id)
        assert intervals(app, outcome.instance_id) == [(1, pytest.approx(dph), T0, T0 + HOUR),
                                                       (0, 0.0, T0 + HOUR, None)]


def test_a_dry_run_before_a_rental_in_one_transaction_leaves_no_interval_behind(app, fleet, owner):
    reconciler = Reconciler(app.state.sessions, {"simulated": SimulatedRuntime()})
    first, second = one_gpu_offers(app)[:2]
    with controlled(app), transaction(app.state.sessions) as session:
        preview = rent(session, owner, first, reconciler, dry_run=True)
        outcome = rent(session, owner, second, reconciler)
        assert preview.launch is not None and outcome.recorded[0] == "running"
    with transaction(app.state.sessions, write=False) as session:
        rows = list(session.scalars(select(UsageInterval).where(UsageInterval.started_at == T0)))
    # only the real rental's interval: the dry run's went with its savepoint, and what it opened
    # was not taken for the rental's (it may get the same id on SQLite)
    assert [(r.instance_id, r.gpus, r.ended_at) for r in rows] == [(outcome.instance_id, 1, None)]
