"""Offers: the active ``Ask`` rows of listed machines, searched with the query language.

GPU offers (kind "gpu") are bundles of free GPUs of one machine; volume offers (kind "volume")
are a machine's free disk. Filters, sorting and the values in rows all come from the SQL
expressions of :mod:`gpuyard.services.offer_columns`, so a row always satisfies the filters it
was found with. Units and the score are documented in docs/offers.md.

Knows nothing of HTTP; every function takes an open session.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import case, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from gpuyard.errors import Conflict, InvalidInput, NotFound, QueryError
from gpuyard.query import (
    OFFER_FIELDS,
    VOLUME_FIELDS,
    FieldSet,
    FieldType,
    normalize_limit,
    normalize_order,
    normalize_query,
)
from gpuyard.query.sql import compile_order, compile_where
from gpuyard.query.validate import parse_number, show
from gpuyard.services.allocation import GPU, VOLUME
from gpuyard.services.identifiers import MAX_ID
from gpuyard.services.offer_columns import offer_columns, row_extras, volume_columns
from gpuyard.store.models import Ask, Machine, User

#: Offer types the client sends; only "bid" prices differently.
TYPES = {"on-demand": False, "reserved": False, "bid": True}
OFFER_CONTROL = ("order", "type", "limit", "allocated_storage", "disable_bundling",
                 "target_reliability", "extra_ids")
VOLUME_CONTROL = ("order", "limit", "allocated_storage")
DEFAULT_ORDER = [("score", "desc")]
SYMBOLS = {"eq": "==", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
           "in": "in", "notin": "notin"}


# ----------------------------------------------------------------------------- body parts
def is_bid(offer_type: Any) -> bool:
    """Whether an offer ``type`` asks for bid prices; an unknown type is a 400."""
    if offer_type is None:
        return False
    if isinstance(offer_type, str) and offer_type in TYPES:
        return TYPES[offer_type]
    raise InvalidInput(f"type must be one of {', '.join(TYPES)} (interruptible offers are "
                       f"'bid'), got {show(offer_type)}", "invalid_offer_type")


def allocated_gb(value: Any, default: float) -> float:
    """``allocated_storage`` in GB: a number or numeric string, 0 or more."""
    if value is None:
        return default
    number = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        parsed = parse_number(value)
        number = None if parsed is None else float(parsed)
    if number is None or not 0 <= number < 1e12:
        raise QueryError(f"allocated_storage must be a number of GB (0 or more), got {show(value)}",
                         clause=f"allocated_storage {show(value)}")
    return number


def _flag(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    raise InvalidInput(f"{key} must be true or false, got {show(value)}")


def _check_tolerated(body: Mapping[str, Any]) -> None:
    """Keys some clients send that do not change the result; checked for shape only."""
    target = body.get("target_reliability")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | float | str)
                               or parse_number(str(target)) is None):
        raise InvalidInput(f"target_reliability must be a number, got {show(target)}")
    extra = body.get("extra_ids")
    if extra is not None and not isinstance(extra, list):
        raise InvalidInput(f"extra_ids must be a list, got {show(extra)}")


def _split(body: Any, control: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(body, Mapping):
        raise InvalidInput(f"the search must be a JSON object of filters, got {show(body)}")
    filters = {k: v for k, v in body.items() if k not in control}
    return filters, {k: body[k] for k in control if k in body}


def _order(value: Any, fieldset: FieldSet) -> list[tuple[str, str]]:
    return DEFAULT_ORDER if value is None else normalize_order(value, fieldset)


# ----------------------------------------------------------------------------- rows
def _typed(kind: FieldType, value: Any) -> Any:
    if value is None:
        return None
    if kind is FieldType.INT:
        return int(value)
    if kind in (FieldType.FLOAT, FieldType.DATE):
        return float(value)
    if kind is FieldType.BOOL:
        return bool(value)
    return str(value)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _machine_extras(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "ask_contract_id": int(r["id"]),
        "hostname": r["hostname"],
        "driver_version": r["driver_version_text"],  # a string in rows: "550.54.15"
        "cpu_name": r["cpu_name"],
        "cpu_ghz": _number(r["cpu_ghz_"]),
        "disk_name": r["disk_name"],
        "reliability2": float(r["reliability"]),
        "verification": "verified" if r["verified"] else "unverified",
        "hosting_type": 1 if r["datacenter"] else 0,
        "start_date": float(r["start_date"]),
        "end_date": _number(r["end_date"]),
        "public_ipaddr": r["public_ipaddr"],
        "os_version": r["os_version"],
    }


def _gpu_row(r: Mapping[str, Any], bid: bool) -> dict[str, Any]:
    row = {name: _typed(fld.type, r[name]) for name, fld in OFFER_FIELDS.fields.items()}
    row.update(_machine_extras(r))
    row.update(
        bundle_id=row["id"],
        dph_base=float(r["dph_per_gpu"]) * row["num_gpus"],
        is_bid=bid,
    )
    return row


def _volume_row(r: Mapping[str, Any]) -> dict[str, Any]:
    row = {name: _typed(fld.type, r[name]) for name, fld in VOLUME_FIELDS.fields.items()}
    row.update(_machine_extras(r))
    row.update(gpu_name=r["gpu_name_"], num_gpus=int(r["machine_gpus"]), rentable=True)
    return row


def _select(columns: Mapping[str, Any]):
    labeled = {**columns, **row_extras()}
    return (
        select(*(expr.label(name) for name, expr in labeled.items()))
        .select_from(Ask)
        .join(Machine, Machine.id == Ask.machine_id)
    )


def _rows_in_order(session: Session, columns: Mapping[str, Any], conditions: list[Any],
                   order: list[Any], limit: int) -> list[Mapping[str, Any]]:
    """Rows of the best ``limit`` matches. Two steps: the ids in order first (the database then
    computes only the filtered and sorted fields for every candidate), then every output column
    for those rows alone (about 65 columns, a third of them read from ``specs``)."""
    ids_stmt = (
        select(Ask.id)
        .select_from(Ask)
        .join(Machine, Machine.id == Ask.machine_id)
        .where(*conditions)
        .order_by(*order, Ask.id.asc())
        .limit(limit)
    )
    ids = list(session.scalars(ids_stmt))
    if not ids:
        return []
    found = {r._mapping["id"]: r._mapping for r in session.execute(_select(columns).where(Ask.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def _offerable(kind: str, now: float) -> list[Any]:
    return [
        Ask.active == true(),
        Ask.kind == kind,
        Machine.listed == true(),
        or_(Machine.end_date.is_(None), Machine.end_date > now),
    ]


def _largest_bundle() -> Any:
    """Only each machine's biggest GPU offer (``disable_bundling``)."""
    other = aliased(Ask)
    biggest = (
        select(func.max(other.num_gpus))
        .where(other.machine_id == Ask.machine_id, other.kind == GPU, other.active == true())
        .scalar_subquery()
    )
    return Ask.num_gpus == biggest


# ----------------------------------------------------------------------------- searches
def search_offers(
    session: Session,
    user: User,
    body: Any,
    *,
    default_limit: int = 1000,
    max_limit: int = 10000,
) -> list[dict[str, Any]]:
    """``POST /api/v0/bundles/``: a flat body of filters plus ``order``, ``type``, ``limit``,
    ``allocated_storage`` (GB, default 5), and the tolerated ``disable_bundling``,
    ``target_reliability`` and ``extra_ids``. Every offer is visible to every user."""
    filters, control = _split(body, OFFER_CONTROL)
    query = normalize_query(filters, OFFER_FIELDS)
    bid = is_bid(control.get("type"))
    storage = allocated_gb(control.get("allocated_storage"), 5.0)
    ordering = _order(control.get("order"), OFFER_FIELDS)
    limit = normalize_limit(control.get("limit"), default_limit, max_limit)
    bundles_off = _flag(control, "disable_bundling")
    _check_tolerated(control)
    now = time.time()
    cols = offer_columns(bid=bid, storage=storage, now=now)
    conditions = [*_offerable(GPU, now), cols["disk_space"] >= storage, *compile_where(query, cols)]
    if bundles_off:
        conditions.append(_largest_bundle())
    rows = _rows_in_order(session, cols, conditions, compile_order(ordering, cols), limit)
    return [_gpu_row(r, bid) for r in rows]


def search_asks(
    session: Session, user: User, body: Any, *, default_limit: int = 1000, max_limit: int = 10000
) -> list[dict[str, Any]]:
    """``PUT /api/v0/search/asks/``: ``{"select_cols": ["*"], "q": {<a /bundles/ body>}}``."""
    if not isinstance(body, Mapping) or not isinstance(body.get("q", {}), Mapping):
        raise InvalidInput('the body must be {"select_cols": ["*"], "q": {<filters>}}')
    unknown = sorted(set(body) - {"q", "select_cols"})
    if unknown:
        raise InvalidInput(f"unknown key(s) {', '.join(unknown)}: put filters inside \"q\"")
    cols = body.get("select_cols")
    rows = search_offers(session, user, body.get("q") or {},
                         default_limit=default_limit, max_limit=max_limit)
    if cols is None or cols == ["*"]:
        return rows
    if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
        raise InvalidInput(f'select_cols must be a list of field names like ["*"], got {show(cols)}')
    known = set(rows[0]) if rows else set(OFFER_FIELDS.fields)
    bad = [c for c in cols if c != "*" and c not in known]
    if bad:
        raise InvalidInput(f"select_cols: unknown column(s) {', '.join(bad)}")
    if "*" in cols:
        return rows
    return [{c: row[c] for c in cols} for row in rows]


def search_volume_offers(
    session: Session,
    user: User,
    body: Any,
    *,
    default_limit: int = 1000,
    max_limit: int = 10000,
) -> list[dict[str, Any]]:
    """``POST /api/v0/volumes/search/``: filters on VOLUME_FIELDS plus ``order``, ``limit`` and
    ``allocated_storage`` (GB, default 1: offers have at least that much free disk)."""
    filters, control = _split(body, VOLUME_CONTROL)
    query = normalize_query(filters, VOLUME_FIELDS)
    storage = allocated_gb(control.get("allocated_storage"), 1.0)
    ordering = _order(control.get("order"), VOLUME_FIELDS)
    limit = normalize_limit(control.get("limit"), default_limit, max_limit)
    now = time.time()
    cols = volume_columns(now)
    conditions = [*_offerable(VOLUME, now), cols["disk_space"] >= storage, *compile_where(query, cols)]
    rows = _rows_in_order(session, cols, conditions, compile_order(ordering, cols), limit)
    return [_volume_row(r) for r in rows]


# ----------------------------------------------------------------------------- one offer
def _ask_id(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise InvalidInput(f"an offer id is a whole number from 'search offers', not {show(value)}",
                           "invalid_offer_id")
    if not 0 < number <= MAX_ID:
        raise NotFound(f"offer {number} not found: use an id from 'search offers'", "offer_not_found")
    return number


def get_ask(session: Session, ask_id: Any, kind: str) -> tuple[Ask, Machine]:
    """The active offer ``ask_id`` of ``kind`` ("gpu" or "volume") and its machine.

    NotFound for an id that never existed, InvalidInput for an offer of the other kind, Conflict
    (409, ``offer_unavailable``) for an offer that is no longer available. Lock the machine
    (``allocation.lock_machine``) before relying on the answer to rent.
    """
    number = _ask_id(ask_id)
    ask = session.get(Ask, number)
    if ask is None:
        search = "search offers" if kind == GPU else "search volumes"
        raise NotFound(f"offer {number} not found: use an id from '{search}'", "offer_not_found")
    if ask.kind != kind:
        if kind == GPU:
            msg = (f"{number} is a volume offer; create instances from a GPU offer id from "
                   "'search offers'")
        else:
            msg = (f"{number} is a GPU offer; create volumes from a volume offer id from "
                   "'search volumes'")
        raise InvalidInput(msg, "wrong_offer_kind")
    machine = session.get(Machine, ask.machine_id)
    assert machine is not None  # a foreign key
    if not ask.active:
        if kind == GPU:
            why, again = "its GPUs were rented", "Search offers again."
        else:
            why, again = "its machine has no free disk left", "Search volumes again."
        raise Conflict(f"offer {number} is no longer available: {why}. {again}", "offer_unavailable")
    if not machine.listed or (machine.end_date is not None and machine.end_date <= time.time()):
        raise Conflict(f"offer {number} is no longer available: its machine is no longer listed. "
                       "Search offers again.", "offer_unavailable")
    return ask, machine


def offer_row(
    session: Session,
    ask: Ask,
    machine: Machine,
    *,
    type: str = "on-demand",  # noqa: A002 - the wire's name
    allocated_storage: float = 5.0,
) -> dict[str, Any]:
    """The search row of one offer (GPU or volume), whether or not it is still active."""
    now = time.time()
    if ask.kind == VOLUME:
        stmt = _select(volume_columns(now)).where(Ask.id == ask.id)
        return _volume_row(session.execute(stmt).one()._mapping)
    bid = is_bid(type)
    cols = offer_columns(bid=bid, storage=float(allocated_storage), now=now)
    return _gpu_row(session.execute(_select(cols).where(Ask.id == ask.id)).one()._mapping, bid)


def _show_value(field: str, value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show_value(field, v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if field == "driver_version" and isinstance(value, int) and value >= 0:
        major, rest = divmod(value, 1_000_000)
        minor, patch = divmod(rest, 1000)
        return f"{major}.{minor:02d}.{patch:02d}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def clause_text(field: str, op: str, value: Any) -> str:
    """``gpu_ram >= 23000``, ``gpu_name == RTX 3090``, ``geolocation in [US, SE]``."""
    return f"{field} {SYMBOLS.get(op, op)} {_show_value(field, value)}"


def failing_filters(
    session: Session,
    ask_id: Any,
    query: Any,
    *,
    allocated_storage: float = 5.0,
    type: str = "on-demand",  # noqa: A002 - the wire's name
) -> list[str]:
    """The clauses of an offer filter dict (raw or normalized; control keys are ignored) that
    offer ``ask_id`` does not satisfy, as text. Each clause is evaluated in SQL with the same
    expressions searches use. NotFound when the offer never existed."""
    number = _ask_id(ask_id)
    filters = {k: v for k, v in (query or {}).items() if k not in OFFER_CONTROL} \
        if isinstance(query, Mapping) else query
    normalized = normalize_query(filters, OFFER_FIELDS)
    clauses = [(f, op, v) for f, ops in normalized.items() for op, v in ops.items()]
    cols = offer_columns(bid=is_bid(type), storage=float(allocated_storage), now=time.time())
    checks = [
        case((compile_where({f: {op: v}}, cols)[0], 1), else_=0).label(f"c{i}")
        for i, (f, op, v) in enumerate(clauses)
    ]
    stmt = (
        select(Ask.id, *checks)
        .select_from(Ask)
        .join(Machine, Machine.id == Ask.machine_id)
        .where(Ask.id == number)
    )
    row = session.execute(stmt).first()
    if row is None:
        raise NotFound(f"offer {number} not found: use an id from 'search offers'", "offer_not_found")
    return [clause_text(*c) for c, ok in zip(clauses, row[1:], strict=True) if not ok]
