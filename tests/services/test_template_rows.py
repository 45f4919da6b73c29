"""Searches answer each template from its stored row JSON: after every kind of change (create,
edit, publish, launch counter, recommendation, volume hint, a bulk-loaded row without JSON) the
row a search returns equals the template's columns."""

from __future__ import annotations

import time

from sqlalchemy import insert, select

from gpuyard.services.accounts.users import create_user
from gpuyard.services.catalog import template_rows
from gpuyard.services.catalog.templates import (
    create_template,
    edit_by_id,
    search_templates,
    search_templates_encoded,
    set_recommended,
)
from gpuyard.store.db import transaction
from gpuyard.store.models import Template
from gpuyard.wire import json as wire_json
from gpuyard.wire.base import parse
from gpuyard.wire.templates import TemplateCreate, TemplateEditById, TemplateSearch

EVERYTHING = TemplateSearch.parse({}, limit=100)


def check_rows(session, user) -> list[dict]:
    """Every visible template: the search's row (dict and encoded) equals its columns."""
    rows = search_templates(session, user, EVERYTHING)
    encoded = wire_json.loads(wire_json.dumps(search_templates_encoded(session, user, EVERYTHING)))
    assert encoded == rows
    for row in rows:
        t = session.get(Template, row["id"])
        session.refresh(t)
        assert row == template_rows.template_row(t)
    return rows


def test_every_change_keeps_the_stored_row(app):
    with transaction(app.state.sessions) as s:
        user, _ = create_user(s, "rows")
        row, _ = create_template(s, user, parse(TemplateCreate, {
            "image": "busybox", "name": "a", "env": "-e A=1", "extra_filters": "gpu_ram>=20",
            "volume_info": {"mount_path": "/data"}}))
        tid = row["id"]
        check_rows(s, user)
        edit_by_id(s, user, parse(TemplateEditById, {"id": tid, "name": "b", "private": False}))
        assert [r["name"] for r in check_rows(s, user)] == ["b"]
        set_recommended(s, tid)
        t = s.get(Template, tid)
        t.count_created += 1  # what a launch does
        t.recent_create_date = time.time()
        s.flush()
        [shown] = check_rows(s, user)
        assert shown["recommended"] is True and shown["count_created"] == 1
        edit_by_id(s, user, parse(TemplateEditById, {"id": tid, "volume_info": {"mount_path": "/w"}}))
        assert check_rows(s, user)[0]["volume_info"] == {"mount_path": "/w"}


def test_rows_loaded_without_json_are_answered_and_filled_at_start(app):
    with transaction(app.state.sessions) as s:
        user, _ = create_user(s, "bulk")
        row, _ = create_template(s, user, parse(TemplateCreate, {"image": "busybox", "name": "x"}))
        content = {k: row[k] for k in row if k not in ("id",)}
        s.execute(insert(Template).values(**{**content, "hash_id": "f" * 32, "name": "bulk",
                                             "updated_at": time.time()}))
        assert s.scalar(select(Template.id).where(Template.row_json.is_(None))) is not None
        assert {r["name"] for r in check_rows(s, user)} == {"x", "bulk"}
        assert template_rows.fill_missing(s) == 1
        assert s.scalar(select(Template.id).where(Template.row_json.is_(None))) is None
        check_rows(s, user)
