"""``/openapi.json`` as gpuyard answers: FastAPI's generated schema, with its default 422
validation answer replaced by our error model (a bad input is a 400 here, never a 422)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gpuyard.wire.common import ErrorBody

DROP_SCHEMAS = ("HTTPValidationError", "ValidationError")


def install_openapi(app: FastAPI) -> None:
    def schema() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description,
                          routes=app.routes)
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("ErrorBody", ErrorBody.model_json_schema())
        for path in doc.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if "422" in responses:
                    del responses["422"]
                    responses.setdefault("400", {
                        "description": "bad input: msg says which field and how to fix it",
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                    })
        for name in DROP_SCHEMAS:
            components.pop(name, None)
        app.openapi_schema = doc
        return doc

    app.openapi = schema  # type: ignore[method-assign]
