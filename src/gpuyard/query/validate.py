"""Checks for the dict form of a query, as a server receives it from any client.

The wire form is ``{field: {op: value, ...}, ...}`` (VAST-WIRE §5). The official client sends most
values as strings (``{"num_gpus": {"eq": "1"}}``), so every value is coerced by the field's type:

========  =================================================================================
INT       JSON numbers and numeric strings (``"100"``, ``"1e3"``) with an integral value → int
FLOAT     JSON numbers and numeric strings (``"0.5"``, ``"1e3"``) → float
BOOL      true/false, the strings ``"true"``/``"false"`` (any case), 0/1 and ``"0"``/``"1"`` → bool
STR       strings; a JSON number becomes its string (``3090`` → ``"3090"``)
DATE      epoch seconds (number or numeric string) or ``"MM/DD/YYYY"`` (UTC midnight) → float
========  =================================================================================

``null`` is allowed with ``eq``/``neq`` only (IS NULL / IS NOT NULL). ``in``/``notin`` need a list
(possibly empty) of non-null values; the other operators need a single value. Booleans are not
numbers, and NaN/infinity are rejected. Every problem raises :class:`QueryError` naming the clause.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from gpuyard.errors import QueryError
from gpuyard.query.fields import VERSION_FIELDS, Field, FieldSet, FieldType, parse_version

#: The only operator keys of the dict form.
OPS: tuple[str, ...] = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "notin")
LIST_OPS = frozenset({"in", "notin"})
ORDERING_OPS = frozenset({"gt", "gte", "lt", "lte"})
DIRECTIONS = ("asc", "desc")

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_NUMBER_LEN = 100
_INT_LIMIT = 2**63  # values must fit a signed 64-bit column
MAX_LIST = 1000  # values of one in/notin
MAX_TEXT_VALUE = 500  # characters of a string value (the longest searchable column holds 500)


def show(value: object, limit: int = 60) -> str:
    """A short JSON-ish rendering of ``value`` for error messages."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(label: str, problem: str, clause: str) -> QueryError:
    return QueryError(f"{label}: {problem} (clause {clause})", clause=clause)


def parse_number(text: str) -> float | int | None:
    """A decimal number written as text (``"12"``, ``"-0.5"``, ``"1e3"``), or None.

    Whole numbers without ``.`` or exponent come back as int (exactly), the rest as float.
    Infinite results are None.
    """
    if len(text) > _MAX_NUMBER_LEN:
        return None
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    if text.lstrip("+-").isdigit():
        return int(text)
    number = float(text)
    return number if math.isfinite(number) else None


def parse_date(text: str) -> float | None:
    """``"MM/DD/YYYY"`` (UTC midnight) or epoch seconds as text → epoch seconds, else None.

    Same rules as the official client's ``string_to_unix_epoch``: a number is taken as-is.
    """
    number = parse_number(text)
    if number is not None:
        return float(number)
    try:
        return datetime.strptime(text, "%m/%d/%Y").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _as_number(fld: Field, value: object, label: str, clause: str) -> float | int:
    """A finite int/float from a JSON number or numeric string, else QueryError."""
    number: float | int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        number = value if math.isfinite(value) else None
    elif isinstance(value, str):
        if fld.name in VERSION_FIELDS and "." in value:
            number = parse_version(value.strip())
            if number is None:
                raise _fail(label, f"{show(value)} is not a version like 535.86.05", clause)
        else:
            number = parse_number(value)
    if number is None:
        raise _fail(label, f"{show(value)} is not a number", clause)
    return number


def _coerce_int(fld: Field, value: object, label: str, clause: str) -> int:
    number = _as_number(fld, value, label, clause)
    if isinstance(number, float):
        if not number.is_integer():
            raise _fail(label, f"{show(value)} is not a whole number", clause)
        number = int(number)
    if not -_INT_LIMIT < number < _INT_LIMIT:
        raise _fail(label, f"{show(value)} is out of range", clause)
    return number


def _coerce_float(fld: Field, value: object, label: str, clause: str) -> float:
    number = _as_number(fld, value, label, clause)
    try:
        result = float(number)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise _fail(label, f"{show(value)} is out of range", clause)
    return result


def _coerce_bool(value: object, label: str, clause: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "0", "1"):
        return value.strip().lower() in ("true", "1")
    raise _fail(label, f"{show(value)} is not a boolean (use true or false)", clause)


def _coerce_str(value: object, label: str, clause: str) -> str:
    if isinstance(value, str):
        if len(value) > MAX_TEXT_VALUE:
            raise _fail(label, f"a value of {len(value)} characters is longer than any stored "
                        f"(at most {MAX_TEXT_VALUE})", clause)
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _fail(label, f"{show(value)} is not a string", clause)


def _coerce_date(value: object, label: str, clause: str) -> float:
    result: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            result = float(value)
        except OverflowError:
            result = None
    elif isinstance(value, str):
        result = parse_date(value)
    if result is None or not math.isfinite(result):
        raise _fail(label, f"{show(value)} is not a date (use epoch seconds or MM/DD/YYYY)", clause)
    return result


def coerce_scalar(fld: Field, value: object, clause: str, label: str | None = None) -> object:
    """One non-null value checked and converted by ``fld``'s type (see the module docstring)."""
    label = label or fld.name
    if value is None:
        raise _fail(label, "null is not allowed here (use eq null or neq null)", clause)
    if isinstance(value, list | dict | tuple):
        raise _fail(label, f"{show(value)} is not a single value", clause)
    match fld.type:
        case FieldType.INT:
            return _coerce_int(fld, value, label, clause)
        case FieldType.FLOAT:
            return _coerce_float(fld, value, label, clause)
        case FieldType.BOOL:
            return _coerce_bool(value, label, clause)
        case FieldType.DATE:
            return _coerce_date(value, label, clause)
        case _:
            return _coerce_str(value, label, clause)


def coerce_value(
    fld: Field, op: str, value: object, clause: str, label: str | None = None
) -> object:
    """The value of ``op`` on ``fld`` checked and converted (a list for in/notin, else a scalar)."""
    label = label or fld.name
    if op in LIST_OPS:
        if not isinstance(value, list):
            raise _fail(label, f"{op} needs a list like [1, 2], got {show(value)}", clause)
        if len(value) > MAX_LIST:
            raise _fail(label, f"{op} has {len(value)} values; the limit is {MAX_LIST}", clause)
        return [coerce_scalar(fld, item, clause, label) for item in value]
    if value is None:
        if op in ORDERING_OPS:
            raise _fail(label, f"null cannot be compared with {op} (use eq null or neq null)",
                        clause)
        return None
    if isinstance(value, list):
        raise _fail(label, f"{op} needs a single value, got a list (use in or notin for lists)",
                    clause)
    return coerce_scalar(fld, value, clause, label)


def normalize_query(query: object, fieldset: FieldSet) -> dict[str, dict[str, object]]:
    """Check a dict-form query and return a typed copy keyed by canonical field names.

    ``None`` means no filter (``{}``). Aliases are resolved (``dph`` → ``dph_total``); an empty
    op dict is dropped. Control keys such as ``order``/``limit``/``type`` are not filters: take them
    out of a flat offers body before calling this.
    """
    if query is None:
        return {}
    if not isinstance(query, Mapping):
        raise QueryError(
            f"a query must be an object of field → {{op: value}}, e.g. "
            f'{{"num_gpus": {{"gte": 2}}}}; got {show(query)}',
            clause=show(query),
        )
    out: dict[str, dict[str, object]] = {}
    for name, ops in query.items():
        if not isinstance(name, str):
            raise QueryError(f"field names must be strings, got {show(name)}", clause=show(name))
        fld = fieldset.resolve(name, clause=f"{name}: {show(ops)}")
        if not isinstance(ops, Mapping):
            clause = f"{name}: {show(ops)}"
            raise _fail(name, f'expected an object of operators like {{"eq": ...}}, got {show(ops)}',
                        clause)
        target = out.setdefault(fld.name, {})
        for op, value in ops.items():
            clause = f"{name} {op} {show(value)}"
            if op not in OPS:
                raise _fail(name, f"unknown operator {show(op)}; use one of {', '.join(OPS)}",
                            clause)
            if op in ORDERING_OPS and fld.type is FieldType.BOOL:
                raise _fail(name, f"{fld.name} is true or false: compare it with eq or neq "
                            f"(== or !=), not {op}", clause)
            coerced = coerce_value(fld, op, value, clause, name)
            if op in target and target[op] != coerced:
                raise _fail(name, f"{op} is given twice (as {fld.name} and as an alias)", clause)
            target[op] = coerced
        if not target:
            del out[fld.name]
    return out


def normalize_order(order: object, fieldset: FieldSet) -> list[tuple[str, str]]:
    """Check a sort spec and return ``[(field, "asc"|"desc"), ...]`` with canonical names.

    Accepts ``[["dph_total", "asc"], ...]`` (offers), ``[{"col": "id", "dir": "desc"}, ...]``
    (instances), a text form like ``"num_gpus-,dph"`` (see :func:`parse_order`), or None (→ []).
    """
    if order is None:
        return []
    if isinstance(order, str):
        from gpuyard.query.text import parse_order  # text imports this module

        return [(name, direction) for name, direction in parse_order(order, fieldset)]
    if not isinstance(order, list | tuple):
        raise QueryError(f'order must be a list like [["score", "desc"]], got {show(order)}',
                         clause=show(order))
    out: list[tuple[str, str]] = []
    for item in order:
        if isinstance(item, Mapping) and set(item) == {"col", "dir"}:
            name, direction = item["col"], item["dir"]
        elif isinstance(item, list | tuple) and len(item) == 2:
            name, direction = item
        else:
            raise QueryError(
                f'each order entry must be ["field", "asc"|"desc"] or '
                f'{{"col": "field", "dir": "asc"|"desc"}}, got {show(item)}',
                clause=show(item),
            )
        clause = show(item)
        if not isinstance(name, str):
            raise QueryError(f"order field must be a string in {clause}", clause=clause)
        if not isinstance(direction, str) or direction.lower() not in DIRECTIONS:
            raise QueryError(f'order direction in {clause} must be "asc" or "desc"', clause=clause)
        out.append((fieldset.resolve_order(name, clause).name, direction.lower()))
    return out


def normalize_limit(limit: object, default: int, maximum: int) -> int:
    """``limit`` as an int in ``1..maximum``; None gives ``default``. Numeric strings are accepted."""
    if limit is None:
        return default
    number: float | int | None = None
    if isinstance(limit, int | float) and not isinstance(limit, bool):
        number = limit
    elif isinstance(limit, str):
        number = parse_number(limit)
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    if not isinstance(number, int) or not 1 <= number <= maximum:
        raise QueryError(
            f"limit must be a whole number from 1 to {maximum}, got {show(limit)}",
            clause=f"limit {show(limit)}",
        )
    return number
