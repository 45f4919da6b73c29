"""Reading the Vast wire format: JSON bodies and JSON-encoded query arguments."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from gpuyard.errors import InvalidInput

JSON_QUERY_ARGS = ("select_filters", "select_cols", "order_by", "limit", "id")


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}``."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"the request body is not valid JSON ({exc}); send a JSON object"
        ) from None
    if not isinstance(body, dict):
        raise InvalidInput(f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def query_args(request: Request) -> dict[str, Any]:
    """Form-decoded query args with the JSON-valued ones decoded (VAST-WIRE §1)."""
    out: dict[str, Any] = {}
    for key, value in request.query_params.items():
        if key in JSON_QUERY_ARGS:
            try:
                out[key] = json.loads(value)
            except ValueError:
                if key == "select_cols" or key == "select_filters" or key == "order_by":
                    raise InvalidInput(
                        f"query argument {key} must be JSON, e.g. {key}="
                        + ('{"name":{"eq":"x"}}' if key == "select_filters" else '["*"]')
                    ) from None
                out[key] = value
        else:
            out[key] = value
    return out
