"""The machine fleet: registering machines from a fleet file (YAML), and what the fleet offers.

``parse_fleet`` checks a whole file before anything is stored; ``apply_fleet`` inserts or
updates the machines by hostname and recomputes their offers. Run both in one transaction
(:func:`load_fleet` does): one bad machine stores nothing. The format is in docs/fleet.md.
"""

from __future__ import annotations

import difflib
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from gpuyard.errors import InvalidInput
from gpuyard.query.fields import parse_version
from gpuyard.services.market import allocation
from gpuyard.services.market.gpu_models import canonical_name, default_specs
from gpuyard.store.models import Ask, InstanceEvent, Machine, User

RUNTIMES = ("simulated", "docker")
GPU_RUNTIMES = ("nvidia", "cdi", "none")
DOCKER_SCHEMES = ("unix://", "ssh://", "tcp://", "npipe://")
MAX_GPUS = 64  # ask rows name GPUs as "0,1,…" in a 200-character column
DAY = 86400.0

# key → (type, default); a default of ... marks a required key.
_REQUIRED = ...
COLUMN_KEYS: dict[str, tuple[str, Any]] = {
    "hostname": ("str", _REQUIRED),
    "gpu_name": ("str", _REQUIRED),
    "num_gpus": ("int", _REQUIRED),
    "gpu_ram": ("number", _REQUIRED),
    "cpu_cores": ("int", _REQUIRED),
    "cpu_ram": ("number", _REQUIRED),
    "disk_space": ("number", _REQUIRED),
    "inet_down": ("number", _REQUIRED),
    "inet_up": ("number", _REQUIRED),
    "dph_per_gpu": ("number", _REQUIRED),
    "min_bid_per_gpu": ("number", _REQUIRED),
    "storage_cost": ("number", 0.10),
    "reliability": ("number", 0.99),
    "geolocation": ("str", None),
    "verified": ("bool", True),
    "direct_port_start": ("int", 40000),
    "direct_port_count": ("int", 0),
    "runtime": ("str", None),
    "docker_url": ("str", None),
    "public_ipaddr": ("str", None),
    "host_id": ("int", 1),
    "listed": ("bool", True),
}
OTHER_KEYS: dict[str, tuple[str, Any]] = {"listed_days": ("number", 90.0), "owner": ("str", None)}
#: What the owner sets with ``list machine`` / ``unlist machine``: a reload of the fleet file
#: keeps these once the owner has set them (``Machine.prices_set_at``).
OWNER_PRICED = ("dph_per_gpu", "min_bid_per_gpu", "storage_cost", "listed", "end_date")
#: Hardware details kept in ``Machine.specs``; defaults come from the GPU model (gpu_models.py).
SPEC_KEYS: dict[str, str] = {
    **dict.fromkeys(
        "cuda_max_good cpu_ghz pcie_bw disk_bw gpu_mem_bw total_flops dlperf bw_nvlink "
        "gpu_max_power gpu_max_temp inet_up_cost inet_down_cost".split(), "number"),
    **dict.fromkeys("pci_gen compute_cap".split(), "int"),
    **dict.fromkeys(
        "driver_version cpu_name cpu_arch disk_name gpu_arch ubuntu_version mobo_name "
        "gpu_runtime".split(), "str"),
    **dict.fromkeys("has_avx static_ip vms_enabled datacenter".split(), "bool"),
}
ALL_KEYS = sorted({**COLUMN_KEYS, **OTHER_KEYS, **SPEC_KEYS})
_MAX_LEN = {"owner": 100, "hostname": 255, "gpu_name": 100, "geolocation": 100, "runtime": 20,
            "docker_url": 500, "public_ipaddr": 100}
_HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass
class FleetResult:
    """What a load did: hostnames added and updated, and the GPUs the loaded machines offer."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    gpus_offered: int = 0
    machine_ids: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        noun = "machine" if len(self.added) == 1 else "machines"
        gpus = "GPU" if self.gpus_offered == 1 else "GPUs"
        return (f"{len(self.added)} {noun} added, {len(self.updated)} updated; "
                f"{self.gpus_offered} {gpus} offered")


# ----------------------------------------------------------------------------- reading
def read_fleet_file(path: str | Path) -> Any:
    """The YAML document of a fleet file (not yet checked). InvalidInput when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read fleet file {path}: {exc}", "fleet_invalid") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str = "fleet file") -> Any:
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise InvalidInput(f"{source}, line {line}: key {key!r} is given twice",
                                   "fleet_invalid")
            seen.add(key)
        return loader.construct_mapping(node)

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source} is not valid YAML: {exc}", "fleet_invalid") from None


# ----------------------------------------------------------------------------- checking
def _fail(where: str, key: str | None, problem: str) -> InvalidInput:
    at = f"{where}, key '{key}'" if key else where
    return InvalidInput(f"fleet file: {at}: {problem}", "fleet_invalid")


def _check_value(where: str, key: str, kind: str, value: Any) -> Any:
    if kind == "str":
        if isinstance(value, str) and value.strip():
            limit = _MAX_LEN.get(key)
            if limit and len(value) > limit:
                raise _fail(where, key, f"longer than {limit} characters")
            return value.strip()
        hint = f' (quote it: {key}: "{value}")' if isinstance(value, bool | int | float) else ""
        raise _fail(where, key, f"must be a non-empty string, got {value!r}{hint}")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise _fail(where, key, f"must be true or false, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        what = "a whole number" if kind == "int" else "a number"
        raise _fail(where, key, f"must be {what}, got {value!r}")
    if kind == "int" and not isinstance(value, int):
        raise _fail(where, key, f"must be a whole number, got {value!r}")
    if not math.isfinite(value):
        raise _fail(where, key, f"must be a finite number, got {value!r}")
    if value < 0:
        raise _fail(where, key, f"must not be negative, got {value!r}")
    return value if kind == "int" else float(value)


def _check_rules(where: str, m: dict[str, Any]) -> None:
    if not _HOSTNAME.fullmatch(m["hostname"]):
        raise _fail(where, "hostname", "use letters, digits, '.', '-' and '_' (no spaces)")
    if "_" in m["gpu_name"]:
        raise _fail(where, "gpu_name", f"write spaces, not '_' ({m['gpu_name'].replace('_', ' ')!r})")
    if not 1 <= m["num_gpus"] <= MAX_GPUS:
        raise _fail(where, "num_gpus", f"must be from 1 to {MAX_GPUS}, got {m['num_gpus']}")
    if not 0.0 <= m["reliability"] <= 1.0:
        raise _fail(where, "reliability", f"must be between 0 and 1, got {m['reliability']}")
    if m["runtime"] is not None and m["runtime"] not in RUNTIMES:
        raise _fail(where, "runtime", f"must be one of {', '.join(RUNTIMES)}, got {m['runtime']!r}")
    if m["specs"]["gpu_runtime"] not in GPU_RUNTIMES:
        raise _fail(where, "gpu_runtime", f"must be one of {', '.join(GPU_RUNTIMES)} (how a docker "
                    f"machine hands GPUs to containers), got {m['specs']['gpu_runtime']!r}")
    url = m["docker_url"]
    if url is not None and not url.startswith(DOCKER_SCHEMES):
        raise _fail(where, "docker_url", "must start with unix://, ssh:// or tcp:// (e.g. "
                    f"unix:///var/run/docker.sock), got {url!r}")
    start, count = m["direct_port_start"], m["direct_port_count"]
    if not 1 <= start <= 65535 or start + count - 1 > 65535:
        raise _fail(where, "direct_port_start",
                    f"ports {start}..{start + count - 1} do not fit in 1..65535")
    if m["listed_days"] <= 0:
        raise _fail(where, "listed_days", "must be more than 0")
    driver = m["specs"]["driver_version"]
    if parse_version(driver) is None:
        raise _fail(where, "driver_version", f"must look like 550.54.15, got {driver!r}")


def _where(index: int, entry: Any) -> str:
    if isinstance(entry, Mapping) and isinstance(entry.get("hostname"), str):
        return f"machine '{entry['hostname']}' (machines[{index}])"
    return f"machines[{index}]"


def parse_machine(index: int, entry: Any) -> dict[str, Any]:
    """One entry of ``machines`` checked, with defaults filled in: the column values plus
    ``specs`` and ``listed_days``. InvalidInput names the machine and the key."""
    where = _where(index, entry)
    if not isinstance(entry, Mapping):
        raise _fail(where, None, f"each machine must be a mapping of key: value, got {entry!r}")
    for key in entry:
        if key not in ALL_KEYS:
            close = difflib.get_close_matches(str(key), ALL_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise _fail(where, str(key), f"unknown key{hint}; keys are: {', '.join(ALL_KEYS)}")
    out: dict[str, Any] = {}
    for key, (kind, default) in {**COLUMN_KEYS, **OTHER_KEYS}.items():
        value = entry.get(key)
        if value is None:
            if default is _REQUIRED:
                raise _fail(where, key, "missing (this key is required)")
            out[key] = default
        else:
            out[key] = _check_value(where, key, kind, value)
    out["gpu_name"] = canonical_name(out["gpu_name"])
    specs = default_specs(out["gpu_name"])
    specs["gpu_runtime"] = "nvidia"
    for key, kind in SPEC_KEYS.items():
        if entry.get(key) is not None:
            specs[key] = _check_value(where, key, kind, entry[key])
    out["specs"] = specs
    _check_rules(where, out)
    specs["driver_vers"] = parse_version(specs["driver_version"])  # what filters compare
    return out


def parse_fleet(data: Any) -> list[dict[str, Any]]:
    """A whole fleet document checked (see :func:`parse_machine`); hostnames must be unique."""
    if not isinstance(data, Mapping) or "machines" not in data:
        raise InvalidInput("fleet file: expected a mapping with a 'machines' list at the top "
                           "(machines:\\n  - hostname: box-a\\n    ...)", "fleet_invalid")
    extra = sorted(str(k) for k in data if k != "machines")
    if extra:
        raise InvalidInput(f"fleet file: unknown top-level key(s) {', '.join(extra)}; only "
                           "'machines' is allowed", "fleet_invalid")
    entries = data["machines"]
    if not isinstance(entries, list) or not entries:
        raise InvalidInput("fleet file: 'machines' must be a non-empty list of machines",
                           "fleet_invalid")
    machines = [parse_machine(i, e) for i, e in enumerate(entries)]
    first: dict[str, int] = {}
    for i, m in enumerate(machines):
        if m["hostname"] in first:
            raise _fail(f"machine '{m['hostname']}' (machines[{i}])", "hostname",
                        f"the same hostname is already used by machines[{first[m['hostname']]}]")
        first[m["hostname"]] = i
    return machines


# ----------------------------------------------------------------------------- storing
def _check_shrink(session: Session, machine: Machine, num_gpus: int, where: str) -> None:
    held = {
        g: inst.id
        for inst in allocation.live_instances(session, machine.id)
        for g in allocation.gpu_list(inst.gpus)
        if g >= num_gpus
    }
    if held:
        gpus = ", ".join(str(g) for g in sorted(held))
        ids = ", ".join(str(i) for i in sorted(set(held.values())))
        raise _fail(where, "num_gpus",
                    f"cannot shrink to {num_gpus}: GPU {gpus} is held by live instance(s) {ids}; "
                    "destroy them first")


def _offered(session: Session, machine_id: int) -> int:
    largest = session.scalar(
        select(func.max(Ask.num_gpus)).where(
            Ask.machine_id == machine_id, Ask.kind == allocation.GPU, Ask.active == true()
        )
    )
    return int(largest or 0)


def first_admin(session: Session) -> int | None:
    """The id of the first administrator (the default owner of machines), or None."""
    return session.scalar(select(User.id).where(User.is_admin == true()).order_by(User.id).limit(1))


def owner_id(session: Session, name: str | None, where: str = "fleet file") -> int | None:
    """The user named ``name`` (InvalidInput naming the users there are when there is none), or
    the first administrator when ``name`` is None."""
    if name is None:
        return first_admin(session)
    found = session.scalar(select(User.id).where(User.username == name))
    if found is None:
        names = sorted(session.scalars(select(User.username).limit(20)))
        known = f"; users are: {', '.join(names)}" if names else "; there are no users yet"
        raise InvalidInput(f"{where}: owner {name!r} is not a user (create it first with "
                           f"gpuyard admin create-user {name}){known}", "owner_not_found")
    return found


def apply_fleet(session: Session, machines: list[dict[str, Any]]) -> FleetResult:
    """Insert or update (by hostname) checked machines and recompute their offers. The caller
    owns the transaction: on an error it must roll back (nothing is then stored).

    ``owner``: a username (None: keep a machine's owner; a new machine goes to the first
    administrator, if any). Prices, listing and end date come from the entry unless the owner
    has set them (``list machine``), which then win over a reload."""
    now = time.time()
    result = FleetResult()
    for index, m in enumerate(machines):
        where = f"machine '{m['hostname']}' (machines[{index}])"
        values = {k: v for k, v in m.items() if k in COLUMN_KEYS}
        values["specs"] = m["specs"]
        values["end_date"] = now + m["listed_days"] * DAY
        owner = m.get("owner")
        if owner is not None:
            values["owner_id"] = owner_id(session, owner, f"fleet file: {where}")
        existing = session.scalar(select(Machine.id).where(Machine.hostname == m["hostname"]))
        if existing is not None:
            priced, specs = session.execute(
                select(Machine.prices_set_at, Machine.specs).where(Machine.id == existing)).one()
            if priced is not None:
                for key in OWNER_PRICED:
                    values.pop(key, None)
                values["specs"] = {**values["specs"], **{
                    k: specs[k] for k in ("inet_up_cost", "inet_down_cost") if k in (specs or {})}}
        if existing is None:
            if owner is None:
                values["owner_id"] = first_admin(session)
            machine = Machine(**values, disk_used=0.0, created_at=now, updated_at=now)
            session.add(machine)
            session.flush()
            machine = allocation.lock_machine(session, machine.id)
            result.added.append(m["hostname"])
        else:
            machine = allocation.lock_machine(session, existing)
            _check_shrink(session, machine, m["num_gpus"], where)
            for key, value in values.items():
                setattr(machine, key, value)
            machine.updated_at = now
            result.updated.append(m["hostname"])
        allocation.refresh_machine(session, machine)
        result.machine_ids[m["hostname"]] = machine.id
        result.gpus_offered += _offered(session, machine.id)
    return result


def load_fleet(session: Session, data: Any) -> FleetResult:
    """Check a fleet document (already parsed from YAML) and store it."""
    return apply_fleet(session, parse_fleet(data))


def gpu_names(session: Session) -> list[str]:
    """Distinct GPU model names of the listed machines (CPU-only ones have none), sorted."""
    rows = session.scalars(
        select(Machine.gpu_name).where(Machine.listed == true(), Machine.num_gpus > 0)
        .distinct().order_by(Machine.gpu_name)
    )
    return list(rows)


def direct_port_ranges(session: Session) -> list[tuple[int, int]]:
    """The host port ranges (first, last) that listed machines publish instance ports from,
    overlapping ones joined, in order."""
    rows = session.execute(
        select(Machine.direct_port_start, Machine.direct_port_count)
        .where(Machine.listed == true(), Machine.direct_port_count > 0)
        .distinct()
    ).all()
    ranges: list[tuple[int, int]] = []
    for first, last in sorted((start, start + count - 1) for start, count in rows):
        if ranges and first <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], last))
        else:
            ranges.append((first, last))
    return ranges


def fleet_size(session: Session) -> tuple[int, int]:
    """(listed machines, their GPUs)."""
    count, gpus = session.execute(
        select(func.count(Machine.id), func.coalesce(func.sum(Machine.num_gpus), 0)).where(
            Machine.listed == true()
        )
    ).one()
    return int(count), int(gpus)


# ----------------------------------------------------------------------------- lost machines
def declare_lost(session: Session, machine_ref: Any) -> str:
    """``gpuyard admin machine-lost``: the operator says the machine's containers are gone for
    good (the machine died, or was wiped). The destroyed instances whose containers could not be
    removed (their engine did not answer) stop waiting for that: their GPUs and host ports are
    offered again. Should the engine answer after all, those containers are orphans the garbage
    collection removes. Live instances are left alone. Returns what was done, in words."""
    from gpuyard.errors import NotFound
    from gpuyard.services.identifiers import require_id

    machine_id = require_id(machine_ref, "machine id")
    if session.get(Machine, machine_id) is None:
        raise NotFound(f"machine {machine_id} not found", "machine_not_found")
    machine = allocation.lock_machine(session, machine_id)
    lingering = allocation.lingering_instances(session, machine.id)
    now = time.time()
    for inst in lingering:
        session.add(InstanceEvent(instance_id=inst.id, at=now, text=(
            f"machine {machine.id} declared lost: its container {inst.runtime_ref} is forgotten")))
        inst.runtime_ref = None
    allocation.refresh_machine(session, machine)
    if not lingering:
        return (f"Machine {machine.id} ({machine.hostname}) has no destroyed instance waiting for "
                "its container to be removed; nothing to do.")
    ids = ", ".join(str(i.id) for i in lingering)
    return (f"Machine {machine.id} ({machine.hostname}) declared lost: the containers of destroyed "
            f"instance(s) {ids} are forgotten; their GPUs and host ports are offered again.")
