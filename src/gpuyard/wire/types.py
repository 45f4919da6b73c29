"""Field types of the wire, with the Vast quirks accepted exactly as VAST-WIRE.md describes them.

Each type is an ``Annotated`` pydantic type whose before-validator turns what the official
client really sends (numbers as strings, ``""`` for "none") into one typed value, and refuses
anything else with an :class:`~gpuyard.errors.InvalidInput` whose message names the field and
says how to write it. The annotation itself is what ``/openapi.json`` shows, so it lists every
form that is accepted (e.g. ``number | string`` for a price).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, WithJsonSchema

from gpuyard.errors import InvalidInput, NotFound
from gpuyard.query.validate import parse_number, show
from gpuyard.services.identifiers import looks_like_hash, looks_like_id

#: Ids are signed 64-bit integers on the wire (rows only ever get 32-bit ones: larger ids are
#: "not found", and ids beyond 64 bits are not ids at all).
MAX_WIRE_ID = 2**63 - 1
#: Free text (descriptions, scripts, readme) and env strings.
MAX_TEXT = 64 * 1024
#: A list in a request (ids of a bulk call, args, select_cols …).
MAX_LIST = 1000


def field_name(info: ValidationInfo) -> str:
    return info.field_name or "value"


def _validator(fn: Callable[[Any, str], Any]) -> BeforeValidator:
    return BeforeValidator(lambda value, info: fn(value, field_name(info)))


# -- text ----------------------------------------------------------------------------------------
def check_text(value: str, name: str, max_len: int) -> str:
    if len(value) > max_len:
        raise InvalidInput(f"{name} is {len(value)} characters long; the limit is {max_len}",
                           "too_long")
    return value


def _text(max_len: int, numbers: bool) -> Callable[[Any, str], Any]:
    def check(value: Any, name: str) -> Any:
        if value is None:
            return None
        if numbers and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string, not {type_name(value)}")
        return check_text(value, name, max_len)

    return check


def Text(max_len: int = MAX_TEXT, *, numbers: bool = False, description: str | None = None) -> Any:  # noqa: N802
    """A string of at most ``max_len`` characters (``numbers``: a JSON number is taken as its
    text, as the template fields always allowed)."""
    schema: dict[str, Any] = {"type": "string", "maxLength": max_len}
    if numbers:
        schema = {"anyOf": [schema, {"type": "number"}]}
    if description:
        schema["description"] = description
    return Annotated[str, _validator(_text(max_len, numbers)), WithJsonSchema(schema)]


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


# -- numbers -------------------------------------------------------------------------------------
def to_number(value: Any, name: str, what: str) -> float:
    """A finite number from a JSON number or a numeric string (the official client sends some
    numbers as strings)."""
    number: float | int | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        number = parse_number(value)
    try:
        result = float(number) if number is not None else None
    except OverflowError:
        result = None
    if result is None or not math.isfinite(result):
        raise InvalidInput(f"{name} must be {what}, not {show(value)}")
    return result


def _positive(what: str) -> Callable[[Any, str], Any]:
    def check(value: Any, name: str) -> Any:
        if value is None:
            return None
        number = to_number(value, name, what)
        if number <= 0:
            raise InvalidInput(f"{name} must be {what} greater than 0, not {show(value)}")
        return number

    return check


def PositiveNumber(what: str, description: str | None = None) -> Any:  # noqa: N802
    """A number > 0, given as a JSON number or a numeric string."""
    return Annotated[float | str, _validator(_positive(what)),
                     WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0},
                                               {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*$"}],
                                     "description": description or what})]


# -- flags ---------------------------------------------------------------------------------------
def _flag(value: Any, name: str) -> Any:
    if value is None or isinstance(value, bool):
        return value
    raise InvalidInput(f"{name} must be true or false, not {show(value)}")


#: ``true``/``false`` (or null for "not given"); nothing else.
Flag = Annotated[bool, BeforeValidator(lambda v, info: _flag(v, field_name(info)))]


def _loose_flag(value: Any, name: str) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return _flag(value, name)


#: ``true``/``false`` or the strings ``"true"``/``"false"`` (any case), as some clients send.
LooseFlag = Annotated[bool | str, BeforeValidator(lambda v, info: _loose_flag(v, field_name(info))),
                      WithJsonSchema({"anyOf": [{"type": "boolean"},
                                                {"type": "string", "enum": ["true", "false"]}]})]


# -- identifiers ---------------------------------------------------------------------------------
def to_id(value: Any, name: str) -> int:
    """A numeric id (JSON number or digits). A template hash here is a 400 that says to pass it
    as hash_id; a number beyond 64 bits is a 400; 0 and negative numbers name no row (404)."""
    if looks_like_hash(value):
        raise InvalidInput(
            f"{name} takes the numeric template id (e.g. 334548), but {value!r} is a hash_id. "
            "Pass it as hash_id instead",
            "template_id_expected",
        )
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and looks_like_id(value):
        number = int(value.strip()) if len(value.strip()) < 100 else MAX_WIRE_ID + 1
    elif isinstance(value, str) and value.strip().isascii() and value.strip().lstrip("-").isdigit():
        number = int(value.strip()) if len(value.strip()) < 100 else MAX_WIRE_ID + 1
    if number is None:
        raise InvalidInput(f"{name} takes a numeric id such as 334548, not {show(value)}",
                           "id_expected")
    if number > MAX_WIRE_ID:
        raise InvalidInput(f"{name} {show(value)} is not an id: ids are whole numbers below 2^63",
                           "id_out_of_range")
    if number < 1:
        raise NotFound(f"{name}: there is no {number} (ids start at 1)", "not_found")
    return number


def _id(value: Any, name: str) -> Any:
    return None if value is None else to_id(value, name)


#: A numeric id, given as a JSON number or as digits.
Id = Annotated[int | str, BeforeValidator(lambda v, info: _id(v, field_name(info))),
               WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_WIRE_ID},
                                         {"type": "string", "pattern": "^[0-9]{1,19}$"}]})]


def PathId(name: str) -> Any:  # noqa: N802
    """:data:`Id` for a path parameter, named in messages as ``name``."""
    return Annotated[int | str, BeforeValidator(lambda v: _id(v, name)),
                     WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1},
                                               {"type": "string", "pattern": "^[0-9]{1,19}$"}],
                                     "description": name})]


def to_hash(value: Any, name: str) -> str:
    from gpuyard.services.identifiers import require_hash

    return require_hash(value, name)


def _hash(value: Any, name: str) -> Any:
    return None if value in (None, "") else to_hash(value, name)


#: A template hash_id: 32 hex characters ("" counts as not given).
HashId = Annotated[str, BeforeValidator(lambda v, info: _hash(v, field_name(info))),
                   WithJsonSchema({"type": "string", "pattern": "^[0-9a-fA-F]{32}$",
                                   "description": "a template hash_id (32 hex characters)"})]


def PathHash(name: str) -> Any:  # noqa: N802
    """:data:`HashId` for a path parameter, named in messages as ``name``."""
    return Annotated[str, BeforeValidator(lambda v: to_hash(v, name)),
                     WithJsonSchema({"type": "string", "pattern": "^[0-9a-fA-F]{32}$",
                                     "description": name})]


def bounded_list(value: Any, name: str, max_items: int = MAX_LIST, example: str = "[12, 13]") -> list:
    if not isinstance(value, list):
        raise InvalidInput(f"{name} must be a list such as {example}, not {type_name(value)}")
    if len(value) > max_items:
        raise InvalidInput(f"{name} has {len(value)} items; the limit is {max_items}", "too_many")
    return value


def IdList(max_items: int, *, what: str = "ids", unique: bool = True) -> Any:  # noqa: N802
    """A non-empty list of numeric ids, at most ``max_items`` of them (``unique``: sorted,
    duplicates removed; else in the order given)."""

    def check(value: Any, name: str) -> Any:
        if value is None or value == []:
            raise InvalidInput(f"{name} must be a non-empty list of {what}, e.g. [12, 13]")
        ids = [to_id(item, name) for item in bounded_list(value, name, max_items)]
        return sorted(set(ids)) if unique else ids

    return Annotated[list[int], _validator(check),
                     WithJsonSchema({"type": "array", "minItems": 1, "maxItems": max_items,
                                     "items": {"type": "integer", "minimum": 1}})]
