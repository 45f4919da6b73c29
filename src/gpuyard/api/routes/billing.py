"""Invoices, charges and usage (VAST-WIRE §17), and gpuyard's own usage report.

* ``GET /api/v0/users/me/invoices`` — the legacy ``show invoices``;
* ``GET /api/v1/invoices/`` and ``GET /api/v0/charges/`` — ``show invoices-v1 -i`` / ``-c``;
* ``POST /api/v0/contracts/fetch/`` — ``show invoices --instance_label``;
* ``GET /api/v0/usage/`` — ``gpuyard usage`` and the console's Usage page.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from gpuyard.api.deps import AUTHENTICATED, call, call_read
from gpuyard.api.edge import JSONAnswer, json_arg
from gpuyard.services.ledger import invoices as svc
from gpuyard.wire.billing import (
    BillingPage,
    BillingQuery,
    Contracts,
    ContractsFetch,
    Invoices,
    InvoicesQuery,
    UsageQuery,
    UsageReport,
)

router = APIRouter(tags=["billing"], **AUTHENTICATED)

Filters = Annotated[str | None, Query(max_length=4000, description="filters as JSON (see the operation)")]
Token = Annotated[str | None, Query(max_length=40, description="next_token of the previous page")]
Limit = Annotated[str | None, Query(max_length=20, description="page size, 1 to 100 (default 20)")]
Flag = Annotated[str | None, Query(max_length=10, description="true or false")]


def _filters(text: str | None, example: str) -> object:
    """``select_filters`` decoded (left out: none; ``null`` stays null and is refused)."""
    return {} if text is None else json_arg(text, "select_filters", example)


SDATE = "window start, epoch seconds (default: 24 hours before edate)"


@router.get("/api/v0/users/me/invoices", response_model=Invoices)
async def show_invoices(
    request: Request,
    owner: Annotated[Literal["me"] | None, Query(description='"me"')] = None,
    sdate: Annotated[str | None, Query(max_length=40, description=SDATE)] = None,
    edate: Annotated[str | None, Query(max_length=40, description="window end, epoch seconds (default: now)")]
    = None,
    inc_charges: Flag = None,
):
    """Your charges (per instance or volume, UTC day, part and rate) and credit payments in a
    window, plus ``current`` (charges in the window, balance, $/hour now)."""
    query = InvoicesQuery.parse(sdate, edate, inc_charges)
    return JSONAnswer(await call(request, svc.invoices, query))


@router.get("/api/v1/invoices", response_model=BillingPage)
async def invoices_v1(
    request: Request,
    select_filters: Filters = None,
    latest_first: Flag = None,
    limit: Limit = None,
    after_token: Token = None,
):
    """Your invoices: the credit the operator granted (service ``credit``). Filters: ``when``
    (epoch seconds: gte gt lte lt eq) and ``service`` (in, eq); the last 7 days by default."""
    filters = _filters(select_filters, '{"when":{"gte":0}}')
    query = BillingQuery.parse(filters,
                               date_field="when", kind_field="service", latest_first=latest_first,
                               limit=limit, after_token=after_token)
    return JSONAnswer(await call(request, svc.invoices_page, query))


@router.get("/api/v0/charges", response_model=BillingPage)
async def charges_v1(
    request: Request,
    select_filters: Filters = None,
    latest_first: Flag = None,
    limit: Limit = None,
    after_token: Token = None,
    format: Annotated[Literal["table", "tree"] | None, Query(description="ignored: the client "
                                                                          "formats")] = None,
):
    """Your charges, one result per instance or volume and UTC day with its parts as ``items``.
    Filters: ``day`` (the day's UTC midnight, epoch seconds: gte gt lte lt eq) and ``type`` (in,
    eq: instance, volume, serverless); the last 7 days by default."""
    filters = _filters(select_filters, '{"day":{"gte":0}}')
    query = BillingQuery.parse(filters,
                               date_field="day", kind_field="type", latest_first=latest_first,
                               limit=limit, after_token=after_token)
    return JSONAnswer(await call(request, svc.charges_page, query))


@router.post("/api/v0/contracts/fetch", response_model=Contracts)
async def fetch_contracts(request: Request, body: ContractsFetch | None = None):
    """Your instances (destroyed ones too) among ``contract_ids`` that carry ``label``."""
    body = body or ContractsFetch()
    return JSONAnswer(await call_read(request, svc.fetch_contracts, body))


@router.get("/api/v0/usage", response_model=UsageReport)
async def usage_report(
    request: Request,
    by: Annotated[Literal["user", "template", "label", "machine"] | None,
                  Query(description="group by (default template)")] = None,
    since: Annotated[str | None, Query(max_length=40, description="epoch seconds or YYYY-MM-DD "
                                                                    "(UTC; default: 30 days ago)")] = None,
    until: Annotated[str | None, Query(max_length=40, description="epoch seconds or YYYY-MM-DD "
                                                                    "(default: now)")] = None,
):
    """GPU-hours, disk GB-hours and cost per group and per UTC day (administrators: everyone's;
    others: their own)."""
    query = UsageQuery.parse(by, since, until)
    return JSONAnswer(await call(request, svc.usage_report, query))
