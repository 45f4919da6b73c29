"""API keys and their permission documents (VAST-WIRE §15).

A permission document is Vast's JSON, ``{"api": {category: {} | {route_name: {"constraints":
{param: {op: value}}}}}}``. It is checked here, at the edge, against the permission table
(``gpuyard.services.accounts.permissions``): unknown categories, route names that do not exist or belong to
another category, parameters a route's constraints cannot name, unknown operators and values of
the wrong type are each a 400 that names them. What passes is kept in a normal form (the typed
models below) and stored as JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from gpuyard.errors import InvalidInput
from gpuyard.services.accounts import permissions as perms
from gpuyard.wire import json as wire_json
from gpuyard.wire.base import WireModel
from gpuyard.wire.types import MAX_WIRE_ID, Text, type_name

MAX_NAME = 200
MAX_KEY_PARAMS = 4096  # bytes of key_params as JSON
EXAMPLE = '{"api": {"misc": {}, "instance_read": {}}}'


def _fail(where: str, msg: str) -> InvalidInput:
    return InvalidInput(f"permissions: {where}{msg} (see docs/api-keys.md)", "invalid_permissions")


def _object(value: Any, where: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(where, f"{what} must be a JSON object, not {type_name(value)}")
    return value


def _bound(param: perms.Param, op: str, value: Any, where: str) -> Any:
    """One constraint value, checked for the parameter's kind."""
    if op == "in":
        if not isinstance(value, list) or not value:
            raise _fail(where, f"'in' takes a non-empty list of values, not {type_name(value)}")
        if len(value) > perms.MAX_IN:
            raise _fail(where, f"'in' has {len(value)} values; the limit is {perms.MAX_IN}")
        items = [_bound(param, "eq", item, where) for item in value]
        return sorted(set(items), key=lambda v: (isinstance(v, str), v))
    if param.kind == "text":
        if op in ("lte", "gte"):
            raise _fail(where, f"{param.name} is text: it takes eq or in, not {op}")
        if not isinstance(value, str):
            raise _fail(where, f"{param.name} is text: {op} takes a string, not {type_name(value)}")
        if len(value) > perms.MAX_TEXT_VALUE:
            raise _fail(where, f"a value is {len(value)} characters long; the limit is "
                               f"{perms.MAX_TEXT_VALUE}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"{param.name} is a number: {op} takes a number, not {type_name(value)}")
    if abs(value) > MAX_WIRE_ID:
        raise _fail(where, f"{value!r} is out of range (at most 2^63)")
    if param.kind == "id" and op in ("eq", "in"):
        if not float(value).is_integer():
            raise _fail(where, f"{param.name} is an id: {op} takes whole numbers, not {value!r}")
        return int(value)
    return value


def _constraints(rule: perms.Rule, value: Any, where: str) -> dict[str, dict[str, Any]]:
    constraints = _object(value, where, "constraints")
    if not rule.params and constraints:
        raise _fail(where, f"{rule.name} takes no constraints (it has no parameter to limit)")
    out: dict[str, dict[str, Any]] = {}
    for name, ops in constraints.items():
        param = rule.param(name)
        if param is None:
            can = ", ".join(p.name for p in rule.params)
            raise _fail(where, f"{rule.name} has no parameter {name!r} to constrain; it has: {can}")
        at = f"{where}{name}: "
        ops = _object(ops, at, "a parameter's constraint")
        if not ops:
            raise _fail(at, 'give at least one operator, e.g. {"eq": 1227}')
        unknown = sorted(set(map(str, ops)) - set(perms.OPS))
        if unknown:
            raise _fail(at, f"unknown operator(s) {', '.join(unknown)}; the operators are "
                            f"{', '.join(perms.OPS)}")
        out[name] = {op: _bound(param, op, ops[op], at) for op in perms.OPS if op in ops}
    return out


def check_document(value: Any) -> dict[str, Any]:
    """A permission document checked against the permission table, in normal form."""
    doc = _object(value, "", "the document")
    unknown = sorted(set(map(str, doc)) - {"api"})
    if unknown or "api" not in doc:
        what = f"unknown key(s) {', '.join(unknown)}" if unknown else "the key 'api' is missing"
        raise _fail("", f"{what}: a permission document is {{\"api\": {{category: ...}}}}, e.g. {EXAMPLE}")
    api = _object(doc["api"], "api: ", "the value of 'api'")
    bad = sorted(set(map(str, api)) - set(perms.CATEGORIES))
    if bad:
        raise _fail("", f"unknown categor{'y' if len(bad) == 1 else 'ies'} {', '.join(bad)}; the "
                        f"categories are {', '.join(perms.CATEGORIES)}")
    out: dict[str, Any] = {}
    for category in perms.CATEGORIES:
        if category not in api:
            continue
        grant = _object(api[category], f"{category}: ", "a category's value ({} or route names)")
        routes: dict[str, Any] = {}
        for name, entry in grant.items():
            rule = perms.BY_NAME.get(name)
            if rule is None:
                names = sorted(r.name for r in perms.RULES if r.category == category)
                raise _fail(f"{category}: ", f"unknown route name {name!r}; the routes of {category} "
                                             f"are {', '.join(names) or 'none yet'}")
            if rule.category != category:
                raise _fail(f"{category}: ", f"{name} belongs to the category {rule.category}, "
                                             f"not {category}")
            at = f"{category}.{name}: "
            entry = _object(entry, at, 'a route\'s value ({} or {"constraints": {...}})')
            extra = sorted(set(map(str, entry)) - {"constraints"})
            if extra:
                raise _fail(at, f"unknown key(s) {', '.join(extra)}; a route takes only 'constraints'")
            constraints = _constraints(rule, entry.get("constraints", {}), at)
            routes[name] = {"constraints": constraints} if constraints else {}
        out[category] = routes
    return {"api": out}


def _ops_schema(param: perms.Param) -> dict[str, Any]:
    if param.kind == "text":
        one: dict[str, Any] = {"type": "string", "maxLength": perms.MAX_TEXT_VALUE}
        props: dict[str, Any] = {"eq": one}
    else:
        one = {"type": "integer" if param.kind == "id" else "number",
               "minimum": -MAX_WIRE_ID, "maximum": MAX_WIRE_ID}
        number = {"type": "number", "minimum": -MAX_WIRE_ID, "maximum": MAX_WIRE_ID}
        props = {"eq": one, "lte": number, "gte": number}
    props["in"] = {"type": "array", "items": one, "minItems": 1, "maxItems": perms.MAX_IN}
    return {"type": "object", "properties": props, "additionalProperties": False, "minProperties": 1}


def document_schema() -> dict[str, Any]:
    """The JSON schema of a permission document, generated from the permission table."""
    categories: dict[str, Any] = {}
    for category in perms.CATEGORIES:
        routes = {}
        for rule in perms.RULES:
            if rule.category != category:
                continue
            constraints = {"type": "object", "additionalProperties": False,
                           "properties": {p.name: _ops_schema(p) for p in rule.params}}
            routes[rule.name] = {"type": "object", "additionalProperties": False,
                                 "properties": {"constraints": constraints}}
        categories[category] = {"type": "object", "additionalProperties": False, "properties": routes,
                                "description": perms.CATEGORIES[category]}
    return {"type": "object", "additionalProperties": False, "required": ["api"],
            "properties": {"api": {"type": "object", "additionalProperties": False,
                                   "properties": categories}},
            "description": f"Vast's permission document, e.g. {EXAMPLE}; none: a full key"}


class Constraint(BaseModel):
    """Limits on one request parameter (normal form: only the operators given)."""

    model_config = ConfigDict(populate_by_name=True)
    eq: int | float | str | None = None
    lte: float | None = None
    gte: float | None = None
    in_: list[int | float | str] | None = Field(None, alias="in")


class RouteGrant(BaseModel):
    constraints: dict[str, Constraint] = Field(default_factory=dict)


class PermissionDocument(BaseModel):
    """A checked permission document: category → {} (all of it) or route name → grant."""

    api: dict[str, dict[str, RouteGrant]]

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, data: Any) -> Any:
        return check_document(data)

    def stored(self) -> dict[str, Any]:
        """The normal form, as stored with the key and read back by the permission checks."""
        return check_document(self.model_dump(by_alias=True, exclude_none=True))


def _key_params(value: Any) -> Any:
    if value is None:
        return None
    size = len(wire_json.dumps(value))
    if size > MAX_KEY_PARAMS:
        raise InvalidInput(f"key_params is {size} bytes as JSON; the limit is {MAX_KEY_PARAMS}")
    return value


Permissions = Annotated[PermissionDocument | None, WithJsonSchema(
    {"anyOf": [document_schema(), {"type": "null"}]})]


class ApiKeyCreate(WireModel):
    """``POST /api/v0/auth/apikeys/``: ``{"name", "permissions"?, "key_params"?}``."""

    what = "create-api-key"
    unknown_word = "key"
    name: Text(MAX_NAME, description="a name for the key") | None = None
    permissions: Permissions = Field(None, description="what the key may call; none: a full key")
    key_params: Annotated[Any, BeforeValidator(_key_params), Field(
        description="stored and shown with the key (gpuyard does not substitute wildcards)")] = None


class ApiKeyRow(BaseModel):
    id: int
    name: str | None
    created_at: float
    last_used: float | None = Field(description="when it was last used (to the minute or so)")
    permissions: dict[str, Any] | None = Field(description="its permission document; null: a full key")
    summary: str = Field(description="what it may call, in words")
    key_params: Any = None
    revoked_at: float | None = None
    current: bool = Field(description="whether it is the key this request came with")


class ApiKeyCreated(BaseModel):
    success: bool
    id: int
    key: str = Field(description="the key itself: shown only in this answer")
    name: str | None
    permissions: dict[str, Any] | None
    summary: str
    key_params: Any = None
    created_at: float
    msg: str


class ApiKeyList(BaseModel):
    success: bool
    apikeys: list[ApiKeyRow]


class ApiKeyShown(BaseModel):
    success: bool
    apikey: ApiKeyRow


class ApiKeyReset(BaseModel):
    success: bool
    new_api_key: str = Field(description="the new key: shown only in this answer")
    msg: str

