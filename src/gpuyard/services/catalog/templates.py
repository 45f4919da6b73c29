"""Template rules: create, search, edit (new version, same id), delete, versions, resolve by hash.

Knows nothing of HTTP. Every function takes an open session (the caller owns the transaction)
and the acting user, and raises typed errors from ``gpuyard.errors``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import and_, case, false, or_, select
from sqlalchemy.orm import Session, aliased

from gpuyard.errors import Forbidden, InvalidInput, NotFound
from gpuyard.query import TEMPLATE_FIELDS
from gpuyard.query.sql import compare, compile_order, compile_where
from gpuyard.services.catalog import template_rows
from gpuyard.services.catalog.answer_cache import AnswerCache
from gpuyard.services.catalog.template_content import CONTENT_FIELDS, build_content, content_hash
from gpuyard.services.catalog.template_rows import template_row
from gpuyard.services.identifiers import require_hash, require_id
from gpuyard.store.db import lock_row
from gpuyard.store.models import Template, TemplateVersion, User
from gpuyard.template_flags import fields_from_flags, flags_from_fields
from gpuyard.wire.templates import (
    TemplateCreate,
    TemplateDelete,
    TemplateEditByHash,
    TemplateEditById,
    TemplateFields,
    TemplateSearch,
)


def version_content(t: Template) -> dict[str, Any]:
    return {k: getattr(t, k) for k in CONTENT_FIELDS}


def _apply_content(t: Template, content: dict[str, Any], hash_id: str) -> None:
    for key, value in content.items():
        setattr(t, key, value)
    t.hash_id = hash_id
    t.default_tag = content["tag"]


def _add_version(session: Session, t: Template, content: dict[str, Any], now: float) -> None:
    last = session.scalar(
        select(TemplateVersion.version)
        .where(TemplateVersion.template_id == t.id)
        .order_by(TemplateVersion.version.desc())
        .limit(1)
    )
    session.add(
        TemplateVersion(
            template_id=t.id,
            version=(last or 0) + 1,
            hash_id=t.hash_id,
            content=content,
            private=bool(content["private"]),
            created_at=now,
        )
    )


def _changes(
    body: TemplateFields, current: dict[str, Any] | None, keep_nulls: bool = False
) -> dict[str, Any]:
    """The content fields a body changes. The friendly flags (ssh, jupyter, direct,
    jupyter_lab) merge with the ones ``current`` was made with and become fields; fields
    given explicitly win over flag-derived ones. ``keep_nulls``: a null means "keep"."""
    changes = body.content()
    if keep_nulls:
        changes = {k: v for k, v in changes.items() if v is not None}
    flags = body.flags()
    if not flags:
        return changes
    merged = {**(flags_from_fields(current) if current else {}), **flags}
    return {**fields_from_flags(**merged), **changes}


def create_template(session: Session, user: User, body: TemplateCreate) -> tuple[dict, bool]:
    """Create a template; return (row, created). Identical content of the same user → existing."""
    content = build_content(_changes(body, None), checked=True)
    hash_id = content_hash(content)
    # Serialize one user's creates (a row lock on PostgreSQL; SQLite's write lock does the same)
    # so that identical content sent twice at once still makes one template.
    lock_row(session, User, user.id)
    existing = session.scalar(
        select(Template).where(
            Template.creator_id == user.id,
            Template.hash_id == hash_id,
            Template.deleted_at.is_(None),
        )
    )
    if existing is not None:
        return template_row(existing), False
    now = time.time()
    t = Template(
        creator_id=user.id,
        created_at=now,
        updated_at=now,
        count_created=0,
        recommended=False,
        volume_info=body.volume_hint(),
    )
    _apply_content(t, content, hash_id)
    session.add(t)
    session.flush()
    _add_version(session, t, content, now)
    return template_row(t), True


def _visible(user: User):
    return and_(
        Template.deleted_at.is_(None),
        or_(Template.private == false(), Template.creator_id == user.id),
    )


def _version_listed(user: User, template=Template):
    """The versions ``user`` sees in listings (version history, search by hash): every version
    of their own templates, only the versions saved as public of anyone else's. Publishing a
    template so keeps what its private versions held (a token in env, say) private; a hash
    itself stays a capability (``resolve_hash``)."""
    return or_(TemplateVersion.private == false(), template.creator_id == user.id)


def _hash_filter(user: User):
    """hash_id eq/in match the hash of any version the user sees (an old hash finds its
    template), neq/notin are their negation; ordering operators compare the current hash."""
    owner = aliased(Template)

    def condition(op: str, value: Any):
        positive = {"eq": "eq", "in": "in", "neq": "eq", "notin": "in"}.get(op)
        if positive is None:
            return compare(Template.hash_id, op, value)
        holders = (
            select(TemplateVersion.template_id)
            .join(owner, owner.id == TemplateVersion.template_id)
            .where(compare(TemplateVersion.hash_id, positive, value), _version_listed(user, owner))
        )
        return Template.id.in_(holders) if op == positive else Template.id.not_in(holders)

    return condition


ORDER_COLUMNS: dict[str, Any] = {name: getattr(Template, name) for name in TEMPLATE_FIELDS.fields}


def _current_hash_first(query: dict[str, Any]) -> list:
    """In a search by hash, templates whose *current* hash matches come before those that only
    had it once: clients that resolve a hash by taking the first match (the official
    ``update template``) then act on the template that holds the hash now."""
    ops = query.get("hash_id", {})
    for op in ("eq", "in"):
        if ops.get(op) is not None:
            return [case((compare(Template.hash_id, op, ops[op]), 0), else_=1)]
    return []


def _found(session: Session, user: User, search: TemplateSearch) -> list[str]:
    """The rows (JSON texts) of the caller's own templates and every public one matching
    ``search``, filtered, sorted and limited in SQL."""
    query, ordering = search.query, search.order or [("id", "asc")]
    stmt = (
        select(Template.id, Template.row_json)
        .where(_visible(user), *compile_where(query, {**ORDER_COLUMNS, "hash_id": _hash_filter(user)}))
        .order_by(
            *_current_hash_first(query),
            *compile_order(ordering, ORDER_COLUMNS),
            *([] if ordering[-1][0] == "id" else [Template.id.asc()]),  # a stable tie-break
        )
        .limit(search.limit)
    )
    return template_rows.full_rows(session, [(i, row) for i, row in session.execute(stmt)])


def search_templates(session: Session, user: User, search: TemplateSearch) -> list[dict[str, Any]]:
    """The caller's own templates and every public one, filtered in SQL, as dicts."""
    rows = [orjson.loads(text) for text in _found(session, user, search)]
    if search.cols is None:
        return rows
    return [{k: row[k] for k in search.cols} for row in rows]


def search_templates_encoded(session: Session, user: User, search: TemplateSearch,
                             cache: AnswerCache | None = None) -> Any:
    """:func:`search_templates` for an answer: the rows as one pre-encoded JSON array (no
    per-row work in Python) unless ``select_cols`` asks for some columns. With a ``cache``, an
    answer read before is given again while no template has changed (the generation number,
    read before the data, is the same)."""
    if search.cols is not None:
        return search_templates(session, user, search)
    if cache is None:
        return orjson.Fragment(template_rows.encoded_array(_found(session, user, search)))
    generation = template_rows.generation(session)
    key = (user.id, search.key())
    encoded = cache.get(key, generation)
    if encoded is None:
        encoded = template_rows.encoded_array(_found(session, user, search))
        cache.put(key, generation, encoded)
    return orjson.Fragment(encoded)


def _editable(user: User, t: Template | None, label: str) -> Template:
    if t is None or t.deleted_at is not None or (t.private and t.creator_id != user.id):
        raise NotFound(f"template {label} not found", "template_not_found")
    if t.creator_id != user.id:
        raise Forbidden(
            f"template {label} belongs to another user: only its creator can change it. "
            "Create your own copy with create template",
            "not_template_owner",
        )
    return t


def editable_template(session: Session, user: User, template_ref: Any) -> Template:
    """The template ``template_ref`` if ``user`` may change it (404 when they may not see it,
    403 when it is someone else's public one)."""
    template_id = require_id(template_ref, "template id")
    return _editable(user, session.get(Template, template_id), str(template_id))


def _find_by_hash(session: Session, user: User, hash_id: str) -> Template | None:
    """The caller's template whose current (or, failing that, any older) hash is ``hash_id``;
    otherwise any template that had it in a version the caller sees."""
    live = Template.deleted_at.is_(None)
    stmt = select(Template).where(live, Template.hash_id == hash_id, Template.creator_id == user.id)
    t = session.scalars(stmt.limit(1)).first()
    if t is not None:
        return t
    by_version = (
        select(Template)
        .join(TemplateVersion, TemplateVersion.template_id == Template.id)
        .where(live, TemplateVersion.hash_id == hash_id, _version_listed(user))
        .order_by((Template.creator_id == user.id).desc(), Template.id.asc())
    )
    return session.scalars(by_version.limit(1)).first()


def _edit(session: Session, t: Template, body: TemplateFields, keep_nulls: bool):
    session.refresh(t, with_for_update=True)  # one edit of a template at a time; fresh content
    current = version_content(t)
    content = build_content(_changes(body, current, keep_nulls), base=current, checked=True)
    hash_id = content_hash(content)
    hint = body.volume_hint()
    if hint is not None:
        t.volume_info = hint
    if hash_id == t.hash_id:
        return template_row(t), False
    now = time.time()
    _apply_content(t, content, hash_id)
    t.updated_at = now
    _add_version(session, t, content, now)
    session.flush()
    return template_row(t), True


def edit_by_hash(session: Session, user: User, body: TemplateEditByHash) -> tuple[dict, bool]:
    """``PUT /api/v0/template/``: locate by ``hash_id``; change only the fields given."""
    assert body.hash_id is not None  # the model requires it
    t = _editable(user, _find_by_hash(session, user, body.hash_id), body.hash_id)
    return _edit(session, t, body, keep_nulls=False)


def edit_by_id(session: Session, user: User, body: TemplateEditById) -> tuple[dict, bool]:
    """``PUT /api/v1/template/``: locate by ``id`` + ``hash_id``; the full payload of the
    official client. A null value means "not given" there (that client sends null for every
    option it was not given), so it keeps the current value."""
    assert body.id is not None  # the model requires it
    t = _editable(user, _get(session, body.id), str(body.id))
    if body.hash_id is not None:
        known = session.scalar(
            select(TemplateVersion.id).where(
                TemplateVersion.template_id == t.id, TemplateVersion.hash_id == body.hash_id
            )
        )
        if known is None:
            raise InvalidInput(
                f"hash_id {body.hash_id} is not a version of template {t.id}; its current hash_id "
                f"is {t.hash_id}",
                "hash_id_mismatch",
            )
    return _edit(session, t, body, keep_nulls=True)


def delete_template(session: Session, user: User, body: TemplateDelete) -> dict[str, Any]:
    """Remove the creator's relationship to a template. Its versions stay: shared hashes and
    instances launched from them keep working."""
    if body.hash_id is not None:
        t = _editable(user, _find_by_hash(session, user, body.hash_id), body.hash_id)
        if body.template_id is not None and body.template_id != t.id:
            raise InvalidInput(
                f"template_id {body.template_id} and hash_id {body.hash_id} name different "
                "templates; give one of them"
            )
    else:
        assert body.template_id is not None  # the model requires one of them
        t = _editable(user, _get(session, body.template_id), str(body.template_id))
    t.deleted_at = time.time()
    return {"id": t.id, "hash_id": t.hash_id}


def _get(session: Session, template_id: int) -> Template | None:
    """The template row ``template_id`` (ids beyond the 32-bit columns name nothing)."""
    return session.get(Template, template_id)  # (an id beyond the column: None)


def _readable(session: Session, user: User, template_id: int) -> Template:
    t = session.get(Template, template_id)
    if t is None or (t.creator_id != user.id and (t.private or t.deleted_at is not None)):
        raise NotFound(f"template {template_id} not found", "template_not_found")
    return t


def list_versions(session: Session, user: User, template_ref: Any) -> list[dict[str, Any]]:
    """Every version of a template the user sees (all of their own template's; only the public
    ones of anyone else's), newest first."""
    template_id = require_id(template_ref, "template versions")
    t = _readable(session, user, template_id)
    stmt = (
        select(TemplateVersion)
        .join(Template, Template.id == TemplateVersion.template_id)
        .where(TemplateVersion.template_id == t.id, _version_listed(user))
        .order_by(TemplateVersion.version.desc())
    )
    return [
        {
            "template_id": v.template_id,
            "version": v.version,
            "hash_id": v.hash_id,
            "created_at": v.created_at,
            "current": v.hash_id == t.hash_id and t.deleted_at is None,
            "content": v.content,
        }
        for v in session.scalars(stmt)
    ]


def resolve_hash(session: Session, hash_ref: Any) -> dict[str, Any]:
    """The exact content a hash names. Anyone holding a hash may read and launch it."""
    hash_id = require_hash(hash_ref, "template_hash_id")
    v = session.scalars(
        select(TemplateVersion)
        .where(TemplateVersion.hash_id == hash_id)
        .order_by(TemplateVersion.id.asc())
        .limit(1)
    ).first()
    if v is None:
        raise NotFound(f"no template has hash_id {hash_id}", "template_not_found")
    return {"template_id": v.template_id, "hash_id": v.hash_id, **v.content}


def set_recommended(session: Session, template_ref: Any, on: bool = True) -> dict[str, Any]:
    """Put a template on (or take it off) the recommended list: an operator's call, not a
    content change, so the hash stays."""
    template_id = require_id(template_ref, "recommend template")
    t = session.get(Template, template_id)
    if t is None or t.deleted_at is not None:
        raise NotFound(f"template {template_id} not found", "template_not_found")
    if on and t.private:
        raise InvalidInput(
            f"template {template_id} is private; only public templates can be recommended"
        )
    t.recommended = on
    return template_row(t)
