"""``/openapi.json`` as gpuyard answers: FastAPI's generated schema, completed.

* FastAPI's default 422 validation answer is replaced by our error model (bad input is a 400
  here, never a 422);
* the JSON-valued query arguments of the Vast wire (``select_filters``, ``select_cols``,
  ``order_by``; VAST-WIRE §1) are described as JSON content with their real schemas, and
  ``limit`` as an integer;
* the offer and volume search bodies list their filter fields (generated from the query
  language's field lists), so the schema says which filters exist and how they are typed.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gpuyard.query import OFFER_FIELDS, TEMPLATE_FIELDS, VOLUME_FIELDS
from gpuyard.query.fields import INSTANCE_FIELDS
from gpuyard.wire.billing import select_filters_schema
from gpuyard.wire.common import ErrorBody
from gpuyard.wire.filters import filter_properties, filter_schema, ops_components, order_schema
from gpuyard.wire.templates import ROW_FIELDS

DROP_SCHEMAS = ("HTTPValidationError", "ValidationError")
ERROR_400 = {
    "description": "bad input: msg says which field and how to fix it",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}
TEMPLATE_COLS = {"type": "array", "items": {"type": "string", "enum": ["*", *ROW_FIELDS]}, "maxItems": 60}
ANY_COLS = {"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 200}
#: (path, query argument) → the schema of its JSON value.
JSON_QUERY: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/v0/template", "select_filters"): filter_schema(TEMPLATE_FIELDS),
    ("/api/v0/template", "select_cols"): TEMPLATE_COLS,
    ("/api/v0/template", "order_by"): order_schema(TEMPLATE_FIELDS),
    **{(path, "select_filters"): filter_schema(INSTANCE_FIELDS, null_in_lists=True)
       for path in ("/api/v1/instances", "/api/v0/instances")},
    **{(path, "select_cols"): ANY_COLS for path in ("/api/v1/instances", "/api/v0/instances")},
    **{(path, "order_by"): order_schema(INSTANCE_FIELDS, instance_form=True)
       for path in ("/api/v1/instances", "/api/v0/instances")},
    ("/api/v1/invoices", "select_filters"): select_filters_schema("when", "service"),
    ("/api/v0/charges", "select_filters"): select_filters_schema("day", "type"),
}
LIMITS = {"/api/v0/template": 10000, "/api/v1/instances": 1000, "/api/v0/instances": 1000,
          "/api/v1/invoices": 100, "/api/v0/charges": 100}
SEARCH_BODIES = {"OfferSearch": OFFER_FIELDS, "VolumeSearch": VOLUME_FIELDS}


def _query_params(path: str, operation: dict[str, Any]) -> None:
    for param in operation.get("parameters", []):
        if param.get("in") != "query":
            continue
        schema = JSON_QUERY.get((path, param["name"]))
        if schema is not None:
            param.pop("schema", None)
            param["content"] = {"application/json": {"schema": schema}}
        elif param["name"] == "limit" and path in LIMITS:
            param["schema"] = {"type": "integer", "minimum": 1, "maximum": LIMITS[path]}


def install_openapi(app: FastAPI) -> None:
    def schema() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description,
                          routes=app.routes)
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("ErrorBody", ErrorBody.model_json_schema())
        components.update(ops_components())
        for name, fields in SEARCH_BODIES.items():
            if name in components:
                components[name]["properties"].update(filter_properties(fields))
                components[name]["additionalProperties"] = False
        for path, item in doc.get("paths", {}).items():
            for operation in item.values():
                _query_params(path, operation)
                responses = operation.get("responses", {})
                for code, answer in responses.items():
                    if code.startswith(("4", "5")) and "content" in answer:  # errors are JSON
                        answer["content"] = {"application/json": {
                            "schema": {"$ref": "#/components/schemas/ErrorBody"}}}
                if "422" in responses:
                    del responses["422"]
                    responses.setdefault("400", ERROR_400)
        for name in DROP_SCHEMAS:
            components.pop(name, None)
        app.openapi_schema = doc
        return doc

    app.openapi = schema  # type: ignore[method-assign]
