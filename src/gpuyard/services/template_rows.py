"""A template's search row, kept as JSON in ``templates.row_json``.

A search answers hundreds of templates; building and encoding each row from an ORM object cost
more than the query itself (bench/README.md). So every template carries its row, encoded once
when the template changes: a search reads one text column per row and hands it to the encoder
as a pre-encoded fragment.

The row is kept by a flush hook on :class:`Template` (every insert and update through the ORM
re-encodes it), so no service can forget it. Rows written outside the ORM (bulk loads) have
NULL, which :func:`fill_missing` (run at start-up) and the readers both handle.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from gpuyard.store.models import Template
from gpuyard.wire.templates import ROW_FIELDS

ROW_KEYS = tuple(k for k in ROW_FIELDS if k != "id")  # "id" is known only after the insert


def template_row(t: Template) -> dict[str, Any]:
    return {k: getattr(t, k) for k in ROW_FIELDS}


def encode(t: Template) -> str:
    return orjson.dumps({k: getattr(t, k) for k in ROW_KEYS}).decode()


@event.listens_for(Template, "before_insert")
@event.listens_for(Template, "before_update")
def _keep_row_json(_mapper: Any, _connection: Any, target: Template) -> None:
    target.row_json = encode(target)


def fragment(template_id: int, row_json: str) -> orjson.Fragment:
    """The row as pre-encoded JSON, for :func:`gpuyard.wire.json.dumps`."""
    return orjson.Fragment(b'{"id":%d,%s' % (template_id, row_json[1:].encode()))


def as_dict(template_id: int, row_json: str) -> dict[str, Any]:
    return {"id": template_id, **orjson.loads(row_json)}


def with_json(session: Session, pairs: list[tuple[int, str | None]]) -> list[tuple[int, str]]:
    """``(id, row_json)`` pairs with any missing row_json computed (not stored: a reader may be
    in a read-only transaction)."""
    missing = [template_id for template_id, row in pairs if row is None]
    if not missing:
        return pairs  # type: ignore[return-value]
    computed = {t.id: encode(t) for t in session.scalars(select(Template).where(Template.id.in_(missing)))}
    return [(i, row if row is not None else computed[i]) for i, row in pairs]


def fill_missing(session: Session, batch: int = 1000) -> int:
    """Store the row of every template that has none (after a bulk load); returns how many."""
    done = 0
    while True:
        found = list(session.scalars(select(Template).where(Template.row_json.is_(None)).limit(batch)))
        if not found:
            return done
        for t in found:
            t.row_json = encode(t)
        session.flush()
        done += len(found)
