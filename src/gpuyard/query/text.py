"""The text form of a query: ``"gpu_ram>=20 num_gpus=1 gpu_name=RTX_3090"`` → the wire dict.

Grammar (the official ``vastai`` 1.9.1 grammar, VAST-WIRE §5.1–5.3)::

    query    = clause { " "+ clause }
    clause   = field op value
    field    = [A-Za-z0-9_]+
    op       = " "* symbols                 (= == != < <= > >=)
             | " "+ word " "                (eq neq noteq "not eq" lt lte gt gte in notin "not in" nin)
    value    = " "* ( "[" no-] "]" | '"' no-" '"' | non-space+ )

Values, in order: leading/trailing ``,[]`` are stripped; ``in``/``notin`` split on ``,`` (brackets
optional); ``any``/``*``/``?`` with ``=`` removes the field (defaults included); every ``_`` becomes
a space, then surrounding ``"`` are stripped; fields with a multiplier become ``float × m``
(``gpu_ram>=20`` → 20000.0); ``driver_version`` ``X.Y.Z`` becomes the int ``XXXYYYZZZ``;
``true``/``True``/``false``/``False``/``None``/``null`` become JSON literals; date fields become
epoch seconds; everything else stays a string exactly as the official client sends it
(``num_gpus=1`` → ``{"num_gpus": {"eq": "1"}}``).

Unlike the official client, this parser is strict: unconsumed text, a missing or unknown operator,
a blank value, an unknown field, a wildcard with another operator and a value of the wrong type
for its field raise :class:`QueryError` naming the clause.
"""

from __future__ import annotations

import copy
import json
import math
import re
from datetime import UTC, datetime

from gpuyard.errors import QueryError
from gpuyard.query.fields import VERSION_FIELDS, Field, FieldSet, FieldType, parse_version
from gpuyard.query.validate import (
    LIST_OPS,
    coerce_scalar,
    coerce_value,
    normalize_order,
    parse_date,
    show,
)

#: The official client's clause pattern, unchanged: field, operator, spaces, value, spaces.
CLAUSE = re.compile(
    r"([a-zA-Z0-9_]+)"
    r"( *[=><!]+| +(?:[lg]te?|nin|neq|eq|not ?eq|not ?in|in) )?"
    r"( *)"
    r"(\[[^\]]+\]|\"[^\"]+\"|[^ ]+)?"
    r"( *)"
)

#: Every spelling of every operator → its dict key.
OPERATORS: dict[str, str] = {
    "=": "eq", "==": "eq", "eq": "eq",
    "!=": "neq", "neq": "neq", "noteq": "neq", "not eq": "neq",
    ">": "gt", "gt": "gt", ">=": "gte", "gte": "gte",
    "<": "lt", "lt": "lt", "<=": "lte", "lte": "lte",
    "in": "in",
    "notin": "notin", "not in": "notin", "nin": "notin",
}
WILDCARDS = frozenset({"any", "*", "?"})
LITERALS: dict[str, bool | None] = {
    "true": True, "True": True, "false": False, "False": False, "None": None, "null": None,
}
_OPS_HELP = "= == eq, != neq noteq 'not eq', > gt, >= gte, < lt, <= lte, in, notin 'not in' nin"


def parse_query(
    text: str | list[str] | None,
    fieldset: FieldSet,
    defaults: dict | None = None,
) -> dict:
    """Parse the text form into the wire dict ``{field: {op: value}}`` (see the module docstring).

    ``text`` may be a list of argv tokens (joined with spaces). ``defaults`` (deep-copied) is the
    starting dict: a clause adds or replaces ops on a field, ``field=any`` removes it.
    """
    result: dict = copy.deepcopy(defaults) if defaults else {}
    if text is None:
        return result
    if isinstance(text, list):
        text = " ".join(text)
    text = text.strip()
    position = 0
    for match in [*CLAUSE.finditer(text), None]:
        start = match.start() if match else len(text)
        if start != position:
            leftover = text[position:start]
            raise QueryError(
                f"unexpected text {leftover[:40]!r} at position {position} of the query; write "
                'clauses as field op value separated by spaces, and quote values with spaces '
                '("a b") or write the spaces as _',
                clause=leftover,
            )
        if match is None:
            break
        _apply(match, result, fieldset)
        position = match.end()
        if not match.group(5) and position < len(text):
            raise QueryError(
                f"clause {match.group(0)!r} runs into {text[position:position + 20]!r}; "
                "separate clauses with a space",
                clause=match.group(0),
            )
    return result


def _apply(match: re.Match[str], result: dict, fieldset: FieldSet) -> None:
    """Add one clause to ``result`` (in place)."""
    name, raw_op, _, raw_value, _ = match.groups()
    clause = match.group(0).strip()
    fld = fieldset.resolve(name, clause)
    if name != fld.name and name in result:
        result[fld.name] = result.pop(name)
    op_text = (raw_op or "").strip()
    if not op_text:
        raise QueryError(
            f"clause {clause!r} has no operator; write field op value, e.g. num_gpus>=2 "
            f"(operators: {_OPS_HELP})",
            clause=clause,
        )
    op = OPERATORS.get(op_text)
    if op is None:
        raise QueryError(
            f"unknown operator {op_text!r} in clause {clause!r}; use one of {_OPS_HELP}",
            clause=clause,
        )
    raw = (raw_value or "").strip(",[]")
    if op in LIST_OPS:
        items = [item.strip() for item in raw.split(",") if item.strip()]
        if not items:
            raise _blank(clause)
        for item in items:
            if item in WILDCARDS:
                raise _wildcard(item, fld, clause)
        value: object = [_convert(item, fld, clause, literals=False) for item in items]
    else:
        if not raw:
            raise _blank(clause)
        if raw in WILDCARDS:
            if op != "eq":
                raise _wildcard(raw, fld, clause)
            result.pop(fld.name, None)
            return
        value = _convert(raw, fld, clause, literals=True)
    coerce_value(fld, op, value, clause, name)  # type check only; the wire keeps Vast's form
    result.setdefault(fld.name, {})[op] = value


def _convert(raw: str, fld: Field, clause: str, literals: bool) -> object:
    """One raw value (or list item) → its wire value."""
    if fld.name in VERSION_FIELDS and "." in raw:
        version = parse_version(raw.strip('"'))
        if version is None:
            raise QueryError(
                f"{fld.name}: {raw!r} is not a version like 535.86.05 (clause {clause})",
                clause=clause,
            )
        return version
    text = raw.replace("_", " ").strip('"')
    if not text:
        raise _blank(clause)
    if fld.multiplier is not None:
        try:
            number = float(text) * fld.multiplier
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise QueryError(
                f"{fld.name}: {text!r} is not a number (clause {clause}); {fld.name} takes a "
                "number, e.g. gpu_ram>=24 (GB) or duration>2 (days)",
                clause=clause,
            )
        return number
    value: object = LITERALS[text] if literals and text in LITERALS else text
    if fld.type is FieldType.DATE and isinstance(value, str):
        date = parse_date(value)
        if date is None:
            raise QueryError(
                f"{fld.name}: {value!r} is not a date (clause {clause}); use MM/DD/YYYY "
                "or epoch seconds",
                clause=clause,
            )
        return date
    return value


def _blank(clause: str) -> QueryError:
    return QueryError(
        f"clause {clause!r} has no value; write field op value, e.g. num_gpus>=2 or "
        "gpu_name in [RTX_4090,RTX_3090]",
        clause=clause,
    )


def _wildcard(value: str, fld: Field, clause: str) -> QueryError:
    return QueryError(
        f"wildcard {value!r} in clause {clause!r} only works with =, where it removes every "
        f"filter on {fld.name} (e.g. {fld.name}=any); quote it to mean the text \"{value}\"",
        clause=clause,
    )


def parse_order(text: str | list | None, fieldset: FieldSet) -> list[list[str]]:
    """``"num_gpus-,dph+,score"`` → ``[["num_gpus","desc"],["dph_total","asc"],["score","asc"]]``.

    Comma-separated names, each trimmed; a leading or trailing ``-`` means descending, ``+`` or no
    sign ascending; order aliases are applied; empty items are skipped. None gives []. A list in
    the dict form is checked with :func:`normalize_order` and returned as lists.
    """
    if text is None:
        return []
    if not isinstance(text, str):
        return [list(pair) for pair in normalize_order(text, fieldset)]
    order: list[list[str]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name = item.strip("+-")
        signs = set(item[: len(item) - len(item.lstrip("+-"))] + item[len(item.rstrip("+-")):])
        if len(signs) > 1:
            raise QueryError(
                f"order {item!r} has both + and -; use {name}- for descending or {name} "
                "for ascending",
                clause=item,
            )
        fld = fieldset.resolve_order(name, item)
        order.append([fld.name, "desc" if "-" in signs else "asc"])
    return order


def format_query(query: dict, fieldset: FieldSet) -> str:
    """Render a dict-form query back to text that :func:`parse_query` reads as the same query.

    ``query`` may be in the wire form :func:`parse_query` makes (strings, as the official client
    sends them) or in the typed form :func:`normalize_query` makes and templates store (ints,
    floats, booleans, null, dates as epoch seconds, unit-scaled fields in MB or seconds). Wire
    strings come back exactly; typed values come back as values that normalize to the same ones.
    Numbers are written plainly (``num_gpus=1``), unit-scaled fields in the units of the text
    (``gpu_ram>=20`` for 20000 MB), ``driver_version`` ints as ``X.Y.Z``, midnight-UTC dates as
    ``MM/DD/YYYY``, spaces in strings as ``_``, and strings that would read as a wildcard, an
    operator or list brackets in quotes.

    A value the text form cannot express raises QueryError: a string with ``_`` (the parser reads
    every ``_`` as a space), one that starts or ends with ``"``, a string "true"/"null" … compared
    with an operator other than in/notin, an empty list. :func:`split_query` keeps what can be
    written and hands back the rest.
    """
    parts = []
    for name, ops in query.items():
        parts.extend(_format_field(name, ops, fieldset))
    return " ".join(parts)


def split_query(query: dict, fieldset: FieldSet) -> tuple[str, dict]:
    """``(text, rest)``: the text of every field :func:`format_query` can write, and the fields
    it cannot (``{field: {op: value}}``, whole fields: a field is never split, so merging by field
    keeps meaning the same)."""
    parts: list[str] = []
    rest: dict = {}
    for name, ops in query.items():
        try:
            parts.extend(_format_field(name, ops, fieldset))
        except QueryError:
            rest[name] = ops
    return " ".join(parts), rest


def describe_query(query: dict | None, fieldset: FieldSet) -> str:
    """A query for people to read: the text form, and each clause the text cannot express as
    ``field op value`` with the value in JSON (``gpu_name eq "RTX_4090_Ti"``), after ``;``."""
    if not query:
        return ""
    text, rest = split_query(query, fieldset)
    others = describe_clauses(rest)
    return "; ".join(x for x in (text, others) if x)


def describe_clauses(query: dict) -> str:
    """``field op value`` for every clause, the value in JSON, separated by ``, ``."""
    return ", ".join(
        f"{name} {op} {json.dumps(value, ensure_ascii=False, default=str)}"
        for name, ops in query.items() for op, value in (ops.items() if isinstance(ops, dict) else [])
    )


_SYMBOLS = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _format_field(name: str, ops: object, fieldset: FieldSet) -> list[str]:
    """The clauses of one field (every op of it), or QueryError when one cannot be written."""
    fld = fieldset.resolve(name)
    if not isinstance(ops, dict):
        raise _unwritable(ops, fld)
    return [_format_clause(name, fld, op, value, fieldset) for op, value in ops.items()]


def _format_clause(name: str, fld: Field, op: str, value: object, fieldset: FieldSet) -> str:
    """One clause, checked by reading it back (so no rule of the grammar is missed)."""
    if op in LIST_OPS:
        if not isinstance(value, list) or not value:
            raise _unwritable(value, fld)
        # [a,b] as people write it; else led by a comma (stripped), which lets an item hold
        # "]" or, quoted, start or end with one.
        for opening, closing in (("[", "]"), (",", "")):
            try:
                items = [_pick(f"{name} {op} {opening}", closing, fld, op, [item], fieldset)
                         for item in value]
            except QueryError:
                continue
            clause = f"{name} {op} {opening}{','.join(items)}{closing}"
            if _reads_back(clause, fld, op, value, fieldset):
                return clause
        raise _unwritable(value, fld)
    if op not in _SYMBOLS:
        raise QueryError(f"{fld.name}: unknown operator {show(op)}", clause=f"{fld.name} {op}")
    return f"{name}{_SYMBOLS[op]}{_pick(f'{name}{_SYMBOLS[op]}', '', fld, op, value, fieldset)}"


def _pick(before: str, after: str, fld: Field, op: str, value: object, fieldset: FieldSet) -> str:
    """The first spelling of ``value`` (a one-item list for in/notin) that reads back as it
    between ``before`` and ``after``."""
    scalar = value[0] if op in LIST_OPS else value  # type: ignore[index]
    for text in _spellings(scalar, fld):
        if _reads_back(f"{before}{text}{after}", fld, op, value, fieldset):
            return text
    raise _unwritable(scalar, fld)


def _reads_back(clause: str, fld: Field, op: str, value: object, fieldset: FieldSet) -> bool:
    """Whether ``clause`` alone parses to ``{fld: {op: v}}`` with ``v`` the same as ``value``:
    exactly for wire strings, after the server's type conversion otherwise."""
    try:
        parsed = parse_query(clause, fieldset)
        if list(parsed) != [fld.name] or list(parsed[fld.name]) != [op]:
            return False
        got = parsed[fld.name][op]
        if _same(got, value):
            return True
        return _same(coerce_value(fld, op, got, clause), coerce_value(fld, op, value, clause))
    except QueryError:
        return False


def _same(a: object, b: object) -> bool:
    """Equal as JSON (``1`` is not ``1.0`` nor ``true``); -0.0 equals 0.0 only after typing."""
    try:
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    except (TypeError, ValueError):
        return False


def _spellings(value: object, fld: Field) -> list[str]:
    """Ways to write one value, the plainest first (each is checked by reading it back)."""
    if value is None:
        return ["null"]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, list | dict | tuple):
        return []
    numeric = isinstance(value, int | float)
    if fld.multiplier is not None or fld.type is FieldType.DATE or (
        fld.name in VERSION_FIELDS and (numeric or (isinstance(value, str) and "." in value))
    ):
        try:
            number = coerce_scalar(fld, value, f"{fld.name} {show(value)}")
        except QueryError:
            return []
        if fld.multiplier is not None:
            return _unmultiplied(float(number), fld)  # type: ignore[arg-type]
        if fld.type is FieldType.DATE:
            return [*_date_text(float(number)), _number_text(float(number))]  # type: ignore[arg-type]
        return [_version_text(int(number))]  # type: ignore[call-overload]
    if numeric:
        text = str(value) if isinstance(value, int) else _number_text(value)  # type: ignore[arg-type]
        return [text]
    if not isinstance(value, str) or not value or "_" in value:
        return []
    plain = value.replace(" ", "_")
    # Quotes guard a value that reads as a wildcard, an operator or list brackets; brackets one
    # that also holds a quote; a leading "]" (stripped, like brackets) then quotes, the rest.
    return [plain, f'"{plain}"', f"[{plain}]", f']"{plain}"']


def _number_text(value: float) -> str:
    """``20.0`` → ``20``; other floats in Python's shortest repr (``0.5``, ``1e-07``)."""
    if value.is_integer() and abs(value) < 1e16 and math.copysign(1.0, value) > 0:
        return str(int(value))
    return repr(value)


def _version_text(value: int) -> str:
    """``535086005`` → ``535.86.5`` (read back as the same int); others as plain digits."""
    if 0 <= value < 10**9:
        return f"{value // 10**6}.{value // 1000 % 1000}.{value % 1000}"
    return str(value)


def _date_text(value: float) -> list[str]:
    """Midnight UTC as ``MM/DD/YYYY`` (what people write), when it is one."""
    if not value.is_integer() or value % 86400:
        return []
    try:
        day = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return []
    return [day.strftime("%m/%d/%Y")] if 1000 <= day.year <= 9999 else []


def _unmultiplied(value: float, fld: Field) -> list[str]:
    """The shortest decimals ``x`` with ``float(x) * multiplier == value``."""
    multiplier = fld.multiplier or 1.0
    guess = value / multiplier
    candidates = [guess]
    for direction in (math.inf, -math.inf):
        current = guess
        for _ in range(4):
            current = math.nextafter(current, direction)
            candidates.append(current)
    out = []
    for candidate in candidates:
        if math.isfinite(candidate):
            text = _number_text(candidate)
            if float(text) * multiplier == value:
                out.append(text)
    return out[:1]


def _unwritable(value: object, fld: Field) -> QueryError:
    return QueryError(f"{fld.name}: {show(value)} cannot be written in the text form",
                      clause=f"{fld.name} {show(value)}")
