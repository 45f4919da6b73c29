"""Offers: the active ``Ask`` rows of listed machines, searched with the query language.

GPU offers (kind "gpu") are bundles of free GPUs of one machine; volume offers (kind "volume")
are a machine's free disk. Filters, sorting and the values in rows all come from the SQL
expressions of :mod:`gpuyard.services.market.offer_columns`, so a row always satisfies the filters it
was found with. Units and the score are documented in docs/offers.md.

Knows nothing of HTTP; every function takes an open session.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, case, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from gpuyard.errors import Conflict, InvalidInput, NotFound
from gpuyard.query import OFFER_FIELDS, VOLUME_FIELDS, FieldType, normalize_query
from gpuyard.query.sql import compile_order, compile_where
from gpuyard.query.validate import show
from gpuyard.services.identifiers import MAX_ID
from gpuyard.services.market.allocation import GPU, VOLUME, gpu_list, live_instances
from gpuyard.services.market.offer_columns import offer_columns, offer_end, row_extras, volume_columns
from gpuyard.store.db import ROW_ID_RANGE
from gpuyard.store.models import Ask, Machine, User
from gpuyard.wire.offers import OFFER_CONTROL, OfferQuery, is_bid

SYMBOLS = {"eq": "==", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
           "in": "in", "notin": "notin"}


# ----------------------------------------------------------------------------- rows
#: The Python type of each field type's values in rows (the database may give 1 for 1.0, 0/1
#: for booleans, numbers for text read from JSON).
PYTHON_TYPE = {FieldType.INT: int, FieldType.FLOAT: float, FieldType.DATE: float,
               FieldType.BOOL: bool, FieldType.STR: str}
OFFER_TYPES = [(name, PYTHON_TYPE[fld.type]) for name, fld in OFFER_FIELDS.fields.items()]
VOLUME_TYPES = [(name, PYTHON_TYPE[fld.type]) for name, fld in VOLUME_FIELDS.fields.items()]


def _typed_fields(r: Mapping[str, Any], types: list[tuple[str, type]]) -> dict[str, Any]:
    """The fields of a row, each converted to its type only when it is not already of it (this
    runs for every field of every offer of a search: tens of thousands of values)."""
    out = {}
    for name, kind in types:
        value = r[name]
        out[name] = value if value is None or type(value) is kind else kind(value)
    return out


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
    row = _typed_fields(r, OFFER_TYPES)
    row.update(_machine_extras(r))
    row.update(
        bundle_id=row["id"],
        dph_base=float(r["dph_per_gpu"]) * row["num_gpus"],
        is_bid=bid,
    )
    return row


def _volume_row(r: Mapping[str, Any]) -> dict[str, Any]:
    row = _typed_fields(r, VOLUME_TYPES)
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


def machine_offer_end(machine: Machine) -> float | None:
    """:func:`~gpuyard.services.market.offer_columns.offer_end` of one machine."""
    ends = [t for t in (machine.end_date, machine.maint_start) if t is not None]
    return min(ends) if ends else None


def _offerable(kind: str, now: float) -> list[Any]:
    return [
        Ask.active == true(),
        Ask.kind == kind,
        Machine.listed == true(),
        Machine.engine_online == true(),  # an offline machine's offers are hidden
        or_(offer_end().is_(None), offer_end() > now),
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
def search_offers(session: Session, user: User, search: OfferQuery) -> list[dict[str, Any]]:
    """``POST /api/v0/bundles/`` (checked by :class:`~gpuyard.wire.offers.OfferSearch`). Every
    offer is visible to every user."""
    now = time.time()
    cols = offer_columns(bid=search.bid, storage=search.storage, now=now)
    conditions = [*_offerable(GPU, now), cols["disk_space"] >= search.storage,
                  *compile_where(search.query, cols)]
    if search.largest_only:
        conditions.append(_largest_bundle())
    rows = _rows_in_order(session, cols, conditions, compile_order(search.order, cols), search.limit)
    return [_gpu_row(r, search.bid) for r in rows]


def search_asks(session: Session, user: User, search: OfferQuery,
                cols: list[str] | None) -> list[dict[str, Any]]:
    """``PUT /api/v0/search/asks/``: :func:`search_offers` with ``select_cols``."""
    rows = search_offers(session, user, search)
    if not cols or "*" in cols:  # none named: every column
        return rows
    known = set(rows[0]) if rows else set(OFFER_FIELDS.fields)
    bad = [c for c in cols if c not in known]
    if bad:
        raise InvalidInput(f"select_cols: unknown column(s) {', '.join(bad)}")
    return [{c: row[c] for c in cols} for row in rows]


def search_volume_offers(session: Session, user: User, search: OfferQuery) -> list[dict[str, Any]]:
    """``POST /api/v0/volumes/search/`` (checked by :class:`~gpuyard.wire.offers.VolumeSearch`):
    offers have at least ``allocated_storage`` GB of free disk."""
    now = time.time()
    cols = volume_columns(now)
    conditions = [*_offerable(VOLUME, now), cols["disk_space"] >= search.storage,
                  *compile_where(search.query, cols)]
    rows = _rows_in_order(session, cols, conditions, compile_order(search.order, cols), search.limit)
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


_ASK_AND_MACHINE = (select(Ask, Machine).join(Machine, Machine.id == Ask.machine_id)
                    .where(Ask.id == bindparam("ask")))


def read_ask(session: Session, ask_id: Any) -> tuple[Ask | None, Machine | None]:
    """The offer ``ask_id`` and its machine, read into the session by one statement (a rental
    reads both first: two loads by id cost twice as much), or (None, None) when there is no
    such offer. Nothing is checked: :func:`get_ask` says what is wrong with the offer.

    Not for reading the offer again under the machine's lock: PostgreSQL would lock the
    machine's row (``FOR UPDATE OF machines``) and return its newest version after waiting, but
    the offer's row as it was when the statement began, before the rival's commit."""
    if not isinstance(ask_id, int) or isinstance(ask_id, bool) or ask_id not in ROW_ID_RANGE:
        return None, None
    found = session.execute(_ASK_AND_MACHINE, {"ask": ask_id}).first()
    return (found[0], found[1]) if found is not None else (None, None)


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
            why, again = _gpu_holders(session, ask, machine), "Search offers again."
        else:
            why, again = "its machine has no free disk left", "Search volumes again."
        raise Conflict(f"offer {number} is no longer available: {why}. {again}", "offer_unavailable")
    ends = machine_offer_end(machine)
    if not machine.listed or (ends is not None and ends <= time.time()):
        raise Conflict(f"offer {number} is no longer available: its machine is no longer listed. "
                       "Search offers again.", "offer_unavailable")
    if not machine.engine_online:
        raise Conflict(f"offer {number} is not available now: its machine is offline (its engine "
                       f"does not answer: {machine.engine_error or 'no answer'}). Search offers "
                       "again.", "offer_unavailable")
    return ask, machine


def _gpu_holders(session: Session, ask: Ask, machine: Machine) -> str:
    """Why a GPU offer is off: its GPUs are rented on demand, or held by a bid (offers put idle
    GPUs first, so a bundle whose GPUs a bid holds is replaced by one of idle GPUs)."""
    gpus = set(gpu_list(ask.gpus))
    holders = [i for i in live_instances(session, machine.id) if gpus & set(gpu_list(i.gpus))]
    if any(not i.is_bid for i in holders):
        return "its GPUs were rented"
    bids = [i.bid_price or 0.0 for i in holders if i.is_bid and not i.outbid]
    if bids:
        return f"a bid of ${max(bids):g}/hour holds its GPUs (offers list idle GPUs first)"
    return "its GPUs are not offered any more"


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
