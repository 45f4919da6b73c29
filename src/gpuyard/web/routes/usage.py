"""Usage: GPU-hours and cost per day as stacked bar charts (SVG drawn on the server), the usage
table, and the account's balance and quotas (docs/console.md, "Usage"). The figures are the
usage report's (gpuyard.services.ledger.invoices), the same as ``GET /api/v0/usage/`` and ``gpuyard
usage``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gpuyard.errors import InvalidInput
from gpuyard.services.ledger import billing, usage
from gpuyard.services.ledger.invoices import usage_report
from gpuyard.services.ledger.usage import DAY, day_of
from gpuyard.web.charts import stacked_bars
from gpuyard.web.deps import run
from gpuyard.web.pages import page
from gpuyard.wire.billing import USAGE_GROUPS, UsageQuery

router = APIRouter(include_in_schema=False)

WINDOWS = (7, 30, 90)
DEFAULT_WINDOW = 30


def _load(session, user, days_arg: str | None, by_arg: str | None) -> dict[str, Any]:
    days = _choice(days_arg, WINDOWS, DEFAULT_WINDOW, "days")
    by = _choice(by_arg, USAGE_GROUPS, "template", "by")
    at = usage.now(session)
    first = day_of(at) - (days - 1) * DAY
    report = usage_report(session, user, UsageQuery(by, first, at))
    axis = [first + i * DAY for i in range(days)]
    gpu = {(d["day"], d["key"]): d["gpu_hours"] for d in report["days"]}
    cost = {(d["day"], d["key"]): d["cost"] for d in report["days"]}
    return {
        "window": days, "group": by,
        "report": report,
        "account": billing.account_row(session, user),
        "charts": [
            stacked_bars("chart-gpu-hours", "GPU-hours per day", "GPU-hours", axis, gpu,
                         lambda v: f"{v:.1f}" if v >= 10 or v == 0 else f"{v:.2f}"),
            stacked_bars("chart-cost", "Cost per day", "$", axis, cost,
                         lambda v: f"{v:.2f}" if v >= 1 or v == 0 else f"{v:.3f}"),
        ],
    }


def _choice(value: str | None, allowed: tuple, default: Any, name: str) -> Any:
    if value in (None, ""):
        return default
    for option in allowed:
        if str(option) == value:
            return option
    raise InvalidInput(f"{name} must be one of {', '.join(map(str, allowed))}, not {value!r}")


@router.get("/usage")
async def usage_page(request: Request, days: str | None = None, by: str | None = None):
    data = await run(request, _load, days, by)  # a bad value is a 400 page, once signed in
    return page(request, "usage.html", "Usage", section="usage", windows=WINDOWS,
                groups=USAGE_GROUPS, **data)
