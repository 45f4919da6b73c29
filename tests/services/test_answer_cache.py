"""Template searches answered from memory stay exact: every kind of change (create, edit,
publish, delete, a launch's counter, a recommendation) is seen by the next search, because each
change moves the generation number the cached answers were read at."""

from __future__ import annotations

import orjson

from gpuyard.services.accounts.users import create_user
from gpuyard.services.catalog.answer_cache import AnswerCache
from gpuyard.services.catalog.templates import (
    create_template,
    delete_template,
    edit_by_id,
    search_templates_encoded,
    set_recommended,
)
from gpuyard.store.db import transaction
from gpuyard.store.models import Template
from gpuyard.wire import json as wire_json
from gpuyard.wire.base import parse
from gpuyard.wire.templates import TemplateCreate, TemplateDelete, TemplateEditById, TemplateSearch

EVERYTHING = TemplateSearch.parse({}, limit=100)


def search(app, user, cache) -> list[dict]:
    with transaction(app.state.sessions, write=False) as session:
        return orjson.loads(wire_json.dumps(search_templates_encoded(session, user, EVERYTHING, cache)))


def test_a_cached_search_sees_every_change(app):
    cache = AnswerCache(ttl=3600)  # only the generation may expire an entry here
    with transaction(app.state.sessions) as s:
        alice, _ = create_user(s, "alice")
        bob, _ = create_user(s, "bob")
    assert search(app, bob, cache) == [] and search(app, bob, cache) == []
    assert cache.hits == 1
    with transaction(app.state.sessions) as s:
        row, _ = create_template(s, alice, parse(TemplateCreate, {"image": "busybox", "name": "a"}))
    assert search(app, bob, cache) == []  # private
    with transaction(app.state.sessions) as s:
        edit_by_id(s, alice, parse(TemplateEditById, {"id": row["id"], "private": False}))
    assert [t["name"] for t in search(app, bob, cache)] == ["a"]
    with transaction(app.state.sessions) as s:
        s.get(Template, row["id"]).count_created += 1  # what a launch does
    assert search(app, bob, cache)[0]["count_created"] == 1
    with transaction(app.state.sessions) as s:
        set_recommended(s, row["id"])
    assert search(app, bob, cache)[0]["recommended"] is True
    with transaction(app.state.sessions) as s:
        delete_template(s, alice, parse(TemplateDelete, {"template_id": row["id"]}))
    assert search(app, bob, cache) == []
    assert search(app, bob, cache) == [] and cache.hits >= 2


def test_entries_are_bounded():
    cache = AnswerCache(max_entries=2, max_bytes=100, ttl=60)
    for i in range(3):
        cache.put(i, 0, b"x" * 10)
    assert cache.get(0, 0) is None and cache.get(2, 0) == b"x" * 10
    cache.put("big", 0, b"y" * 30)  # more than a quarter of the bytes: not kept
    assert cache.get("big", 0) is None
    assert cache.get(2, 1) is None  # another generation
