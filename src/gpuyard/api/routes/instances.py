"""Instance endpoints (VAST-WIRE §6): rent, list, act, logs, update from a template.

Every body is checked by its wire model before any transaction; every change runs in one
transaction (the intent); then the reconciler brings the runtime in line for what the change
touched, before the answer goes out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from gpuyard.api.deps import AUTHENTICATED, PUBLIC, call, call_public, call_read, caller
from gpuyard.api.edge import JSONAnswer, json_arg
from gpuyard.errors import GpuyardError
from gpuyard.services.rentals import instance_logs as logs
from gpuyard.services.rentals import instance_rows as rows
from gpuyard.services.rentals import instances as svc
from gpuyard.services.rentals.settle import check_image, rent_offer, settle, settle_launch
from gpuyard.wire.common import Done, EmptyBody
from gpuyard.wire.instances import (
    DEFAULT_PAGE,
    MAX_PAGE,
    BidChange,
    BulkCreated,
    BulkDestroy,
    BulkLaunch,
    BulkState,
    Created,
    DryRun,
    InstanceEdit,
    InstanceFilters,
    InstanceList,
    InstanceListQuery,
    InstanceListV0,
    InstanceShow,
    InstanceUpdate,
    LaunchRequest,
    LaunchSearch,
    LogsReady,
    LogsRequest,
    Updated,
)
from gpuyard.wire.types import PathId

router = APIRouter(tags=["instances"], **AUTHENTICATED)
public = APIRouter(tags=["instances"], **PUBLIC)

InstanceId = Annotated[PathId("instance id"), Path(description="an instance id")]
OfferId = Annotated[PathId("create instance (the offer id from search offers)"),
                    Path(description="an offer id from search offers")]
LIST_HELP = {
    "select_filters": 'filters as JSON: {"actual_status": {"in": ["running"]}, "label": {"eq": "x"}}',
    "order_by": 'order as JSON: [{"col": "start_date", "dir": "desc"}]',
    "select_cols": 'columns as JSON: ["id", "actual_status"] (default: every field)',
}


async def _settle(request: Request, outcome: svc.Outcome) -> None:
    """Bring the runtime in line for what the change touched before answering (preempted bids
    stop now, not at the next sweep)."""
    await settle(request.app.state.reconciler, outcome)


def _runtime(request: Request) -> str:
    return request.app.state.settings.runtime


@router.put("/api/v0/asks/{ask_id:int}", response_model=Created | DryRun)
async def create_instance(request: Request, ask_id: OfferId, body: LaunchRequest | None = None):
    """Rent an offer with an image or a template (by hash) plus overrides (docs/merge-rules.md)."""
    body = body or LaunchRequest()
    launches = request.app.state.metrics.launches

    def run(fn: Any, *args: Any, write: bool, then: Any = None, **kwargs: Any) -> Any:
        if write:
            return call(request, fn, *args, then=then, **kwargs)
        return call_read(request, fn, *args, **kwargs)

    try:
        outcome = await rent_offer(run, request.app.state.reconciler, body, ask_id, _runtime(request))
    except GpuyardError:
        launches.labels("refused").inc()
        raise
    if outcome.launch is not None:
        return JSONAnswer({"success": True, "dry_run": True, "launch": outcome.launch,
                           "msg": "dry run: nothing was rented"})
    try:
        await settle_launch(request.app.state.sessions, request.app.state.reconciler, outcome)
    except GpuyardError:
        launches.labels("refused").inc()
        raise
    launches.labels("created").inc()
    return JSONAnswer({"success": True, "new_contract": outcome.instance_id, "msg": outcome.msg})


@router.post("/api/v0/asks/bulk", response_model=BulkCreated)
async def create_instances(request: Request, body: BulkLaunch | None = None):
    """Rent several offers (``ids``) with one launch; each offer that fails is reported."""
    await caller(request)  # a wrong key is a 401 before any work
    body = body or BulkLaunch.model_validate({})
    merged, targets = await call_read(request, svc.prepare_rental, body, list(body.ids),
                                      _runtime(request))
    made: list[int] = []
    errors: list[dict[str, Any]] = []
    for ask_id in body.ids:
        try:
            await check_image(request.app.state.reconciler, targets.get(ask_id), merged)
            outcome = await call(request, svc.create_instance, ask_id, body, merged,
                                 runtime=_runtime(request))
        except GpuyardError as exc:
            if exc.status in (401, 403) and exc.code not in ("quota_exceeded", "no_credit"):
                raise  # the key stopped working: no point going on
            errors.append({"id": ask_id, "error": exc.code, "msg": exc.msg})  # this offer only
            continue
        made.append(outcome.instance_id)  # type: ignore[arg-type]
        await _settle(request, outcome)
    request.app.state.metrics.launches.labels("created").inc(len(made))
    request.app.state.metrics.launches.labels("refused").inc(len(errors))
    return JSONAnswer({"success": bool(made), "new_contracts": made, "errors": errors,
                       "msg": f"{len(made)} instance(s) created, {len(errors)} failed"})


def _list_query(select_filters: str | None, order_by: str | None, limit: str | None,
                after_token: str | None, select_cols: str | None, default_limit: int) -> InstanceListQuery:
    return InstanceListQuery.parse(
        json_arg(select_filters, "select_filters", '{"actual_status":{"eq":"running"}}'),
        json_arg(order_by, "order_by", '[{"col":"id","dir":"asc"}]'),
        limit,
        after_token,
        json_arg(select_cols, "select_cols", '["*"]'),
        default_limit=default_limit,
    )


@router.get("/api/v1/instances", response_model=InstanceList)
async def list_instances(
    request: Request,
    select_filters: Annotated[str | None, Query(description=LIST_HELP["select_filters"])] = None,
    order_by: Annotated[str | None, Query(description=LIST_HELP["order_by"])] = None,
    limit: Annotated[str | None, Query(description="page size, 1 to 1000 (default 25)")] = None,
    after_token: Annotated[str | None, Query(max_length=40, description="next_token of the previous page")]
    = None,
    select_cols: Annotated[str | None, Query(description=LIST_HELP["select_cols"])] = None,
):
    """Your instances, filtered, sorted and paged."""
    q = _list_query(select_filters, order_by, limit, after_token, select_cols, DEFAULT_PAGE)
    return JSONAnswer(await call(request, rows.list_instances, q))


@router.get("/api/v0/instances", response_model=InstanceListV0)
async def list_instances_v0(
    request: Request,
    select_filters: Annotated[str | None, Query(description=LIST_HELP["select_filters"])] = None,
    order_by: Annotated[str | None, Query(description=LIST_HELP["order_by"])] = None,
    limit: Annotated[str | None, Query(description="at most this many (default 1000)")] = None,
    after_token: Annotated[str | None, Query(max_length=40)] = None,
    select_cols: Annotated[str | None, Query(description=LIST_HELP["select_cols"])] = None,
    owner: Annotated[Literal["me"] | None, Query(description='"me": your own')] = None,
):
    """Your instances (the older list call: every one, no paging)."""
    q = _list_query(select_filters, order_by, limit, after_token, select_cols, MAX_PAGE)
    answer = await call(request, rows.list_instances, q)
    return JSONAnswer({"success": True, "instances": answer["instances"]})


@router.get("/api/v0/instances/filters", response_model=InstanceFilters)
async def instance_filters(request: Request):
    """The (status, verification, GPU) combinations of your instances."""
    return JSONAnswer({"success": True, "filters": await call(request, rows.filter_values)})


@router.get("/api/v0/instances/{instance_id:int}", response_model=InstanceShow)
async def show_instance(
    request: Request, instance_id: InstanceId,
    owner: Annotated[Literal["me"] | None, Query(description='"me": your own')] = None,
):
    """One of your instances (``instances`` is null when it is not yours or does not exist)."""
    row = await call(request, rows.get_instance, instance_id)
    return JSONAnswer({"success": row is not None, "instances": row})


def _answer(outcome: svc.Outcome) -> JSONAnswer:
    return JSONAnswer({"success": True, "msg": outcome.msg})


@router.put("/api/v0/instances/{instance_id:int}", response_model=Done)
async def edit_instance(request: Request, instance_id: InstanceId, body: InstanceEdit | None = None):
    """Start or stop (``{"state": "running"|"stopped"}``) and/or label (``{"label": …}``)."""
    outcome = await call(request, svc.edit, instance_id, body or InstanceEdit.model_validate({}))
    await _settle(request, outcome)
    return _answer(outcome)


@router.put("/api/v0/instances", response_model=Done)
async def edit_instances(request: Request, body: BulkState | None = None):
    """Start or stop several instances: ``{"state": …, "ids": […]}``."""
    outcome = await call(request, svc.set_state_bulk, body or BulkState.model_validate({}))
    await _settle(request, outcome)
    return _answer(outcome)


@router.put("/api/v0/instances/reboot/{instance_id:int}", response_model=Done)
async def reboot_instance(request: Request, instance_id: InstanceId, body: EmptyBody | None = None):
    """Restart the instance's container."""
    outcome = await call(request, svc.reboot, instance_id)
    await _settle(request, outcome)
    return _answer(outcome)


@router.put("/api/v0/instances/recycle/{instance_id:int}", response_model=Done)
async def recycle_instance(request: Request, instance_id: InstanceId, body: EmptyBody | None = None):
    """Recreate the instance from its launch configuration."""
    outcome = await call(request, svc.update_from_template, instance_id, InstanceUpdate())
    await _settle(request, outcome)
    return _answer(outcome)


@router.delete("/api/v0/instances/{instance_id:int}", response_model=Done)
async def destroy_instance(request: Request, instance_id: InstanceId, body: EmptyBody | None = None):
    """Destroy the instance (its volume stays)."""
    outcome = await call(request, svc.destroy, [instance_id])
    await _settle(request, outcome)
    return _answer(outcome)


@router.delete("/api/v0/instances", response_model=Done)
async def destroy_instances(request: Request, body: BulkDestroy | None = None):
    """Destroy several instances: ``{"instance_ids": […]}``."""
    outcome = await call(request, svc.destroy_bulk, body or BulkDestroy.model_validate({}))
    await _settle(request, outcome)
    return _answer(outcome)


@router.put("/api/v0/instances/bid_price/{instance_id:int}", response_model=Done)
async def change_bid(request: Request, instance_id: InstanceId, body: BidChange | None = None):
    """Change an interruptible instance's bid (``{"price": $/hour}``)."""
    outcome = await call(request, svc.change_bid, instance_id, body or BidChange.model_validate({}))
    await _settle(request, outcome)
    return _answer(outcome)


@router.put("/api/v0/instances/update_template/{instance_id:int}", response_model=Updated)
async def update_instance(request: Request, instance_id: InstanceId, body: InstanceUpdate | None = None):
    """Re-merge the instance's launch from a template and/or values; it restarts with them."""
    outcome = await call(request, svc.update_from_template, instance_id, body or InstanceUpdate())
    await _settle(request, outcome)
    row = await call(request, rows.get_instance, instance_id)
    return JSONAnswer({"success": True, "updated_instance": row, "msg": outcome.msg})


# -- logs (VAST-WIRE §6.6) ---------------------------------------------------------------------
@router.put("/api/v0/instances/request_logs/{instance_id:int}", response_model=LogsReady)
async def request_logs(request: Request, instance_id: InstanceId, body: LogsRequest | None = None):
    """Snapshot the instance's logs; fetch them (no key needed, for 10 minutes) at result_url."""
    body = body or LogsRequest()
    target = await call(request, logs.log_target, instance_id, body.daemon)
    lines = await run_in_threadpool(logs.read_lines, request.app.state.reconciler, target)
    text = logs.pick(lines, body.filter, body.tail)
    token = await call(request, logs.store_logs, target["id"], text)
    url = str(request.base_url).rstrip("/") + f"/api/v0/instances/logs/{token}"
    return JSONAnswer({"success": True, "result_url": url, "msg": "logs are ready at result_url"})


@public.get("/api/v0/instances/logs/{token}", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}}, "description": "the log text"}})
async def fetch_logs(request: Request, token: Annotated[str, Path(max_length=64)]):
    """The text of a logs snapshot (no Authorization needed: the token is the capability)."""
    text = await call_public(request, logs.fetch_logs, token)
    return PlainTextResponse(text)


@router.put("/api/v0/launch_instance", response_model=Created)
async def launch_instance(request: Request, body: LaunchSearch | None = None):
    """Search offers with ``q`` and rent the first that takes the launch."""
    body = body or LaunchSearch.model_validate({})
    settings = request.app.state.settings
    search = body.search.checked(default_limit=settings.default_search_limit,
                                 max_limit=settings.max_search_limit)
    merged = await call_read(request, svc.prepare_launch, body)
    outcome = await call(request, svc.launch_instance, body, search, merged, runtime=_runtime(request))
    await _settle(request, outcome)
    return JSONAnswer({"success": True, "new_contract": outcome.instance_id, "msg": outcome.msg})
