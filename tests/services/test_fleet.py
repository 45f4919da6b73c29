"""Loading a fleet: defaults, reloads by hostname, strict all-or-nothing validation, offers kept
in step with rentals."""

from __future__ import annotations

import copy
import time

import pytest
from sqlalchemy import func, select

from gpuyard.errors import Conflict, InvalidInput, NotFound
from gpuyard.services.demo import demo_fleet_text, load_demo_fleet
from gpuyard.services.market import allocation, fleet, offers
from gpuyard.store.db import transaction
from gpuyard.store.models import Ask, Instance, Machine, User
from gpuyard.wire.base import parse
from gpuyard.wire.offers import OfferSearch

BOX_A = {
    "hostname": "box-a", "gpu_name": "RTX 4090", "num_gpus": 4, "gpu_ram": 24, "cpu_cores": 32,
    "cpu_ram": 128, "disk_space": 2000, "inet_down": 1000, "inet_up": 800, "dph_per_gpu": 0.40,
    "min_bid_per_gpu": 0.10, "storage_cost": 0.10, "reliability": 0.995, "geolocation": "US",
    "verified": True, "direct_port_count": 200, "runtime": "simulated",
}
BOX_B = {**BOX_A, "hostname": "box-b", "gpu_name": "RTX 3090", "num_gpus": 1, "geolocation": "SE"}


def doc(*machines: dict) -> dict:
    return {"machines": [copy.deepcopy(m) for m in machines]}


def load(app, data) -> fleet.FleetResult:
    with transaction(app.state.sessions) as s:
        return fleet.load_fleet(s, data)


def machines(app) -> dict[str, Machine]:
    with transaction(app.state.sessions) as s:
        return {m.hostname: m for m in s.scalars(select(Machine))}


def active_asks(app, hostname: str) -> dict[str, int]:
    with transaction(app.state.sessions) as s:
        rows = s.execute(
            select(Ask.gpus, Ask.id).join(Machine, Machine.id == Ask.machine_id)
            .where(Machine.hostname == hostname, Ask.active, Ask.kind == "gpu")
        )
        return dict(rows.all())


def test_load_registers_machines_with_defaults_and_offers(app):
    result = load(app, doc(BOX_A, BOX_B))
    assert result.summary() == "2 machines added, 0 updated; 5 GPUs offered"
    a = machines(app)["box-a"]
    assert (a.num_gpus, a.gpu_ram, a.dph_per_gpu, a.runtime, a.direct_port_start) == (
        4, 24.0, 0.40, "simulated", 40000)
    # hardware details default from the GPU model
    assert a.specs["compute_cap"] == 890 and a.specs["driver_version"] == "550.54.15"
    assert a.specs["cuda_max_good"] == 12.4 and a.specs["dlperf"] > 0
    # listed for 90 days by default
    assert 89.9 * 86400 < a.end_date - time.time() <= 90 * 86400
    # bundles of 1, 2 and all 4 GPUs
    assert sorted(active_asks(app, "box-a")) == ["0", "0,1", "0,1,2,3"]


def test_reload_updates_by_hostname_and_never_duplicates(app):
    load(app, doc(BOX_A, BOX_B))
    before = machines(app)
    asks_before = active_asks(app, "box-a")
    cheaper = {**BOX_A, "dph_per_gpu": 0.35, "cpu_name": "AMD EPYC 7543 32-Core Processor"}
    result = load(app, doc(cheaper, BOX_B))
    assert result.summary() == "0 machines added, 2 updated; 5 GPUs offered"
    after = machines(app)
    assert {h: m.id for h, m in after.items()} == {h: m.id for h, m in before.items()}
    assert after["box-a"].dph_per_gpu == 0.35
    assert after["box-a"].specs["cpu_name"] == "AMD EPYC 7543 32-Core Processor"
    assert active_asks(app, "box-a") == asks_before  # same offer ids
    with transaction(app.state.sessions) as s:
        assert s.scalar(select(func.count(Machine.id))) == 2


def test_one_new_machine_among_known_ones(app):
    load(app, doc(BOX_A))
    result = load(app, doc(BOX_A, BOX_B))
    assert (result.added, result.updated) == (["box-b"], ["box-a"])
    assert result.summary() == "1 machine added, 1 updated; 5 GPUs offered"


def test_optional_keys_and_overrides(app):
    box = {**BOX_A, "direct_port_start": 50000, "public_ipaddr": "203.0.113.7", "host_id": 7,
           "docker_url": "tcp://10.0.0.7:2375", "driver_version": "535.86.05", "pci_gen": 5,
           "datacenter": True, "listed_days": 10, "gpu_name": "rtx 4090"}
    load(app, doc(box))
    m = machines(app)["box-a"]
    assert (m.direct_port_start, m.public_ipaddr, m.host_id, m.docker_url) == (
        50000, "203.0.113.7", 7, "tcp://10.0.0.7:2375")
    assert m.gpu_name == "RTX 4090"  # a known model is stored in its usual spelling
    assert m.specs["driver_version"] == "535.86.05" and m.specs["driver_vers"] == 535086005
    assert m.specs["pci_gen"] == 5 and m.specs["datacenter"] is True
    assert 9.9 * 86400 < m.end_date - time.time() <= 10 * 86400


def test_unknown_gpu_models_get_generic_defaults(app):
    load(app, doc({**BOX_A, "gpu_name": "Radeon Pro W7900"}))
    m = machines(app)["box-a"]
    assert m.gpu_name == "Radeon Pro W7900"
    assert m.specs["cuda_max_good"] > 0 and m.specs["total_flops"] > 0


def bad(app, data, *needles: str) -> str:
    with pytest.raises(InvalidInput) as err:
        load(app, data)
    for needle in needles:
        assert needle in err.value.msg, err.value.msg
    return err.value.msg


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"gpu_ram": None}, ("machine 'box-a' (machines[1])", "'gpu_ram'", "missing")),
        ({"num_gpus": "4"}, ("'num_gpus'", "whole number")),
        ({"num_gpus": 2.5}, ("'num_gpus'", "whole number")),
        ({"gpu_ram": "24GB"}, ("'gpu_ram'", "must be a number")),
        ({"verified": "yes please"}, ("'verified'", "true or false")),
        ({"geolocation": False}, ("'geolocation'", "quote it")),
        ({"dph_per_gpu": -0.1}, ("'dph_per_gpu'", "negative")),
        ({"disk_space": float("nan")}, ("'disk_space'", "finite")),
        ({"reliability": 1.5}, ("'reliability'", "between 0 and 1")),
        ({"runtime": "podman"}, ("'runtime'", "simulated, docker")),
        ({"num_gpus": 0}, ("'num_gpus'", "from 1 to 64")),
        ({"gpu_name": "Radeon_W7900"}, ("'gpu_name'", "spaces")),
        ({"hostname": "box a"}, ("'hostname'",)),
        ({"driver_version": "550.54"}, ("'driver_version'", "550.54.15")),
        ({"direct_port_start": 65500}, ("'direct_port_start'", "65535")),
        ({"gpu_rma": 24}, ("'gpu_rma'", "unknown key", "did you mean 'gpu_ram'")),
    ],
)
def test_each_invalid_value_is_named(app, change, needles):
    box = {**BOX_A, **change}
    box = {k: v for k, v in box.items() if v is not None}
    bad(app, doc(BOX_B, box), *needles)
    assert machines(app) == {}  # all or nothing: box-b was not stored either


def test_a_machine_without_hostname_is_named_by_its_index(app):
    box = {k: v for k, v in BOX_A.items() if k != "hostname"}
    bad(app, doc(BOX_B, box), "machines[1]", "'hostname'", "missing")


def test_duplicate_hostnames_in_one_file(app):
    bad(app, doc(BOX_A, BOX_B, BOX_A), "machines[2]", "machines[0]", "box-a")
    assert machines(app) == {}


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ([BOX_A], "'machines' list"),
        ({"machines": []}, "non-empty list"),
        ({"machines": [BOX_A], "owner": "me"}, "unknown top-level key(s) owner"),
        ({"machines": ["box-a"]}, "machines[0]"),
    ],
)
def test_file_structure_errors(app, data, needle):
    bad(app, data, needle)


def test_yaml_errors_and_duplicate_yaml_keys(tmp_path):
    with pytest.raises(InvalidInput, match="not valid YAML"):
        fleet.parse_yaml("machines: [\n")
    with pytest.raises(InvalidInput, match="line 3: key 'gpu_ram' is given twice"):
        fleet.parse_yaml("machines:\n  - gpu_ram: 24\n    gpu_ram: 48\n")
    with pytest.raises(InvalidInput, match="cannot read fleet file"):
        fleet.read_fleet_file(tmp_path / "missing.yaml")


def rent(app, hostname: str, gpus: str, *, owner: int | None = None) -> int:
    """An on-demand instance holding ``gpus`` (as the instance service stores one)."""
    with transaction(app.state.sessions) as s:
        if owner is None:
            user = User(username=f"renter{time.time_ns()}", created_at=time.time())
            s.add(user)
            s.flush()
            owner = user.id
        machine_id = s.scalar(select(Machine.id).where(Machine.hostname == hostname))
        machine = allocation.lock_machine(s, machine_id)
        now = time.time()
        inst = Instance(
            owner_id=owner, machine_id=machine.id, gpus=gpus, num_gpus=len(gpus.split(",")),
            is_bid=False, dph_base=machine.dph_per_gpu, storage_cost=machine.storage_cost,
            image="busybox", tag="latest", disk_space=10.0, runtime="simulated",
            start_date=now, created_at=now, updated_at=now,
        )
        s.add(inst)
        s.flush()
        allocation.refresh_machine(s, machine)
        return inst.id


def test_shrinking_below_rented_gpus_is_refused(app):
    load(app, doc(BOX_A))
    rent(app, "box-a", "3")
    # box-b comes first and is inserted before box-a fails: the whole load is rolled back
    msg = bad(app, doc(BOX_B, {**BOX_A, "num_gpus": 2}), "machine 'box-a' (machines[1])",
              "'num_gpus'", "GPU 3", "destroy them first")
    assert "cannot shrink to 2" in msg
    assert set(machines(app)) == {"box-a"} and machines(app)["box-a"].num_gpus == 4
    load(app, doc({**BOX_A, "num_gpus": 8}))  # growing is fine
    assert machines(app)["box-a"].num_gpus == 8


def test_renting_changes_the_offers(app):
    load(app, doc(BOX_A))
    one_gpu = active_asks(app, "box-a")["0"]
    rent(app, "box-a", "0")
    asks = active_asks(app, "box-a")
    assert "0" not in asks and sorted(asks) == ["1", "1,2", "1,2,3"]
    with transaction(app.state.sessions) as session:
        with pytest.raises(Conflict) as err:
            offers.get_ask(session, one_gpu, "gpu")
        assert err.value.code == "offer_unavailable"
        assert f"offer {one_gpu} is no longer available: its GPUs were rented" in err.value.msg
        ask, machine = offers.get_ask(session, asks["1"], "gpu")
        assert ask.gpus == "1" and machine.hostname == "box-a"


def test_get_ask_errors(app):
    load(app, doc(BOX_A))
    gpu_ask = active_asks(app, "box-a")["0"]
    with transaction(app.state.sessions) as session:
        _check_get_ask_errors(session, gpu_ask)


def _check_get_ask_errors(session, gpu_ask: int) -> None:
    volume_ask = session.scalar(select(Ask.id).where(Ask.kind == "volume"))
    with pytest.raises(NotFound) as err:
        offers.get_ask(session, 999999, "gpu")
    assert err.value.code == "offer_not_found"
    with pytest.raises(InvalidInput, match=f"{volume_ask} is a volume offer; create instances"):
        offers.get_ask(session, volume_ask, "gpu")
    with pytest.raises(InvalidInput, match=f"{gpu_ask} is a GPU offer; create volumes"):
        offers.get_ask(session, gpu_ask, "volume")
    ask, machine = offers.get_ask(session, str(volume_ask), "volume")
    assert ask.kind == "volume" and machine.hostname == "box-a"


def test_offer_row_and_failing_filters(app):
    load(app, doc(BOX_A))
    ask_id = active_asks(app, "box-a")["0,1"]
    with transaction(app.state.sessions) as session:
        _check_row_and_failing(session, ask_id)


def _check_row_and_failing(session, ask_id: int) -> None:
    ask, machine = offers.get_ask(session, ask_id, "gpu")
    row = offers.offer_row(session, ask, machine, allocated_storage=72)
    assert row["num_gpus"] == 2 and row["gpu_total_ram"] == 48000.0
    assert row["dph_total"] == pytest.approx(0.80 + 0.10 * 72 / 720)
    bid = offers.offer_row(session, ask, machine, type="bid", allocated_storage=0)
    assert bid["dph_total"] == pytest.approx(0.20) and bid["is_bid"] is True
    query = {"verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True},
             "rented": {"eq": False}, "gpu_ram": {"gte": 23000.0}, "num_gpus": {"eq": "1"},
             "gpu_name": {"eq": "RTX 3090"}, "geolocation": {"in": ["US", "SE"]},
             "driver_version": {"gte": "560.1.2"}, "dph": {"lt": "0.5"}}
    failing = offers.failing_filters(session, ask.id, query, allocated_storage=5)
    assert failing == ["num_gpus == 1", "gpu_name == RTX 3090", "driver_version >= 560.01.02",
                       "dph_total < 0.5"]
    assert offers.failing_filters(session, ask.id, {"gpu_ram": {"gte": 23000}},
                                  allocated_storage=5) == []
    with pytest.raises(NotFound):
        offers.failing_filters(session, 999999, {}, allocated_storage=5)


def test_gpu_names_lists_listed_machines_sorted(app):
    with transaction(app.state.sessions) as s:
        assert fleet.gpu_names(s) == []
    load(app, doc(BOX_A, BOX_B, {**BOX_A, "hostname": "box-c", "gpu_name": "H100 SXM",
                                 "listed": False}))
    with transaction(app.state.sessions) as s:
        assert fleet.gpu_names(s) == ["RTX 3090", "RTX 4090"]


def test_demo_fleet_is_valid_and_fits_the_demo_template(app):
    machines_in_file = fleet.parse_fleet(fleet.parse_yaml(demo_fleet_text()))
    assert 6 <= len(machines_in_file) <= 8
    assert len({m["gpu_name"] for m in machines_in_file}) >= 5
    with transaction(app.state.sessions) as s:
        first = load_demo_fleet(s)
        again = load_demo_fleet(s)
        assert again.added == [] and len(again.updated) == len(first.added)
        tgi = {"gpu_ram": {"gte": 23000.0}, "num_gpus": {"eq": "1"},
               "gpu_name": {"eq": "RTX 3090"}, "inet_down": {"gt": "128"},
               "direct_port_count": {"gt": "3"}, "disk_space": {"gte": "192"}}
        query = parse(OfferSearch, tgi).checked(default_limit=10, max_limit=10)
        assert offers.search_offers(s, None, query)
