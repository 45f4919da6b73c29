"""Template endpoints (VAST-WIRE §3) plus the version history and hash lookup of our own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from gpuyard.api.deps import AUTHENTICATED, call
from gpuyard.api.edge import JSONAnswer, json_arg
from gpuyard.services.catalog import templates as svc
from gpuyard.wire.templates import (
    TemplateAnswer,
    TemplateByHash,
    TemplateCreate,
    TemplateDelete,
    TemplateDeleted,
    TemplateEditByHash,
    TemplateEditById,
    TemplateList,
    TemplateSearch,
    TemplateVersions,
)
from gpuyard.wire.types import PathHash, PathId

router = APIRouter(tags=["templates"], **AUTHENTICATED)


@router.post("/api/v0/template", response_model=TemplateAnswer)
async def create_template(request: Request, body: TemplateCreate | None = None):
    """Create a template (a new id and hash_id), or get back your identical one."""
    row, created = await call(request, svc.create_template, body or TemplateCreate())
    msg = (
        f"Template {row['id']} created, hash_id {row['hash_id']}"
        if created
        else f"You already have this exact template: id {row['id']}, hash_id {row['hash_id']}"
    )
    return JSONAnswer({"success": True, "msg": msg, "template": row})


FILTERS_HELP = 'filters as JSON: {"use_ssh": {"eq": true}, "count_created": {"gt": 100}}'


@router.get("/api/v0/template", response_model=TemplateList)
async def search_templates(
    request: Request,
    select_filters: Annotated[str | None, Query(description=FILTERS_HELP)] = None,
    select_cols: Annotated[str | None, Query(description='columns as JSON, e.g. ["*"]')] = None,
    order_by: Annotated[str | None, Query(description='order as JSON: [["count_created", "desc"]]')] = None,
    limit: Annotated[str | None, Query(description="at most this many templates")] = None,
):
    """Your templates and every public one, filtered with the query language."""
    settings = request.app.state.settings
    search = TemplateSearch.parse(
        json_arg(select_filters, "select_filters", '{"name":{"eq":"x"}}'),
        json_arg(order_by, "order_by", '[["id","asc"]]'),
        limit,
        json_arg(select_cols, "select_cols", '["*"]'),
        default_limit=settings.default_search_limit,
        max_limit=settings.max_search_limit,
    )
    rows = await call(request, svc.search_templates_encoded, search, request.app.state.answers)
    return JSONAnswer({"success": True, "templates": rows})


def _edit_answer(row: dict, changed: bool) -> JSONAnswer:
    msg = (
        f"Template {row['id']} updated; its new hash_id is {row['hash_id']}"
        if changed
        else f"Nothing changed: template {row['id']} keeps hash_id {row['hash_id']}"
    )
    return JSONAnswer({"success": True, "msg": msg, "template": row})


@router.put("/api/v0/template", response_model=TemplateAnswer)
async def edit_template_by_hash(request: Request, body: TemplateEditByHash | None = None):
    """Edit a template named by hash_id: only the fields given change (a new hash, same id)."""
    edit = body or TemplateEditByHash.model_validate({})
    row, changed = await call(request, svc.edit_by_hash, edit)
    return _edit_answer(row, changed)


@router.put("/api/v1/template", response_model=TemplateAnswer)
async def edit_template_by_id(request: Request, body: TemplateEditById | None = None):
    """The official client's edit: id + hash_id and the full payload (a null keeps the value)."""
    edit = body or TemplateEditById.model_validate({})
    row, changed = await call(request, svc.edit_by_id, edit)
    return _edit_answer(row, changed)


@router.delete("/api/v0/template", response_model=TemplateDeleted)
async def delete_template(request: Request, body: TemplateDelete | None = None):
    """Delete by template_id or hash_id; versions stay launchable by hash."""
    gone = await call(request, svc.delete_template, body or TemplateDelete.model_validate({}))
    return JSONAnswer({
        "success": True,
        "msg": f"Template {gone['id']} deleted. Its versions stay: hash {gone['hash_id']} "
        "still launches and instances made from it keep running.",
        "template_id": gone["id"],
        "hash_id": gone["hash_id"],
    })


@router.get("/api/v0/template/{template_id:int}/versions", response_model=TemplateVersions)
async def template_versions(request: Request, template_id: Annotated[PathId("template versions"), Path()]):
    """Every version of a template you can see, newest first."""
    versions = await call(request, svc.list_versions, template_id)
    return JSONAnswer({"success": True, "template_id": versions[0]["template_id"], "versions": versions})


@router.get("/api/v0/template/hash/{hash_id}", response_model=TemplateByHash)
async def template_by_hash(request: Request, hash_id: Annotated[PathHash("template hash"), Path()]):
    """The exact content a hash names (anyone holding a hash may read and launch it)."""
    content = await call(request, lambda s, _user, h: svc.resolve_hash(s, h), hash_id)
    return JSONAnswer({"success": True, "template": content})
