"""The permission table covers every route of the API (new routes fail closed until they get an
entry), docs/api-keys.md shows the table as the code has it, permission documents are checked
with messages that name what is wrong, and one document is compared with another as the
"no broader than its creator" rule needs."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from gpuyard.api.app import _api
from gpuyard.api.deps import authenticated
from gpuyard.errors import Forbidden, InvalidInput
from gpuyard.services.accounts import permissions as perms
from gpuyard.wire.apikeys import ApiKeyCreate, check_document

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api-keys.md"


def api_routes() -> list[tuple[str, str, APIRoute]]:
    routes = [route for route in _api().state.api_routes if isinstance(route, APIRoute)]
    assert len(routes) > 40
    return [(method, route.path, route) for route in routes for method in sorted(route.methods or ())]


def test_every_api_route_has_exactly_one_entry_and_no_entry_is_stale():
    seen = set()
    for method, path, route in api_routes():
        needs_key = any(d.call is authenticated for d in route.dependant.dependencies)
        if needs_key:
            rule = perms.rule_for(method, path)
            assert rule is not None, (
                f"{method} {path} has no entry in gpuyard.services.accounts.permissions.RULES: give it a "
                "route name and a category there (until then restricted keys are refused)")
            assert rule.category in perms.CATEGORIES
            seen.add((method, path))
        else:
            assert (method, path) in perms.PUBLIC, f"{method} {path} takes no key but is not in PUBLIC"
    assert seen == set(perms.BY_ROUTE), f"entries for routes that do not exist: {set(perms.BY_ROUTE) - seen}"
    names = [r.name for r in perms.RULES]
    assert len(names) == len(set(names)) and all(n.startswith("api.") for n in names)
    # constrainable parameters name real path parameters
    for rule in perms.RULES:
        for param in rule.params:
            if param.source == "path":
                assert "{" + param.field in rule.path, (rule.name, param)


def test_template_writes_are_in_no_read_category():
    for rule in perms.RULES:
        if rule.name.startswith("api.template.") and rule.method != "GET":
            assert rule.category.endswith("_write"), rule


def test_docs_show_the_table_the_code_has():
    text = DOCS.read_text()
    assert perms.markdown_table() in text, (
        "docs/api-keys.md is out of date: paste the output of "
        "'python -m gpuyard.services.accounts.permissions' between its table markers")


def test_a_route_without_an_entry_is_refused_to_restricted_keys_only():
    doc = {"api": {c: {} for c in perms.CATEGORIES}}  # every category, whole
    perms.authorize(None, "POST", "/api/v0/brand_new", lambda p: None)  # a full key may
    with pytest.raises(Forbidden) as info:
        perms.authorize(doc, "POST", "/api/v0/brand_new", lambda p: None)
    assert "no entry in gpuyard's permission table" in info.value.msg and "full key" in info.value.msg


@pytest.mark.parametrize(("doc", "words"), [
    ({"read": True, "write": False}, ["unknown key(s) read, write", '{"api"']),
    ({"api": {"instance_reed": {}, "misc": {}}}, ["unknown category instance_reed", "instance_read"]),
    ({"api": {"misc": []}}, ["misc: a category's value", "not a list"]),
    ({"api": {"instance_read": {"api.instance.logs": {}}}},
     ["unknown route name 'api.instance.logs'", "api.instance.request_logs"]),
    ({"api": {"instance_read": {"api.instance.destroy": {}}}},
     ["api.instance.destroy belongs to the category instance_write"]),
    ({"api": {"user_write": {"api.template.create": {}}, "user_read": {"api.template.create": {}}}},
     ["belongs to the category user_write, not user_read"]),
    ({"api": {"instance_read": {"api.instance.show": {"constraints": {"gpu": {"eq": 1}}}}}},
     ["has no parameter 'gpu'", "it has: id"]),
    ({"api": {"instance_read": {"api.instance.show": {"constraints": {"id": {"ne": 1}}}}}},
     ["unknown operator(s) ne", "eq, lte, gte, in"]),
    ({"api": {"instance_read": {"api.instance.show": {"constraints": {"id": {"eq": "one"}}}}}},
     ["id is a number: eq takes a number, not a string"]),
    ({"api": {"instance_read": {"api.instance.show": {"constraints": {"id": {"eq": 1.5}}}}}},
     ["id is an id: eq takes whole numbers"]),
    ({"api": {"instance_write": {"api.instance.create": {"constraints": {"image": {"lte": 3}}}}}},
     ["image is text: it takes eq or in, not lte"]),
    ({"api": {"instance_read": {"api.instance.show": {"constraints": {"id": {"in": []}}}}}},
     ["'in' takes a non-empty list"]),
    ({"api": {"instance_read": {"api.instance.show": {"constraints": {"id": {}}}}}},
     ["give at least one operator"]),
    ({"api": {"instance_read": {"api.instance.show": {"constraints": None}}}},
     ["constraints must be a JSON object, not null"]),
    ({"api": {"instance_read": {"api.instance.list": {"constraints": {"id": {"eq": 1}}}}}},
     ["api.instance.list takes no constraints"]),
    ({"api": {"instance_read": {"api.instance.show": {"limits": {}}}}},
     ["unknown key(s) limits; a route takes only 'constraints'"]),
])
def test_bad_documents_are_refused_naming_what_is_wrong(doc, words):
    with pytest.raises(InvalidInput) as info:
        ApiKeyCreate.model_validate({"name": "x", "permissions": doc})
    assert info.value.code == "invalid_permissions"
    for word in words:
        assert word in info.value.msg, info.value.msg


def test_documents_are_kept_in_a_normal_form():
    doc = check_document({"api": {"misc": {}, "instance_read": {
        "api.instance.show": {"constraints": {"id": {"in": [3, 1, 3.0], "gte": 1}}},
        "api.instance.list": {"constraints": {}}}}})
    assert doc == {"api": {"instance_read": {
        "api.instance.show": {"constraints": {"id": {"gte": 1, "in": [1, 3]}}},
        "api.instance.list": {}}, "misc": {}}}
    body = ApiKeyCreate.model_validate({"permissions": doc})
    assert body.permissions.stored() == doc


def values(**given):
    return lambda param: given.get(param.field)


def test_authorize_by_category_route_and_constraint():
    doc = check_document({"api": {"misc": {}, "instance_read": {
        "api.instance.request_logs": {"constraints": {"id": {"eq": 1227}}}}}})
    perms.authorize(doc, "POST", "/api/v0/bundles", values())
    perms.authorize(doc, "PUT", "/api/v0/instances/request_logs/{instance_id:int}", values(instance_id=1227))
    with pytest.raises(Forbidden) as info:
        perms.authorize(doc, "PUT", "/api/v0/instances/request_logs/{instance_id:int}", values(instance_id=5))
    assert "only with id eq 1227, and the call has id 5" in info.value.msg
    with pytest.raises(Forbidden) as info:
        perms.authorize(doc, "GET", "/api/v0/instances/{instance_id:int}", values(instance_id=1227))
    assert "api.instance.show, category instance_read" in info.value.msg
    assert "grants only api.instance.request_logs" in info.value.msg
    with pytest.raises(Forbidden) as info:
        perms.authorize(doc, "DELETE", "/api/v0/instances/{instance_id:int}", values(instance_id=1227))
    assert "lacks the permission instance_write (it has: instance_read, misc)" in info.value.msg


def test_constraints_on_body_values_and_lists():
    doc = check_document({"api": {"instance_write": {
        "api.instance.create": {"constraints": {"price": {"lte": 0.5}, "disk": {"lte": 50, "gte": 10}}},
        "api.instance.destroy_many": {"constraints": {"id": {"in": [1, 2, 3]}}}}}})
    create = "/api/v0/asks/{ask_id:int}"
    perms.authorize(doc, "PUT", create, values(ask_id=9, price="0.3", disk=20))
    for bad, why in (({"price": 0.6, "disk": 20}, "has price 0.6"), ({"disk": 20}, "gives none"),
                     ({"price": 0.1, "disk": 60}, "disk lte 50 and disk gte 10")):
        with pytest.raises(Forbidden) as info:
            perms.authorize(doc, "PUT", create, values(ask_id=9, **bad))
        assert why in info.value.msg
    many = "/api/v0/instances"
    perms.authorize(doc, "DELETE", many, values(instance_ids=[1, 3]))
    with pytest.raises(Forbidden):
        perms.authorize(doc, "DELETE", many, values(instance_ids=[1, 4]))


@pytest.mark.parametrize(("new", "old", "added"), [
    (None, None, []),
    ({"api": {"misc": {}}}, None, []),
    (None, {"api": {"misc": {}}}, ["full access"]),
    ({"api": {"misc": {}, "user_read": {}}}, {"api": {"misc": {}}}, ["user_read"]),
    ({"api": {"instance_read": {}}}, {"api": {"instance_read": {"api.instance.show": {}}}},
     ["all of instance_read"]),
    ({"api": {"instance_read": {"api.instance.list": {}}}},
     {"api": {"instance_read": {"api.instance.show": {}}}}, ["api.instance.list (instance_read)"]),
    ({"api": {"instance_read": {"api.instance.show": {"constraints": {"id": {"eq": 5}}}}}},
     {"api": {"instance_read": {"api.instance.show": {"constraints": {"id": {"in": [5, 6]}}}}}}, []),
    ({"api": {"instance_read": {"api.instance.show": {"constraints": {"id": {"in": [5, 7]}}}}}},
     {"api": {"instance_read": {"api.instance.show": {"constraints": {"id": {"in": [5, 6]}}}}}},
     ["api.instance.show without the constraint id in [5, 6]"]),
    ({"api": {"instance_read": {"api.instance.show": {}}}},
     {"api": {"instance_read": {"api.instance.show": {"constraints": {"id": {"eq": 5}}}}}},
     ["api.instance.show without the constraint id eq 5"]),
    ({"api": {"instance_write": {"api.instance.create": {"constraints": {"price": {"lte": 0.2}}}}}},
     {"api": {"instance_write": {"api.instance.create": {"constraints": {"price": {"lte": 0.5}}}}}}, []),
    ({"api": {"instance_write": {"api.instance.create": {"constraints": {"price": {"lte": 0.9}}}}}},
     {"api": {"instance_write": {"api.instance.create": {"constraints": {"price": {"lte": 0.5}}}}}},
     ["without the constraint price lte 0.5"]),
])
def test_a_new_document_within_its_creators(new, old, added):
    found = perms.additions(new and check_document(new), old and check_document(old))
    assert len(found) == len(added)
    for text, want in zip(found, added, strict=True):
        assert want in text, found
