"""Instance endpoints (VAST-WIRE §6): rent, list, act, logs, update from a template.

Every change runs in one transaction (the intent); then the reconciler brings the runtime in
line for the machines it touched, before the answer goes out.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from gpuyard.api.deps import call, call_public
from gpuyard.api.wire import json_body, query_args
from gpuyard.errors import GpuyardError, InvalidInput
from gpuyard.services import instance_logs as logs
from gpuyard.services import instance_rows as rows
from gpuyard.services import instances as svc
from gpuyard.services.settle import settle, undo_if_failed_fast

router = APIRouter()


async def _settle(request: Request, outcome: svc.Outcome) -> None:
    """Bring the runtime in line for what the change touched before answering (preempted bids
    stop now, not at the next sweep)."""
    await settle(request.app.state.reconciler, outcome)


@router.put("/api/v0/asks/{ask_id}")
async def create_instance(request: Request, ask_id: str):
    body = await json_body(request)
    runtime = request.app.state.settings.runtime
    outcome = await call(request, svc.create_instance, ask_id, body, runtime=runtime)
    if outcome.launch is not None:
        return {"success": True, "dry_run": True, "launch": outcome.launch,
                "msg": "dry run: nothing was rented"}
    await _settle(request, outcome)
    user_id = await call(request, lambda _s, user: user.id)
    await undo_if_failed_fast(request.app.state.sessions, request.app.state.reconciler, user_id,
                              outcome.instance_id)
    return {"success": True, "new_contract": outcome.instance_id, "msg": outcome.msg}


@router.post("/api/v0/asks/bulk")
async def create_instances(request: Request):
    body = await json_body(request)
    ids = body.pop("ids", None)
    if not isinstance(ids, list) or not ids:
        raise InvalidInput("ids must be a non-empty list of offer ids, e.g. [12, 13]")
    runtime = request.app.state.settings.runtime
    made: list[int] = []
    errors: list[dict[str, Any]] = []
    for ask_id in ids:
        try:
            outcome = await call(request, svc.create_instance, ask_id, dict(body), runtime=runtime)
        except GpuyardError as exc:
            if exc.code in ("invalid_input", "invalid_env", "invalid_query"):
                raise  # the body itself is wrong: it is wrong for every offer
            errors.append({"id": ask_id, "error": exc.code, "msg": exc.msg})  # this offer only
            continue
        made.append(outcome.instance_id)  # type: ignore[arg-type]
        await _settle(request, outcome)
    return {"success": bool(made), "new_contracts": made, "errors": errors,
            "msg": f"{len(made)} instance(s) created, {len(errors)} failed"}


@router.get("/api/v1/instances")
async def list_instances(request: Request):
    return await call(request, rows.list_instances, query_args(request))


@router.get("/api/v0/instances")
async def list_instances_v0(request: Request):
    args = query_args(request)
    args.setdefault("limit", rows.MAX_PAGE)
    answer = await call(request, rows.list_instances, args)
    return {"success": True, "instances": answer["instances"]}


@router.get("/api/v0/instances/filters")
async def instance_filters(request: Request):
    return {"success": True, "filters": await call(request, rows.filter_values)}


@router.get("/api/v0/instances/{instance_id}")
async def show_instance(request: Request, instance_id: str):
    row = await call(request, rows.get_instance, instance_id)
    return {"success": row is not None, "instances": row}


def _answer(outcome: svc.Outcome) -> dict[str, Any]:
    return {"success": True, "msg": outcome.msg}


@router.put("/api/v0/instances/{instance_id}")
async def edit_instance(request: Request, instance_id: str):
    body = await json_body(request)
    outcome = await call(request, svc.edit, instance_id, body)
    await _settle(request, outcome)
    return _answer(outcome)


@router.put("/api/v0/instances")
async def edit_instances(request: Request):
    body = await json_body(request)
    outcome = await call(request, svc.set_state_bulk, body)
    await _settle(request, outcome)
    return _answer(outcome)


@router.put("/api/v0/instances/reboot/{instance_id}")
async def reboot_instance(request: Request, instance_id: str):
    outcome = await call(request, svc.reboot, instance_id)
    await _settle(request, outcome)
    return _answer(outcome)


@router.put("/api/v0/instances/recycle/{instance_id}")
async def recycle_instance(request: Request, instance_id: str):
    outcome = await call(request, svc.update_from_template, instance_id, {})
    await _settle(request, outcome)
    return _answer(outcome)


@router.delete("/api/v0/instances/{instance_id}")
async def destroy_instance(request: Request, instance_id: str):
    outcome = await call(request, svc.destroy, [instance_id])
    await _settle(request, outcome)
    return _answer(outcome)


@router.delete("/api/v0/instances")
async def destroy_instances(request: Request):
    body = await json_body(request)
    outcome = await call(request, svc.destroy_bulk, body)
    await _settle(request, outcome)
    return _answer(outcome)


@router.put("/api/v0/instances/bid_price/{instance_id}")
async def change_bid(request: Request, instance_id: str):
    body = await json_body(request)
    outcome = await call(request, svc.change_bid, instance_id, body)
    await _settle(request, outcome)
    return _answer(outcome)


@router.put("/api/v0/instances/update_template/{instance_id}")
async def update_instance(request: Request, instance_id: str):
    body = await json_body(request)
    outcome = await call(request, svc.update_from_template, instance_id, body)
    await _settle(request, outcome)
    row = await call(request, rows.get_instance, instance_id)
    return {"success": True, "updated_instance": row, "msg": outcome.msg}


# -- logs (VAST-WIRE §6.6) ---------------------------------------------------------------------
@router.put("/api/v0/instances/request_logs/{instance_id}")
async def request_logs(request: Request, instance_id: str):
    body = await json_body(request)
    tail = logs.parse_tail(body.get("tail"))
    needle = body.get("filter")
    if needle is not None and not isinstance(needle, str):
        raise InvalidInput("filter must be a string: only lines containing it are returned")
    daemon = str(body.get("daemon_logs", "")).lower() in ("true", "1")
    target = await call(request, logs.log_target, instance_id, daemon)
    lines = await run_in_threadpool(logs.read_lines, request.app.state.reconciler, target)
    text = logs.pick(lines, needle, tail)
    token = await call(request, logs.store_logs, target["id"], text)
    url = str(request.base_url).rstrip("/") + f"/api/v0/instances/logs/{token}"
    return {"success": True, "result_url": url, "msg": "logs are ready at result_url"}


@router.get("/api/v0/instances/logs/{token}")
async def fetch_logs(request: Request, token: str):
    text = await call_public(request, logs.fetch_logs, token)
    return PlainTextResponse(text)


@router.put("/api/v0/launch_instance")
async def launch_instance(request: Request):
    body = await json_body(request)
    runtime = request.app.state.settings.runtime
    outcome = await call(request, svc.launch_instance, body, runtime=runtime)
    await _settle(request, outcome)
    return {"success": True, "new_contract": outcome.instance_id, "msg": outcome.msg}
