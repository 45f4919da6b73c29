"""Reports on recorded usage (services/ledger/usage.py): the usage table and chart, the legacy invoices
call, invoices-v1 (charges per instance or volume and UTC day; credit entries as invoices), and
the contracts lookup the official CLI makes for ``show invoices --instance_label``.

Every figure is computed from usage intervals for the window asked, with the session's clock as
"now". Amounts are dollars from the account's side: charges positive, credit negative.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from gpuyard.services.identifiers import MAX_ID
from gpuyard.services.ledger import billing, usage
from gpuyard.services.ledger.usage import DAY, Piece, day_of
from gpuyard.store.models import CreditEntry, Instance, Machine, User
from gpuyard.wire.billing import BillingQuery, ContractsFetch, InvoicesQuery, UsageQuery


def r6(value: float) -> float:
    return round(value, 6) + 0.0  # no -0.0


def _plural(n: float, word: str) -> str:
    return f"{n:g} {word}" + ("" if n == 1 else "s")


# -- the usage report ------------------------------------------------------------------------------
def _group_key(by: str, names: dict[str, dict[int, str]]) -> Callable[[Row[Any]], str]:
    if by == "user":
        return lambda row: names["user"].get(row.user_id, f"user {row.user_id}")
    if by == "machine":
        return lambda row: names["machine"].get(row.machine_id, f"machine {row.machine_id}")
    if by == "label":
        return lambda row: row.label or "(no label)"
    return lambda row: ("(volumes)" if row.kind == "volume" else row.template_name
                        or (f"template {row.template_id}" if row.template_id else "(no template)"))


def _names(session: Session, by: str, rows: list[Row[Any]]) -> dict[str, dict[int, str]]:
    names: dict[str, dict[int, str]] = {"user": {}, "machine": {}}
    if by == "user" and rows:
        ids = {r.user_id for r in rows}
        names["user"] = dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())
    if by == "machine" and rows:
        ids = {r.machine_id for r in rows}
        found = session.execute(select(Machine.id, Machine.hostname).where(Machine.id.in_(ids)))
        names["machine"] = {m: f"{host} (machine {m})" for m, host in found}
    return names


def _figures(key: str, parts: list[Piece]) -> dict[str, Any]:
    gpu_cost = sum(p.gpu_cost for p in parts)
    disk_cost = sum(p.disk_cost for p in parts)
    return {"key": key, "gpu_hours": r6(sum(p.gpu_hours for p in parts)),
            "disk_gb_hours": r6(sum(p.disk_gb_hours for p in parts)),
            "gpu_cost": r6(gpu_cost), "disk_cost": r6(disk_cost), "cost": r6(gpu_cost + disk_cost)}


def usage_report(session: Session, user: User, query: UsageQuery) -> dict[str, Any]:
    """GPU-hours, disk GB-hours and cost per group (``query.by``) and per UTC day, for the last
    30 days by default. Administrators see every user's usage; others their own."""
    at = usage.now(session)
    until = query.until if query.until is not None else at
    since = query.since if query.since is not None else day_of(until) - 29 * DAY
    since = min(since, until)
    everyone = bool(user.is_admin)
    rows = usage.intervals(session, since, until, None if everyone else [user.id])
    key_of = _group_key(query.by, _names(session, query.by, rows))
    groups: dict[str, list[Piece]] = defaultdict(list)
    days: dict[tuple[float, str], list[Piece]] = defaultdict(list)
    every: list[Piece] = []
    for piece in usage.pieces(rows, since, until, at):
        key = key_of(piece.row)
        groups[key].append(piece)
        days[(piece.day, key)].append(piece)
        every.append(piece)
    table = sorted((_figures(k, parts) for k, parts in groups.items()), key=lambda f: (-f["cost"], f["key"]))
    return {
        "success": True, "by": query.by, "since": since, "until": until, "everyone": everyone,
        "rows": table,
        "days": [{"day": day, "key": key, "gpu_hours": r6(sum(p.gpu_hours for p in parts)),
                  "cost": r6(sum(p.cost for p in parts))}
                 for (day, key), parts in sorted(days.items())],
        "total": _figures("total", every),
    }


# -- charges per subject, day, part and rate -------------------------------------------------------
def _subject(row: Row[Any]) -> tuple[str, int]:
    return (row.kind, row.instance_id if row.kind == "instance" else row.volume_id)


def _subject_name(kind: str, ident: int, label: str | None) -> str:
    return f"{kind} {ident}" + (f" ({label})" if label else "")


def _lines(rows: list[Row[Any]], since: float, until: float, at: float) -> dict[tuple, dict[str, Any]]:
    """Charge lines keyed by (kind, id, day, part, rate): hours, last moment, and what to call it."""
    lines: dict[tuple, dict[str, Any]] = {}
    for piece in usage.pieces(rows, since, until, at):
        row = piece.row
        kind, ident = _subject(row)
        name = _subject_name(kind, ident, row.label)
        parts = []
        if row.gpu_dph > 0 or row.gpus > 0:
            parts.append(("gpu", row.gpu_dph, f"{name}: GPU time, {_plural(row.gpus, 'GPU')} on machine "
                                              f"{row.machine_id}"))
        if row.disk_dph > 0:
            what = "disk" if kind == "instance" else "storage"
            parts.append((what, row.disk_dph, f"{name}: {what}, {row.disk_gb:g} GB"))
        for part, rate, description in parts:
            line = lines.setdefault((kind, ident, piece.day, part, rate), {
                "hours": 0.0, "end": piece.end, "description": description, "kind": kind, "id": ident,
                "day": piece.day, "part": part, "rate": rate})
            line["hours"] += piece.hours
            line["end"] = max(line["end"], piece.end)
            line["description"] = description  # the newest name
    return lines


def invoices(session: Session, user: User, query: InvoicesQuery) -> dict[str, Any]:
    """``GET /api/v0/users/me/invoices`` (the legacy call): charge lines per instance or volume,
    UTC day, part (GPU time, disk, storage) and rate, and the operator's credit as payments,
    within the window (the last 24 hours by default)."""
    at = usage.now(session)
    until = query.until if query.until is not None else at
    since = query.since if query.since is not None else until - DAY
    since = min(since, until)
    out: list[dict[str, Any]] = []
    window_charges = 0.0
    lines = _lines(usage.intervals(session, since, until, [user.id]), since, until, at)
    for (kind, ident, day, part, rate), line in sorted(lines.items(), key=lambda kv: (kv[1]["end"], kv[0])):
        amount = line["hours"] * rate
        window_charges += amount
        if not query.charges:
            continue
        out.append({
            "id": f"{kind}-{ident}-{int(day)}-{part}-{len(out)}",
            "type": "charge", "timestamp": line["end"], "amount": r6(amount),
            "quantity": r6(line["hours"]), "rate": r6(rate), "description": line["description"],
            "instance_id": ident if kind == "instance" else None,
            "volume_id": ident if kind == "volume" else None, "day": day,
        })
    for entry in _credit_entries(session, user.id, since, until):
        out.append({
            "id": f"credit-{entry.id}", "type": "payment", "timestamp": entry.at,
            "amount": r6(-entry.amount), "quantity": 1.0, "rate": r6(-entry.amount),
            "description": _credit_words(entry), "instance_id": None, "volume_id": None, "day": None,
        })
    out.sort(key=lambda row: (row["timestamp"], row["id"]))
    return {"success": True, "invoices": out, "current": {
        "charges": r6(window_charges), "balance": r6(billing.balance(session, user.id, at)),
        "dph": r6(usage.accruing(session, user.id))}}


def _credit_entries(session: Session, user_id: int, since: float, until: float) -> list[CreditEntry]:
    return list(session.scalars(select(CreditEntry).where(
        CreditEntry.user_id == user_id, CreditEntry.at >= since, CreditEntry.at <= until)
        .order_by(CreditEntry.at, CreditEntry.id)))


def _credit_words(entry: CreditEntry) -> str:
    what = "credit from the operator" if entry.amount > 0 else "credit taken back by the operator"
    return f"{what}: {entry.note}" if entry.note else what


# -- invoices-v1 -------------------------------------------------------------------------------------
def _page(items: list[dict[str, Any]], query: BillingQuery) -> dict[str, Any]:
    page = items[query.offset:query.offset + query.limit]
    more = query.offset + query.limit < len(items)
    return {"success": True, "results": page, "count": len(page), "total": len(items),
            "next_token": str(query.offset + query.limit) if more else None}


def charges_page(session: Session, user: User, query: BillingQuery) -> dict[str, Any]:
    """``GET /api/v0/charges/``: one result per instance or volume and UTC day (``day`` is its
    midnight), with its parts (GPU time, disk, storage) as ``items``; the 7 days up to now by
    default."""
    at = usage.now(session)
    low, high = query.window(at - 7 * DAY, at)
    since, until = day_of(low), day_of(high) + DAY
    lines = _lines(usage.intervals(session, since, until, [user.id]), since, until, at)
    by_day: dict[tuple[str, int, float], list[dict[str, Any]]] = defaultdict(list)
    for line in lines.values():
        if query.admits(line["day"]) and (query.kinds is None or line["kind"] in query.kinds):
            by_day[(line["kind"], line["id"], line["day"])].append(line)
    results = []
    for (kind, ident, day), parts in by_day.items():
        parts.sort(key=lambda line: (line["part"] != "gpu", line["rate"]))
        end = int(min(max(line["end"] for line in parts), day + DAY - 1))
        items = [{
            "start": int(day), "end": end, "amount": r6(line["hours"] * line["rate"]),
            "type": line["part"], "source": None,
            "description": f"{line['description']}: {line['hours']:.4g} h at ${line['rate']:.4g}/h",
            "items": [], "metadata": {"quantity": r6(line["hours"]), "rate": r6(line["rate"])},
        } for line in parts]
        name = parts[-1]["description"].split(":", 1)[0]
        results.append({
            "start": int(day), "end": end, "amount": r6(sum(i["amount"] for i in items)), "type": kind,
            "source": f"{kind}-{ident}", "description": f"{name}: " + ", ".join(
                i["description"].split(": ", 1)[1] for i in items),
            "items": items, "metadata": {f"{kind}_id": ident},
        })
    results.sort(key=lambda r: (r["start"], r["source"]))
    if query.latest_first:  # newest day first, subjects still in order within a day
        results.sort(key=lambda r: -r["start"])
    return _page(results, query)


SERVICE = "credit"


def invoices_page(session: Session, user: User, query: BillingQuery) -> dict[str, Any]:
    """``GET /api/v1/invoices/``: the operator's credit entries (service ``credit``), filtered on
    ``when``; the 7 days up to now by default."""
    at = usage.now(session)
    since, until = query.window(at - 7 * DAY, at)
    entries = [e for e in _credit_entries(session, user.id, since, until) if query.admits(e.at)]
    if query.kinds is not None and SERVICE not in query.kinds:
        entries = []
    results = [{
        "start": int(e.at), "end": int(e.at), "amount": r6(-e.amount), "type": "credit",
        "source": "operator", "description": _credit_words(e), "items": [],
        "metadata": {"invoice_id": e.id, "service": SERVICE},
    } for e in entries]
    if query.latest_first:
        results.reverse()
    return _page(results, query)


# -- contracts ---------------------------------------------------------------------------------------
def fetch_contracts(session: Session, user: User, body: ContractsFetch) -> dict[str, Any]:
    """``POST /api/v0/contracts/fetch/``: the caller's instances (destroyed ones included) among
    ``contract_ids`` that carry ``label``."""
    stmt = select(Instance.id, Instance.label).where(Instance.owner_id == user.id)
    if body.label is not None:
        stmt = stmt.where(Instance.label == body.label)
    if body.contract_ids is not None:
        ids = [i for i in body.contract_ids if i <= MAX_ID]  # larger ids name no row
        if not ids:
            return {"success": True, "contracts": []}
        stmt = stmt.where(Instance.id.in_(ids))
    rows = session.execute(stmt.order_by(Instance.id).limit(10000)).all()
    return {"success": True, "contracts": [{"id": i, "label": label} for i, label in rows]}
