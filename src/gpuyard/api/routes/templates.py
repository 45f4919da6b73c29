"""Template endpoints (VAST-WIRE §3) plus the version history and hash lookup of our own."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gpuyard.api.deps import call
from gpuyard.api.wire import json_body, query_args
from gpuyard.services import templates as svc

router = APIRouter()


@router.post("/api/v0/template")
async def create_template(request: Request):
    body = await json_body(request)
    row, created = await call(request, svc.create_template, body)
    msg = (
        f"Template {row['id']} created, hash_id {row['hash_id']}"
        if created
        else f"You already have this exact template: id {row['id']}, hash_id {row['hash_id']}"
    )
    return {"success": True, "msg": msg, "template": row}


@router.get("/api/v0/template")
async def search_templates(request: Request):
    args = query_args(request)
    settings = request.app.state.settings
    rows = await call(
        request,
        svc.search_templates,
        args.get("select_filters"),
        args.get("order_by"),
        args.get("limit"),
        args.get("select_cols"),
        default_limit=settings.default_search_limit,
        max_limit=settings.max_search_limit,
    )
    return {"success": True, "templates": rows}


def _edit_answer(row: dict, changed: bool) -> dict:
    msg = (
        f"Template {row['id']} updated; its new hash_id is {row['hash_id']}"
        if changed
        else f"Nothing changed: template {row['id']} keeps hash_id {row['hash_id']}"
    )
    return {"success": True, "msg": msg, "template": row}


@router.put("/api/v0/template")
async def edit_template_by_hash(request: Request):
    body = await json_body(request)
    row, changed = await call(request, svc.edit_by_hash, body)
    return _edit_answer(row, changed)


@router.put("/api/v1/template")
async def edit_template_by_id(request: Request):
    body = await json_body(request)
    row, changed = await call(request, svc.edit_by_id, body)
    return _edit_answer(row, changed)


@router.delete("/api/v0/template")
async def delete_template(request: Request):
    body = await json_body(request)
    gone = await call(request, svc.delete_template, body)
    return {
        "success": True,
        "msg": f"Template {gone['id']} deleted. Its versions stay: hash {gone['hash_id']} "
        "still launches and instances made from it keep running.",
        "template_id": gone["id"],
        "hash_id": gone["hash_id"],
    }


@router.get("/api/v0/template/{template_id}/versions")
async def template_versions(request: Request, template_id: str):
    versions = await call(request, svc.list_versions, template_id)
    return {"success": True, "template_id": versions[0]["template_id"], "versions": versions}


@router.get("/api/v0/template/hash/{hash_id}")
async def template_by_hash(request: Request, hash_id: str):
    content = await call(request, lambda s, _user, h: svc.resolve_hash(s, h), hash_id)
    return {"success": True, "template": content}
