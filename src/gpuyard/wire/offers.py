"""Offer and volume-offer searches (VAST-WIRE §4.1, §4.2, §7).

A search body is one flat JSON object: filters (``{"num_gpus": {"eq": "1"}, …}``) plus a few
control keys (``order``, ``type``, ``limit``, ``allocated_storage`` …). :meth:`checked` turns it
into an :class:`OfferQuery`: normalized filters, the order, the limit and the storage, ready for
the offer service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gpuyard.errors import InvalidInput, QueryError
from gpuyard.query import (
    OFFER_FIELDS,
    VOLUME_FIELDS,
    FieldSet,
    normalize_limit,
    normalize_order,
    normalize_query,
)
from gpuyard.query.validate import parse_number, show
from gpuyard.wire.base import WireModel
from gpuyard.wire.types import bounded_list

#: Offer types the client sends; only "bid" prices differently.
TYPES = {"on-demand": False, "reserved": False, "bid": True}
OFFER_CONTROL = ("order", "type", "limit", "allocated_storage", "disable_bundling",
                 "target_reliability", "extra_ids")
VOLUME_CONTROL = ("order", "limit", "allocated_storage")
DEFAULT_ORDER = [("score", "desc")]
FILTERS_SCHEMA = {
    "additionalProperties": {
        "type": "object",
        "description": 'a filter: {"op": value} with op one of eq neq gt gte lt lte in notin',
    }
}


@dataclass(frozen=True)
class OfferQuery:
    """A checked offer (or volume offer) search."""

    query: dict[str, dict[str, Any]]
    order: list[tuple[str, str]]
    limit: int
    storage: float
    bid: bool = False
    largest_only: bool = False


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


def _flag(value: Any, key: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    raise InvalidInput(f"{key} must be true or false, got {show(value)}")


def _order(value: Any, fieldset: FieldSet) -> list[tuple[str, str]]:
    if value is None:
        return DEFAULT_ORDER
    if isinstance(value, list):
        bounded_list(value, "order", 20, '[["dph_total", "asc"]]')
    return normalize_order(value, fieldset)


class _Search(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=FILTERS_SCHEMA)

    order: Any = Field(None, description='sort: [["dph_total", "asc"], ["score", "desc"]]')
    limit: Any = Field(None, description="at most this many offers (a number or numeric string)")
    allocated_storage: Any = Field(None, description="disk to rent, in GB")

    def filters(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class OfferSearch(_Search):
    """``POST /api/v0/bundles/``: filters on the 53 offer fields plus control keys."""

    type: Any = Field(None, description='"on-demand" (default), "reserved" or "bid"')
    disable_bundling: Any = Field(None, description="only each machine's largest offer")
    target_reliability: Any = Field(None, description="accepted, no effect")
    extra_ids: Any = Field(None, description="accepted, no effect")

    def checked(self, *, default_limit: int, max_limit: int) -> OfferQuery:
        target = self.target_reliability
        if target is not None and (isinstance(target, bool) or not isinstance(target, int | float | str)
                                   or parse_number(str(target)) is None):
            raise InvalidInput(f"target_reliability must be a number, got {show(target)}")
        if self.extra_ids is not None:
            bounded_list(self.extra_ids, "extra_ids")
        return OfferQuery(
            query=normalize_query(self.filters(), OFFER_FIELDS),
            bid=is_bid(self.type),
            storage=allocated_gb(self.allocated_storage, 5.0),
            order=_order(self.order, OFFER_FIELDS),
            limit=normalize_limit(self.limit, default_limit, max_limit),
            largest_only=_flag(self.disable_bundling, "disable_bundling"),
        )


class VolumeSearch(_Search):
    """``POST /api/v0/volumes/search/``: filters on the volume offer fields plus control keys."""

    def checked(self, *, default_limit: int, max_limit: int) -> OfferQuery:
        return OfferQuery(
            query=normalize_query(self.filters(), VOLUME_FIELDS),
            storage=allocated_gb(self.allocated_storage, 1.0),
            order=_order(self.order, VOLUME_FIELDS),
            limit=normalize_limit(self.limit, default_limit, max_limit),
        )


class AsksSearch(WireModel):
    """``PUT /api/v0/search/asks/``: ``{"select_cols": ["*"], "q": {<a /bundles/ body>}}``."""

    what = "search/asks"
    unknown_hint = ' (put filters inside "q")'
    select_cols: list[str] | None = Field(None, max_length=200, description='["*"] or field names')
    q: OfferSearch | None = None


def search_body(value: Any) -> OfferSearch:
    """An offer search from a plain dict (``launch_instance``'s ``q``)."""
    if not isinstance(value, Mapping):
        raise InvalidInput('q must be an offer query object, e.g. {"num_gpus": {"eq": 1}, '
                           '"gpu_name": {"eq": "RTX 4090"}}')
    return OfferSearch.model_validate(dict(value))


# -- answers -------------------------------------------------------------------------------------
class OfferRow(BaseModel):
    """An offer: every filterable field (docs/offers.md gives units) plus machine details."""

    model_config = ConfigDict(extra="allow")
    id: int | None = None
    ask_contract_id: int | None = None
    bundle_id: int | None = None
    machine_id: int | None = None
    num_gpus: int | None = None
    gpu_name: str | None = None
    dph_total: float | None = None
    dph_base: float | None = None
    is_bid: bool | None = None
    hostname: str | None = None


class OfferList(BaseModel):
    success: bool
    offers: list[OfferRow]


class VolumeOfferRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    ask_contract_id: int
    machine_id: int
    disk_space: float
    storage_cost: float


class VolumeOfferList(BaseModel):
    success: bool
    offers: list[VolumeOfferRow]
