"""JSON schemas of the query language's dict form, generated from the field lists, for
``/openapi.json``: which fields a search accepts, their operators and value types (numbers may
come as numeric strings, as the official client sends them)."""

from __future__ import annotations

from typing import Any

from gpuyard.query import FieldSet, FieldType
from gpuyard.query.validate import MAX_LIST, MAX_TEXT_VALUE

BOOL_TEXT = r"^\s*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|0|1)\s*$"
MM_DD_YYYY = r"^(0[1-9]|1[0-2])/(0[1-9]|[12][0-9]|3[01])/[0-9]{4}$"
#: What the server reads as a number (query.validate.parse_number).
NUMBER_TEXT = {"type": "string", "maxLength": 100,
               "pattern": r"^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"}
VALUE: dict[FieldType, dict[str, Any]] = {
    FieldType.INT: {"anyOf": [{"type": "integer", "minimum": -(2**63) + 1, "maximum": 2**63 - 1},
                              NUMBER_TEXT]},
    FieldType.FLOAT: {"anyOf": [{"type": "number"}, NUMBER_TEXT]},
    FieldType.BOOL: {"anyOf": [{"type": "boolean"}, {"type": "number", "enum": [0, 1]},
                               {"type": "string", "pattern": BOOL_TEXT}]},
    FieldType.STR: {"anyOf": [{"type": "string", "maxLength": MAX_TEXT_VALUE},
                              {"type": "number", "description": "taken as its text"}]},
    FieldType.DATE: {"anyOf": [{"type": "number"}, NUMBER_TEXT,
                               {"type": "string", "pattern": MM_DD_YYYY}]},
}
ORDERING = ("gt", "gte", "lt", "lte")




def field_ops(kind: FieldType, *, null_in_lists: bool = False) -> dict[str, Any]:
    """``{"eq": …, "in": […], …}`` for one field of type ``kind``."""
    value = VALUE[kind]
    item = {"anyOf": [value, {"type": "null"}]} if null_in_lists else value
    items = MAX_LIST
    ops: dict[str, Any] = {
        "eq": {"anyOf": [value, {"type": "null"}]},
        "neq": {"anyOf": [value, {"type": "null"}]},
        "in": {"type": "array", "items": item, "maxItems": items},
        "notin": {"type": "array", "items": item, "maxItems": items},
    }
    if kind is not FieldType.BOOL:  # true/false fields are compared with eq/neq only
        ops.update({op: value for op in ORDERING})
    return {"type": "object", "properties": ops, "additionalProperties": False}


def ops_name(kind: FieldType, null_in_lists: bool = False) -> str:
    return f"{kind.value.capitalize()}Ops" + ("OrNull" if null_in_lists else "")


def ops_components() -> dict[str, dict[str, Any]]:
    """The operator schemas every filter schema refers to (``#/components/schemas/IntOps`` …)."""
    return {ops_name(kind, nul): field_ops(kind, null_in_lists=nul)
            for kind in FieldType for nul in (False, True)}


def filter_properties(fields: FieldSet, *, null_in_lists: bool = False) -> dict[str, Any]:
    """``{field: {"$ref": …Ops}}`` for every filter name of ``fields`` and its aliases."""
    props = {
        name: {"$ref": "#/components/schemas/" + ops_name(fields.fields[name].type, null_in_lists)}
        for name in fields.filter_names
    }
    for alias, target in fields.aliases.items():
        props.setdefault(alias, props[target])
    return props


def filter_schema(fields: FieldSet, *, null_in_lists: bool = False) -> dict[str, Any]:
    """The schema of a filter dict on ``fields`` (canonical names and aliases)."""
    return {"type": "object",
            "properties": filter_properties(fields, null_in_lists=null_in_lists),
            "additionalProperties": False,
            "description": f"{fields.name} filters: {{field: {{op: value}}}} (docs/query-language.md)"}


def order_schema(fields: FieldSet, *, instance_form: bool = False) -> dict[str, Any]:
    names = sorted(set(fields.fields) | set(fields.order_aliases))
    direction = {"type": "string", "enum": ["asc", "desc"]}
    if instance_form:
        entry: dict[str, Any] = {"type": "object", "properties": {"col": {"type": "string", "enum": names},
                                                                  "dir": direction},
                                 "required": ["col", "dir"], "additionalProperties": False}
    else:
        entry = {"type": "array", "prefixItems": [{"type": "string", "enum": names}, direction],
                 "items": False, "minItems": 2, "maxItems": 2}
    text = {"type": "string", "maxLength": 500, "description": 'the text form: "num_gpus-,dph"'}
    return {"anyOf": [{"type": "array", "items": entry, "maxItems": 20}, text]}
