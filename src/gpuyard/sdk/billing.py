"""Account methods of :class:`gpuyard.VastAI`: invoices (VAST-WIRE §17) and usage (gpuyard's
own ``GET /api/v0/usage/``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from gpuyard.sdk.http import Transport


def epoch(value: Any, name: str) -> float | str | None:
    """Epoch seconds or a ``YYYY-MM-DD`` date (UTC) as the server takes them; a datetime is
    turned into epoch seconds."""
    if value is None or isinstance(value, int | float | str):
        return value
    stamp = getattr(value, "timestamp", None)
    if stamp is None:
        from gpuyard.sdk.errors import InvalidArgument

        raise InvalidArgument(f"{name} must be epoch seconds, a YYYY-MM-DD date or a datetime, "
                              f"not {value!r}")
    return float(stamp())


class BillingMixin:
    _http: Transport

    def show_invoices(self, start_date: Any = None, end_date: Any = None, only_charges: bool = False,
                      only_credits: bool = False) -> dict:
        """Charges and credit in a window (the 24 hours up to ``end_date`` or now), like the official
        SDK: ``{"invoices": [...], "current": {...}}``; ``only_charges`` / ``only_credits``
        keep one type of row."""
        body = self._http.request("GET", "/api/v0/users/me/invoices", params={
            "owner": "me", "sdate": epoch(start_date, "start_date"),
            "edate": epoch(end_date, "end_date"), "inc_charges": not only_credits})
        rows = body["invoices"]
        if only_charges:
            rows = [r for r in rows if r.get("type") == "charge"]
        elif only_credits:
            rows = [r for r in rows if r.get("type") == "payment"]
        return {"invoices": rows, "current": body["current"]}

    def usage(self, by: str = "template", since: Any = None, until: Any = None) -> dict:
        """GPU-hours, disk GB-hours and cost per ``by`` (user, template, label or machine) and
        per UTC day, from ``since`` (default: 30 days ago) to ``until`` (default: now);
        administrators get everyone's. Answers ``rows``, ``days``, ``total``."""
        return self._http.request("GET", "/api/v0/usage/", params={
            "by": by, "since": epoch(since, "since"), "until": epoch(until, "until")})
