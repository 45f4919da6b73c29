"""Rendering: the Jinja2 environment (autoescaping everywhere) and a page helper."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from gpuyard.web.session import csrf_token

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.autoescape = True  # every variable is escaped, whatever the file name
TEMPLATES.env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
TEMPLATES.env.filters["plural"] = lambda n, word, words=None: (
    f"{n} {word if n == 1 else (words or word + 's')}"
)
TEMPLATES.env.filters["when"] = lambda t: (
    time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t)) if isinstance(t, int | float) else "-"
)


def page(request: Request, name: str, title: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``templates/name`` inside the layout, with the user and the CSRF token."""
    return TEMPLATES.TemplateResponse(
        request,
        name,
        {"title": title, "csrf": csrf_token(request), "user": getattr(request.state, "user", None),
         **context},
        status_code=status_code,
    )
