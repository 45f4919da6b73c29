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


def full_rows(session: Session, found: list[tuple[int, str | None]]) -> list[str]:
    """The whole rows (JSON texts) of ``(id, row_json)`` pairs: ``{"id":N,`` joined to each
    stored row; rows not stored are computed (not stored: a reader may be in a read-only
    transaction)."""
    missing = [template_id for template_id, row in found if row is None]
    computed: dict[int, str] = {}
    if missing:
        templates = session.scalars(select(Template).where(Template.id.in_(missing)))
        computed = {t.id: orjson.dumps(template_row(t)).decode() for t in templates}
    return [computed[i] if row is None else f'{{"id":{i},{row[1:]}' for i, row in found]


def encoded_list(rows: list[str]) -> orjson.Fragment:
    """Rows (JSON texts) as one pre-encoded JSON array, for :func:`gpuyard.wire.json.dumps`."""
    return orjson.Fragment(("[" + ",".join(rows) + "]").encode())


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
