"""Gateway ports in the database, without an engine: what one look reads (gateway/ports.py), the
ports of a burst of new instances recorded together, one by one when a port was taken, and a
port opened without a DNS lookup."""

from __future__ import annotations

import socket
import time
import traceback

import pytest
from sqlalchemy import select

from gpuyard.gateway import ports
from gpuyard.gateway.server import Gateway
from gpuyard.services.accounts.users import create_user
from gpuyard.services.rentals import instances
from gpuyard.store.db import transaction
from gpuyard.store.models import Ask, Instance, User
from gpuyard.wire.base import parse
from gpuyard.wire.instances import LaunchRequest
from port_blocks import free_block


def rent_all(app, count: int) -> list[int]:
    """``count`` simulated instances on the fleet's 1-GPU offers (no runtime acts on them)."""
    made = []
    with transaction(app.state.sessions) as session:  # the same user on every call
        found = session.scalar(select(User.id).where(User.username == "porter"))
        user_id = found if found is not None else create_user(session, "porter")[0].id
    for _ in range(count):
        with transaction(app.state.sessions) as session:
            user = session.get(User, user_id)
            ask = session.scalar(select(Ask.id).where(Ask.kind == "gpu", Ask.active.is_(True),
                                                      Ask.num_gpus == 1).order_by(Ask.id))
            request = parse(LaunchRequest, {"image": "busybox", "runtype": "ssh"})
            merged = instances.prepare_launch(session, user, request)
            made.append(instances.create_instance(session, user, ask, request, merged,
                                                  runtime="simulated").instance_id)
    return made


def ssh_ports(app, ids: list[int]) -> dict[int, int | None]:
    with transaction(app.state.sessions, write=False) as session:
        return {i: session.get(Instance, i).ssh_port for i in ids}


def test_one_look_reads_the_assigned_the_waiting_and_the_taken(app, fleet):
    a, b, c = rent_all(app, 3)
    with transaction(app.state.sessions) as session:
        assert ports.claim(session, a, 2200, "127.0.0.1")
        session.get(Instance, c).destroyed_at = 1.0
    with transaction(app.state.sessions, write=False) as session:
        assert not ports.destroyed_holding(session)
        assigned, waiting, taken = ports.current(session)
    assert [(row.instance_id, row.port) for row in assigned] == [(a, 2200)]
    assert waiting == [(b, "ssh")] and taken == {2200}  # the destroyed one waits for nothing


def test_a_burst_is_recorded_together_and_a_taken_port_only_fails_its_instance(app, fleet, tmp_path):
    a, b, c = rent_all(app, 3)
    gw = Gateway(app.state.sessions, tmp_path / "gw", public_host="127.0.0.1")
    with transaction(app.state.sessions) as session:  # another replica gave a port 2200 meanwhile
        assert ports.claim(session, a, 2200, "127.0.0.1")
    assert gw._claim([(b, 2200), (c, 2202)]) == {c}  # the unique index refuses b's alone
    assert gw._claim([(b, 2204)]) == {b}
    assert ssh_ports(app, [a, b, c]) == {a: 2200, b: 2204, c: 2202}
    with transaction(app.state.sessions, write=False) as session:
        assigned, waiting, taken = ports.current(session)
    assert waiting == [] and taken == {2200, 2202, 2204}


def test_opening_a_port_asks_no_dns(app, fleet, tmp_path, monkeypatch):
    """An instance's SSH port opens without a reverse DNS lookup of this host (asyncssh makes
    one for every listener unless told there is no GSS login): where DNS is slow, that lookup
    held every new instance's port back for seconds."""
    looked_up = []
    real = socket.getfqdn

    def getfqdn(*args):
        if any("asyncssh" in frame.filename for frame in traceback.extract_stack()):
            looked_up.append(args)
        return real(*args)

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    a, b = rent_all(app, 2)
    first = free_block(10, host="127.0.0.1")
    gw = Gateway(app.state.sessions, tmp_path / "gw", public_host="127.0.0.1", first_port=first,
                 last_port=first + 9, poll_seconds=0.2)
    gw.start()
    try:
        gw.sync_now()
        assert sorted(gw.listening().values()) == [a, b]
        for port in gw.listening():  # really listening: an SSH server answers with its banner
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                assert conn.recv(64).startswith(b"SSH-2.0-gpuyard")
    finally:
        gw.stop()
    assert looked_up == []


def test_a_quick_look_reads_only_what_changed(app, fleet, tmp_path, monkeypatch):
    """Between full looks, a look reads the new instances and those waiting for a port at the
    last look, not every live instance: it closes the destroyed instances' ports (given back in
    the same look), hands them to new instances, and listens where another replica gave a
    waiting instance its port."""
    (a,) = rent_all(app, 1)
    first = free_block(20, host="127.0.0.1")
    gw = Gateway(app.state.sessions, tmp_path / "gw", public_host="127.0.0.1", first_port=first,
                 last_port=first + 1, poll_seconds=3600)  # one port
    gw.start()
    try:
        gw.sync_now()
        assert gw.listening() == {first: a}

        def every_live_instance(_session):
            raise AssertionError("a quick look read every live instance")

        monkeypatch.setattr(ports, "current", every_live_instance)
        monkeypatch.setattr(ports, "RECENT_MARGIN", 0)  # (these ids are all within the margin)
        b, c = rent_all(app, 2)
        with transaction(app.state.sessions) as session:
            session.get(Instance, a).destroyed_at = time.time()
        gw.sync_now(full=False)  # a's port is given back and goes to b; none is left for c
        assert gw.listening() == {first: b}
        assert ssh_ports(app, [a, b, c]) == {a: None, b: first, c: None}

        other = first + 10  # another replica's range: it gives c a port
        with transaction(app.state.sessions) as session:
            assert ports.claim(session, c, other, "127.0.0.1")
        gw.sync_now(full=False)
        assert gw.listening() == {first: b, other: c}
        with socket.create_connection(("127.0.0.1", other), timeout=5) as conn:
            assert conn.recv(64).startswith(b"SSH-2.0-gpuyard")
    finally:
        gw.stop()


def test_the_check_for_ports_to_give_back_walks_an_index(app):
    """Every look asks whether a destroyed instance still holds a port: on SQLite a full look's
    question walks the index of ports (the instances holding one), a quick look's the index of
    destroyed_at from the last full look on; neither reads every instance ever made."""
    engine = app.state.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    for statement, index in ((ports._HOLDING_DESTROYED, "ix_instances_ssh_port"),
                             (ports._RELEASE, "ix_instances_ssh_port"),
                             (ports._HOLDING_DESTROYED_SINCE, "ix_instances_destroyed_at"),
                             (ports._RELEASE_SINCE, "ix_instances_destroyed_at")):
        compiled = statement.compile(dialect=engine.dialect)
        values = compiled.construct_params({"since": 1.0})
        with engine.connect() as conn:
            plan = " ".join(row[-1] for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}", tuple(values[name] for name in compiled.positiontup)))
        assert f"USING INDEX {index}" in plan, plan
