"""The API fuzzed from its own schema (schemathesis): every operation of /openapi.json, with
generated valid and invalid input, against the live server, never answers 5xx, and every
answer conforms to what the operation declares (status codes, content type, body schema,
Allow headers, 401 without a key).

Every check runs but "schema-valid input is accepted": a schema cannot say all a 400 can be
about (an offer that does not meet a template's filters, a disk larger than the machine's …).

``GPUYARD_SCHEMA_EXAMPLES`` sets the random cases per operation (default 50 on each database
pass, so a full run tries 100 per operation, with two seeds). The coverage phase (boundary
values of every field) runs on SQLite only, and not for the searches and lists: their bodies and query
arguments are the query language (dozens of fields with several operators each: about 12,000
coverage cases for one search, 90 % of the phase's time), which gets random cases here and its
own property tests in tests/query/test_properties.py. The other operations get their boundary
values (about 3,000 cases, under a minute)."""

from __future__ import annotations

import os

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode

from gpuyard.api.app import openapi_document

EXAMPLES = int(os.environ.get("GPUYARD_SCHEMA_EXAMPLES", "50"))
# The query-language operations: random cases only (see above).
SEARCHES = [("PUT", "/api/v0/search/asks"), ("POST", "/api/v0/bundles"), ("POST", "/api/v0/volumes/search"),
            ("GET", "/api/v1/instances"), ("GET", "/api/v0/instances"), ("GET", "/api/v0/template"),
            ("POST", "/api/v0/auth/apikeys")]


def _schema(coverage: bool):
    loaded = schemathesis.openapi.from_dict(openapi_document())
    # Input beyond the size limits is refused before it is read: that is a rejection too.
    loaded.config.checks.negative_data_rejection.expected_statuses += ["413", "414"]
    loaded.config.phases.coverage.enabled = coverage and not os.environ.get("GPUYARD_TEST_DB")
    return loaded


def _is_search(ctx) -> bool:
    return (ctx.operation.method.upper(), ctx.operation.path) in SEARCHES


schema = _schema(coverage=True).exclude(func=_is_search)
searches = _schema(coverage=False).include(func=_is_search)


@pytest.fixture(scope="module")
def http_session():
    with requests.Session() as session:  # one keep-alive connection for every case
        yield session


def _conforms(case, base_url: str, key: str, session) -> None:
    excluded = [positive_data_acceptance]
    if _object_in_query(case):
        excluded.append(negative_data_rejection)
    case.call_and_validate(base_url=base_url, headers=_key_unless_refused(case, key),
                           session=session, excluded_checks=excluded)


def _object_in_query(case) -> bool:
    """A negative case that puts an object or a list in a query argument: a query string cannot
    carry either (an object goes out as its keys, ``after_token=a`` for ``{"a": …}``, a list as
    the argument repeated, and an empty one as nothing), so what arrives is often valid, and
    its acceptance says nothing. The case still runs every other check (no 5xx, answers as
    declared)."""
    query = case.meta.components.get(ParameterLocation.QUERY) if case.meta else None
    return (query is not None and query.mode == GenerationMode.NEGATIVE
            and any(isinstance(value, (dict, list)) for value in (case.query or {}).values()))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_and_never_fails(case, live_server, fleet, alice, http_session):
    _conforms(case, live_server, alice.key, http_session)


@searches.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_search_conforms_and_never_fails(case, live_server, fleet, alice, http_session):
    _conforms(case, live_server, alice.key, http_session)


def _operations(loaded) -> set[tuple[str, str]]:
    return {(op.method.upper(), op.path) for op in (r.ok() for r in loaded.get_all_operations())}


def test_searches_are_fuzzed_without_coverage_only():
    """Every operation named in SEARCHES exists (a renamed route would otherwise lose its fuzzing
    silently), and the two sets cover the whole schema."""
    every = _operations(_schema(False))
    assert set(SEARCHES) <= every
    light, heavy = _operations(schema), _operations(searches)
    assert heavy == set(SEARCHES) and light | heavy == every and not light & heavy


def _key_unless_refused(case, key: str) -> dict[str, str]:
    """Alice's key, except when the case's headers are the invalid part (the key left out on
    purpose): then the call goes without one and must be refused (401). Adding the key there
    would turn a negative case into a positive one, and a negative case whose other invalid part
    did not survive serialization (an extra query argument with an empty list) would then be
    reported as "accepted"."""
    headers = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    if headers is not None and headers.mode == GenerationMode.NEGATIVE:
        return {}
    return {"Authorization": f"Bearer {key}"}
