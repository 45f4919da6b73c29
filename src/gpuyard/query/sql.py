"""Compile a normalized query dict to SQLAlchemy 2 Core expressions (the only SQL in ``query``).

Input is the output of :func:`~gpuyard.query.validate.normalize_query` (typed values, canonical
names); every filter becomes a SQL expression, so filtering and sorting run in the database.

``columns`` maps each searchable field to either

* a column expression (``table.c.num_gpus``, ``Model.num_gpus``, ``(t.c.a * t.c.b)``), or
* a callable ``(op, value) -> ColumnElement[bool]`` for a computed field, called with the dict key
  (``"eq"`` … ``"notin"``) and the normalized value.

Semantics, per operator (``v`` is the value):

==========  ==================================  =============================================
op          SQL                                 note
==========  ==================================  =============================================
eq          ``col = v``                         ``eq null`` → ``col IS NULL``
neq         ``col != v``                        ``neq null`` → ``col IS NOT NULL``
gt … lte    ``col > v`` …                       rows with no value never match
in          ``col IN (…)``                      ``in []`` matches nothing
notin       ``col NOT IN (…)``                  ``notin []`` matches everything
==========  ==================================  =============================================

A row whose field has no value (NULL) matches no comparison with a value, ``neq`` and ``notin``
included: SQL's rule, and Vast's, so a query means the same on both (``reliability!=0.9`` does not
list offers that have no reliability at all). ``eq null``/``neq null`` ask for the missing value
itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, false, literal, true
from sqlalchemy.sql import operators

from gpuyard.errors import QueryError

Condition = ColumnElement[bool]
ComputedField = Callable[[str, Any], Condition]

_COMPARE = {
    "gt": operators.gt,
    "gte": operators.ge,
    "lt": operators.lt,
    "lte": operators.le,
}


def _is_column(target: object) -> bool:
    """A column expression (Core column, ORM attribute, expression), not a computed callable."""
    return isinstance(target, ColumnElement) or hasattr(target, "__clause_element__")


def _lookup(field: str, columns: Mapping[str, Any], what: str) -> Any:
    try:
        return columns[field]
    except KeyError:
        known = ", ".join(sorted(columns))
        raise QueryError(
            f"{field!r} cannot be {what} here; fields available: {known}", clause=field
        ) from None


_INT32 = range(-(2**31), 2**31)


def _wide(value: Any) -> Any:
    """Whole numbers beyond 32 bits as 64-bit parameters: PostgreSQL rejects them as INTEGER
    parameters ("integer out of range") but compares an INTEGER column with a BIGINT one fine,
    so ``id = 10**12`` simply matches nothing, as it does on SQLite."""
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT32:
        return literal(value, BigInteger)
    return value


def compare(column: Any, op: str, value: Any) -> Condition:
    """One ``column op value`` condition with the semantics in the module docstring."""
    value = [_wide(v) for v in value] if isinstance(value, list) else _wide(value)
    if op == "eq":
        return column.is_(None) if value is None else column == value
    if op == "neq":
        return column.is_not(None) if value is None else column != value
    if op == "in":
        return column.in_(value) if value else false()
    if op == "notin":
        return column.not_in(value) if value else true()
    if op in _COMPARE:
        return _COMPARE[op](column, value)
    raise QueryError(f"unknown operator {op!r}", clause=op)


def compile_where(
    query: Mapping[str, Mapping[str, Any]], columns: Mapping[str, Any]
) -> list[Condition]:
    """The WHERE conditions (to AND together) for a normalized query.

    ``select(t).where(*compile_where(q, cols))``. A field missing from ``columns`` is an error:
    it is not searchable on this endpoint.
    """
    conditions: list[Condition] = []
    for field, ops in query.items():
        target = _lookup(field, columns, "searched")
        for op, value in ops.items():
            if _is_column(target):
                conditions.append(compare(target, op, value))
            elif callable(target):
                conditions.append(target(op, value))
            else:
                raise TypeError(f"columns[{field!r}] is neither a column nor a callable")
    return conditions


def compile_order(order: list[tuple[str, str]], columns: Mapping[str, Any]) -> list[Any]:
    """ORDER BY expressions for a normalized order, e.g. ``[("dph_total", "asc")]``.

    Rows without a value sort last in both directions (``NULLS LAST``), the same on SQLite and
    PostgreSQL. Columns declared NOT NULL get a plain ASC/DESC, so that an index on them can
    serve the order (PostgreSQL cannot walk a default index backwards for DESC NULLS LAST).
    ``columns`` must map each sortable name to a column expression (computed filters given as
    callables cannot be sorted on; map a sort expression instead).
    """
    clauses: list[Any] = []
    for field, direction in order:
        target = _lookup(field, columns, "sorted on")
        if not _is_column(target):
            raise QueryError(f"results cannot be sorted by {field!r} here", clause=field)
        expression = target.desc() if direction == "desc" else target.asc()
        nullable = getattr(getattr(target, "expression", target), "nullable", True)
        clauses.append(expression.nulls_last() if nullable else expression)
    return clauses
