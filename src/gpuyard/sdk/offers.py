"""Offer and volume methods of :class:`gpuyard.VastAI` (VAST-WIRE §4, §7)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gpuyard.query import OFFER_FIELDS, VOLUME_FIELDS, parse_order, parse_query

if TYPE_CHECKING:  # pragma: no cover
    from gpuyard.sdk.http import Transport

#: Seeded before a string query is parsed (so ``verified=any`` removes one), as the official SDK does.
OFFER_DEFAULTS: dict[str, dict] = {
    "verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True},
}
#: Added by the API layer for a dict query or no query at all.
OFFER_DICT_DEFAULTS: dict[str, dict] = {**OFFER_DEFAULTS, "rented": {"eq": False}}
VOLUME_DEFAULTS: dict[str, dict] = {
    "verified": {"eq": True}, "external": {"eq": False}, "disk_space": {"gte": 1},
}
VOLUME_TYPES = {"local": "local_volume", "network": "network_volume", "all": "all_volume"}


def offer_body(
    query: str | dict | None,
    type: str = "on-demand",
    order: str | list | None = "score-",
    limit: int | None = None,
    storage: float = 5.0,
    no_default: bool = False,
) -> dict[str, Any]:
    """The flat ``/bundles/`` body: filters plus ``order``, ``type``, ``limit``, ``allocated_storage``."""
    if isinstance(query, str):
        body = parse_query(query, OFFER_FIELDS, {} if no_default else OFFER_DEFAULTS)
    elif no_default:
        body = dict(query or {})
    else:
        body = {**OFFER_DICT_DEFAULTS, **(query or {})}
    body["order"] = parse_order(order, OFFER_FIELDS) if order is not None else [["score", "desc"]]
    body["type"] = "bid" if type in ("interruptible", "bid") else type
    if limit:
        body["limit"] = int(limit)
    body["allocated_storage"] = float(storage)
    return body


def _with_datacenter(rows: list[dict]) -> list[dict]:
    for row in rows:
        row.setdefault("datacenter", row.get("hosting_type") == 1)
    return rows


class OffersMixin:
    _http: Transport

    def search_offers(
        self,
        query: str | dict | None = None,
        type: str = "on-demand",
        order: str = "score-",
        limit: int | None = None,
        storage: float = 5.0,
        no_default: bool = False,
    ) -> list[dict]:
        """Offers (rentable GPU bundles) matching ``query``, e.g. ``"num_gpus=1 gpu_name=RTX_4090"``.

        ``type``: ``on-demand`` (default), ``bid`` (or ``interruptible``) or ``reserved``;
        ``order``: e.g. ``"dph_total"`` or ``"score-"``; ``storage``: GiB of disk to price in.
        A string query starts from verified, external=false, rentable; a dict query (or none)
        also gets rented=false; ``no_default=True`` adds nothing.
        """
        body = offer_body(query, type, order, limit, storage, no_default)
        return _with_datacenter(self._http.request("POST", "/api/v0/bundles/", body=body)["offers"])

    def search_offers_new(
        self,
        query: str | dict | None = None,
        type: str = "on-demand",
        order: str = "score-",
        limit: int | None = None,
        storage: float = 5.0,
        no_default: bool = False,
    ) -> list[dict]:
        """Like :meth:`search_offers`, through ``PUT /api/v0/search/asks/``."""
        body = {"select_cols": ["*"], "q": offer_body(query, type, order, limit, storage, no_default)}
        return _with_datacenter(self._http.request("PUT", "/api/v0/search/asks/", body=body)["offers"])

    # -- volumes ----------------------------------------------------------------------------

    def search_volumes(
        self,
        query: str | dict | None = None,
        order: str | list | None = None,
        limit: int | None = None,
        storage: float = 1.0,
        no_default: bool = False,
    ) -> list[dict]:
        """Volume offers (disk space to rent) matching ``query``, e.g. ``"disk_space>=100"``.

        Defaults verified, external=false, disk_space>=1; a field you filter on replaces its
        default (as in the official SDK); ``no_default=True`` adds nothing.
        """
        filters = parse_query(query, VOLUME_FIELDS) if isinstance(query, str) else dict(query or {})
        body = filters if no_default else {**VOLUME_DEFAULTS, **filters}
        body["order"] = parse_order(order, VOLUME_FIELDS) if order is not None else [["score", "desc"]]
        if limit:
            body["limit"] = int(limit)
        body["allocated_storage"] = float(storage)
        return self._http.request("POST", "/api/v0/volumes/search/", body=body)["offers"]

    def create_volume(self, id: int, size: float = 15, name: str | None = None) -> dict:
        """Rent a volume of ``size`` GB (truncated to whole GB) from volume offer ``id``."""
        body: dict[str, Any] = {"size": int(size), "id": int(id)}
        if name:
            body["name"] = name
        return self._http.request("PUT", "/api/v0/volumes/", body=body)

    def show_volumes(self, type: str = "all") -> list[dict]:
        """Your volumes: ``type`` is ``local``, ``network`` or ``all``."""
        params = {"owner": "me", "type": VOLUME_TYPES.get(type, "all_volume")}
        rows = self._http.request("GET", "/api/v0/volumes", params=params)["volumes"]
        return [_with_duration(row) for row in rows]

    def delete_volume(self, id: int) -> dict:
        """Delete a volume (instances using it must be destroyed first)."""
        return self._http.request("DELETE", "/api/v0/volumes/", params={"id": id}, body={})


def _with_duration(row: dict) -> dict:
    import time

    if isinstance(row.get("start_date"), int | float):
        row["duration"] = time.time() - row["start_date"]
    return row
