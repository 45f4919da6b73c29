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

import time
from typing import Any

import orjson
from sqlalchemy import Integer, String, cast, event, insert, select, text, update
from sqlalchemy.orm import Session, object_session

from gpuyard.store.models import ServerSetting, Template
from gpuyard.wire.templates import ROW_FIELDS

ROW_KEYS = tuple(k for k in ROW_FIELDS if k != "id")  # "id" is known only after the insert


def template_row(t: Template) -> dict[str, Any]:
    return {k: getattr(t, k) for k in ROW_FIELDS}


def encode(t: Template) -> str:
    return orjson.dumps({k: getattr(t, k) for k in ROW_KEYS}).decode()


@event.listens_for(Template, "before_insert")
@event.listens_for(Template, "before_update")
def _keep_row_json(_mapper: Any, connection: Any, target: Template) -> None:
    target.row_json = encode(target)
    bump_generation(connection)
    session = object_session(target)
    if session is not None and connection.dialect.name == "postgresql":
        session.info[_CHANGED] = True


_CHANGED = "gpuyard_template_changed"


@event.listens_for(Session, "after_commit")
def _bump_after_commit(session: Session) -> None:
    """PostgreSQL: bump again once the change is visible. The sequence is not transactional, so
    a reader may see the first bump before the commit, build its answer without the change and
    cache it under the new number; the second bump makes that entry stale at once (a writer
    reads its own write on its next search)."""
    if session.info.pop(_CHANGED, False):
        with session.get_bind().connect() as connection:
            bump_generation(connection)
            connection.commit()


@event.listens_for(Session, "after_rollback")
def _forget_change(session: Session) -> None:
    session.info.pop(_CHANGED, None)


# -- the generation number: answers cached in memory are valid while it stays the same ----------
GENERATION_KEY = "template_generation"
SEQUENCE = "gpuyard_template_generation"


def setup_generation(connection: Any) -> None:
    """Create the generation number where it does not exist yet (at start-up)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")
        return
    found = connection.execute(select(ServerSetting.key).where(ServerSetting.key == GENERATION_KEY))
    if found.first() is None:
        connection.execute(insert(ServerSetting).values(key=GENERATION_KEY, value="0"))


def bump_generation(connection: Any) -> None:
    """A template changed (in this transaction). PostgreSQL: a sequence, which takes no lock (so
    concurrent launches never queue on it), bumped again after the commit. SQLite: a counter
    row, in the transaction that already holds the single write lock, so readers see data and
    number change together."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT nextval('{SEQUENCE}')")
        return
    bumped = connection.execute(update(ServerSetting).where(ServerSetting.key == GENERATION_KEY)
                                .values(value=cast(cast(ServerSetting.value, Integer) + 1, String)))
    if bumped.rowcount == 0:  # the row went missing: start again above any number seen
        connection.execute(insert(ServerSetting).values(key=GENERATION_KEY,
                                                        value=str(time.time_ns())))


def generation(session: Session) -> int:
    """The current generation number, read before the data an answer is built from."""
    if session.get_bind().dialect.name == "postgresql":
        return int(session.execute(text(f"SELECT last_value FROM {SEQUENCE}")).scalar_one())
    value = session.scalar(select(ServerSetting.value).where(ServerSetting.key == GENERATION_KEY))
    return int(value or 0)


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


def encoded_array(rows: list[str]) -> bytes:
    """Rows (JSON texts) as one JSON array (wrapped in an ``orjson.Fragment``, the answer's
    encoder copies it as it is)."""
    return ("[" + ",".join(rows) + "]").encode()


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
