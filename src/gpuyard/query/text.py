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
import math
import re

from gpuyard.errors import QueryError
from gpuyard.query.fields import VERSION_FIELDS, Field, FieldSet, FieldType, parse_version
from gpuyard.query.validate import LIST_OPS, coerce_value, normalize_order, parse_date, show

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
    """Render a wire dict back to text that :func:`parse_query` turns into the same dict.

    Strings are written with ``_`` for spaces (quoted when they would read as a wildcard);
    multiplied numbers are divided back; ``driver_version`` ints become ``X.Y.Z``. A value that
    the text form cannot express (a string with ``_``, or one that reads as true/null) raises
    QueryError.
    """
    parts = []
    symbols = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
    for name, ops in query.items():
        fld = fieldset.resolve(name)
        for op, value in ops.items():
            if op in LIST_OPS:
                items = ",".join(_format_value(v, fld, in_list=True) for v in value)
                parts.append(f"{name} {op} [{items}]")
            else:
                parts.append(f"{name}{symbols[op]}{_format_value(value, fld, in_list=False)}")
    return " ".join(parts)


def _format_value(value: object, fld: Field, in_list: bool) -> str:
    if value is None or isinstance(value, bool):
        if in_list:
            raise _unwritable(value, fld)
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float) and fld.multiplier is not None:
        return _unmultiply(float(value), fld)
    if isinstance(value, int) and fld.name in VERSION_FIELDS and 0 <= value < 10**9:
        return f"{value // 10**6}.{value // 1000 % 1000}.{value % 1000}"
    if isinstance(value, float) and fld.type is FieldType.DATE:
        return repr(value)
    if not isinstance(value, str):
        raise _unwritable(value, fld)
    odd_space = any(c.isspace() and c != " " for c in value)
    cannot = not value or "_" in value or '"' in value or odd_space
    cannot = cannot or fld.type is FieldType.DATE or (fld.name in VERSION_FIELDS and "." in value)
    if in_list:  # items are split on "," and the list ends at the first "]"
        cannot = cannot or any(c in value for c in ",[]")
    else:  # quoting does not stop true/null from becoming JSON literals
        cannot = cannot or value in LITERALS
    if cannot:
        raise _unwritable(value, fld)
    text = value.replace(" ", "_")
    # Quote what would otherwise read as a wildcard, an operator or be stripped as list brackets.
    quote = value in WILDCARDS or (
        not in_list and (value[0] in "=<>!,[]" or value[-1] in ",[]")
    )
    return f'"{text}"' if quote else text


def _unmultiply(value: float, fld: Field) -> str:
    """The shortest decimal ``x`` with ``float(x) * multiplier == value``."""
    multiplier = fld.multiplier or 1.0
    guess = value / multiplier
    candidates = [guess]
    for direction in (math.inf, -math.inf):
        current = guess
        for _ in range(4):
            current = math.nextafter(current, direction)
            candidates.append(current)
    for candidate in candidates:
        if candidate * multiplier == value:
            return repr(candidate)
    raise _unwritable(value, fld)


def _unwritable(value: object, fld: Field) -> QueryError:
    return QueryError(f"{fld.name}: {show(value)} cannot be written in the text form",
                      clause=f"{fld.name} {show(value)}")
