"""Template pages (placeholder list; the full pages replace it)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gpuyard.services.templates import search_templates
from gpuyard.web.deps import run
from gpuyard.web.pages import page

router = APIRouter(include_in_schema=False)


@router.get("/templates")
async def templates_page(request: Request):
    rows = await run(request, search_templates, {}, None, 200)
    return page(request, "templates_list.html", "Templates", section="templates", rows=rows)
