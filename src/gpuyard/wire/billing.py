"""Invoices, charges and usage on the wire (VAST-WIRE §17): the query arguments, checked, and the
answers. Amounts are in dollars, from the account's side: a charge is positive, credit coming in
is negative."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from gpuyard.errors import InvalidInput
from gpuyard.query.validate import show
from gpuyard.wire.base import WireModel
from gpuyard.wire.types import MAX_LIST, MAX_WIRE_ID, Text, to_number

#: Year 3000: later dates are typos.
MAX_EPOCH = 32503680000.0
DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_OFFSET = 10**9
USAGE_GROUPS = ("user", "template", "label", "machine")
#: Longest window the usage report covers (it answers per-day figures).
MAX_USAGE_DAYS = 400

CHARGE_TYPES = ("instance", "volume", "serverless")
DATE_OPS = ("gte", "gt", "lte", "lt", "eq")


def epoch(value: Any, name: str) -> float:
    """Epoch seconds (a number, numeric text, or a ``YYYY-MM-DD`` date meaning UTC midnight)."""
    if isinstance(value, str) and len(value.strip()) == 10 and value.strip()[4:5] == "-":
        try:
            number = datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise InvalidInput(f"{name} must be epoch seconds or a date such as 2026-01-31, not "
                               f"{show(value)}", "invalid_date") from None
    elif isinstance(value, bool):
        raise InvalidInput(f"{name} must be epoch seconds, not {show(value)}", "invalid_date")
    else:
        number = to_number(value, name, "epoch seconds or a date such as 2026-01-31")
    if not 0 <= number <= MAX_EPOCH:
        raise InvalidInput(f"{name} must be epoch seconds between 0 and {MAX_EPOCH:.0f} (the year "
                           f"3000), not {show(value)}", "invalid_date")
    return number


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise InvalidInput(f"{name} must be true or false, not {show(value)}")


def _offset(token: Any) -> int:
    if token in (None, ""):
        return 0
    text = str(token)
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_OFFSET:
        raise InvalidInput(f"after_token {show(token)} is not a token this server gave (use "
                           "next_token)", "invalid_token")
    return int(text)


def _limit(value: Any) -> int:
    if value is None:
        return DEFAULT_PAGE
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, float) and math.isfinite(number) and number.is_integer():
        number = int(number)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_PAGE:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_PAGE}, not {show(value)}")
    return number


# -- GET /api/v0/users/me/invoices -------------------------------------------------------------------
@dataclass(frozen=True)
class InvoicesQuery:
    """The legacy invoices call: a window (the last 24 hours by default) and whether charges
    are included (payments always are)."""

    since: float | None
    until: float | None
    charges: bool

    @classmethod
    def parse(cls, sdate: Any, edate: Any, inc_charges: Any) -> InvoicesQuery:
        since = None if sdate is None else epoch(sdate, "sdate")
        until = None if edate is None else epoch(edate, "edate")
        if since is not None and until is not None and until < since:
            raise InvalidInput(f"edate ({until:g}) is before sdate ({since:g}): the window must "
                               "end after it starts", "invalid_window")
        charges = True if inc_charges is None else _flag(inc_charges, "inc_charges")
        return cls(since, until, charges)


# -- GET /api/v1/invoices/ and /api/v0/charges/ ------------------------------------------------------
@dataclass(frozen=True)
class BillingQuery:
    """``select_filters`` on the date (``when`` for invoices, ``day`` for charges: epoch seconds,
    with gte gt lte lt eq) and the kind (``service`` for invoices, ``type`` for charges: in or
    eq), ``latest_first``, ``limit`` (1-100, default 20) and ``after_token``."""

    bounds: tuple[tuple[str, float], ...]
    kinds: tuple[str, ...] | None
    latest_first: bool
    limit: int
    offset: int

    @classmethod
    def parse(cls, filters: Any, *, date_field: str, kind_field: str, latest_first: Any = None,
              limit: Any = None, after_token: Any = None) -> BillingQuery:
        if not isinstance(filters, dict):  # null included: leave the argument out instead
            raise InvalidInput(f'select_filters must be a JSON object such as {{"{date_field}": '
                               '{"gte": 1761955200, "lte": 1762300800}}')
        unknown = sorted(str(k) for k in filters if k not in (date_field, kind_field))
        if unknown:
            raise InvalidInput(f"unknown select_filters field(s) {', '.join(unknown[:5])}: this call "
                               f"filters on {date_field} and {kind_field}")
        bounds: list[tuple[str, float]] = []
        date = filters.get(date_field)
        if date is not None:
            if not isinstance(date, dict) or not date or any(op not in DATE_OPS for op in date):
                raise InvalidInput(f"select_filters.{date_field} takes {', '.join(DATE_OPS)} with epoch "
                                   f'seconds, e.g. {{"gte": 1761955200, "lte": 1762300800}}, not '
                                   f"{show(date)}")
            bounds = [(op, epoch(value, f"select_filters.{date_field}.{op}")) for op, value in date.items()]
        kinds = None
        kind = filters.get(kind_field)
        if kind is not None:
            if not isinstance(kind, dict) or len(kind) != 1 or not set(kind) <= {"in", "eq"}:
                raise InvalidInput(f'select_filters.{kind_field} takes in (a list) or eq, e.g. '
                                   f'{{"in": ["instance", "volume"]}}, not {show(kind)}')
            op, values = next(iter(kind.items()))
            values = values if op == "in" else [values]
            if (not isinstance(values, list) or len(values) > 50
                    or not all(isinstance(v, str) and len(v) <= 100 for v in values)):
                raise InvalidInput(f"select_filters.{kind_field}.{op} takes "
                                   + ("a list of names" if op == "in" else "a name")
                                   + f", not {show(values)}")
            kinds = tuple(values)
        return cls(tuple(bounds), kinds, False if latest_first is None else
                   _flag(latest_first, "latest_first"), _limit(limit), _offset(after_token))

    def admits(self, t: float) -> bool:
        for op, value in self.bounds:
            if ((op == "gte" and t < value) or (op == "gt" and t <= value) or (op == "lte" and t > value)
                    or (op == "lt" and t >= value) or (op == "eq" and t != value)):
                return False
        return True

    def window(self, default_since: float, default_until: float) -> tuple[float, float]:
        """The smallest window holding every admitted time (defaults where a side is open)."""
        lows = [v for op, v in self.bounds if op in ("gte", "gt", "eq")]
        highs = [v for op, v in self.bounds if op in ("lte", "lt", "eq")]
        since = max(lows) if lows else default_since
        until = min(highs) if highs else default_until
        return since, max(since, until)


def select_filters_schema(date_field: str, kind_field: str) -> dict[str, Any]:
    """The JSON schema of a ``select_filters`` argument (for /openapi.json)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            # null counts as left out (the server keeps its default), as everywhere on the wire
            date_field: {"type": ["object", "null"], "additionalProperties": False, "minProperties": 1,
                         "properties": {op: {"type": "number", "minimum": 0, "maximum": MAX_EPOCH}
                                        for op in DATE_OPS}},
            kind_field: {"type": ["object", "null"], "additionalProperties": False, "minProperties": 1,
                         "maxProperties": 1,
                         "properties": {"in": {"type": "array", "maxItems": 50,
                                               "items": {"type": "string", "maxLength": 100}},
                                        "eq": {"type": "string", "maxLength": 100}}},
        },
    }


# -- GET /api/v0/usage/ ----------------------------------------------------------------------------
@dataclass(frozen=True)
class UsageQuery:
    by: str
    since: float | None
    until: float | None

    @classmethod
    def parse(cls, by: Any, since: Any, until: Any) -> UsageQuery:
        group = "template" if by is None else by
        if group not in USAGE_GROUPS:
            raise InvalidInput(f"by must be one of {', '.join(USAGE_GROUPS)}, not {show(by)}")
        start = None if since is None else epoch(since, "since")
        end = None if until is None else epoch(until, "until")
        if start is not None and end is not None:
            if end < start:
                raise InvalidInput(f"until ({end:g}) is before since ({start:g})", "invalid_window")
            if end - start > MAX_USAGE_DAYS * 86400:
                raise InvalidInput(f"the window is {(end - start) / 86400:.0f} days long; the limit "
                                   f"is {MAX_USAGE_DAYS} days", "invalid_window")
        return cls(group, start, end)


# -- answers ---------------------------------------------------------------------------------------
class InvoiceRow(BaseModel):
    """One line of the legacy invoices call: a charge (per instance or volume, per UTC day, per
    part and rate) or a payment (credit from the operator)."""

    id: str
    type: Literal["charge", "payment"]
    timestamp: float = Field(description="when the line's period ended (epoch seconds)")
    amount: float = Field(description="$; charges positive, credit negative")
    quantity: float = Field(description="hours (payments: 1)")
    rate: float = Field(description="$/hour")
    description: str
    instance_id: int | None = None
    volume_id: int | None = None
    day: float | None = Field(None, description="the UTC day of a charge (epoch seconds)")


class CurrentCharges(BaseModel):
    charges: float = Field(description="$ charged within the window")
    balance: float = Field(description="credit granted minus every charge so far")
    dph: float = Field(description="$/hour the account accrues now")


class Invoices(BaseModel):
    success: bool
    invoices: list[InvoiceRow]
    current: CurrentCharges


class BillingItem(BaseModel):
    start: int
    end: int | None
    amount: float
    type: str
    source: str | None
    description: str
    items: list[BillingItem]
    metadata: dict[str, Any]


class BillingPage(BaseModel):
    success: bool
    results: list[BillingItem]
    count: int
    total: int
    next_token: str | None


class UsageFigures(BaseModel):
    key: str
    gpu_hours: float
    disk_gb_hours: float
    gpu_cost: float
    disk_cost: float
    cost: float


class UsageDay(BaseModel):
    day: float = Field(description="UTC midnight (epoch seconds)")
    key: str
    gpu_hours: float
    cost: float


class UsageReport(BaseModel):
    success: bool
    by: str
    since: float
    until: float
    everyone: bool = Field(description="true for an administrator: every user's usage")
    rows: list[UsageFigures]
    days: list[UsageDay]
    total: UsageFigures


def _contract_ids(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise InvalidInput(f"contract_ids must be a list of at most {MAX_LIST} instance ids, not "
                           f"{show(value)}")
    ids = []
    for item in value:
        if isinstance(item, str) and item.isascii() and item.isdigit() and len(item) < 20:
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= MAX_WIRE_ID:
            raise InvalidInput(f"contract_ids holds {show(item)}, which is not an instance id")
        ids.append(item)
    return ids


class ContractsFetch(WireModel):
    """``POST /api/v0/contracts/fetch/`` (the official CLI's ``show invoices --instance_label``)."""

    what = "contracts fetch"
    label: Text(500) | None = None
    contract_ids: Annotated[list[int] | None, BeforeValidator(_contract_ids),
                            WithJsonSchema({"anyOf": [
                                {"type": "array", "maxItems": MAX_LIST,
                                 "items": {"type": "integer", "minimum": 1, "maximum": MAX_WIRE_ID}},
                                {"type": "null"}]})] = None


class Contract(BaseModel):
    id: int
    label: str | None


class Contracts(BaseModel):
    success: bool
    contracts: list[Contract]
