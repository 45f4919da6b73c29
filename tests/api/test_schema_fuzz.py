"""The API fuzzed from its own schema (schemathesis): every operation of /openapi.json, with
generated valid and invalid input, against the live server, never answers 5xx, and every
answer conforms to what the operation declares (status codes, content type, body schema,
Allow headers, 401 without a key).

Every check runs but "schema-valid input is accepted": a schema cannot say all a 400 can be
about (an offer that does not meet a template's filters, a disk larger than the machine's …).

``GPUYARD_SCHEMA_EXAMPLES`` sets the random cases per operation (default 200). The coverage
phase (boundary values of every field: about 30,000 cases in all) runs on SQLite only, where it
takes about three minutes; the PostgreSQL run gets the random cases."""

from __future__ import annotations

import os

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode

from gpuyard.api.app import openapi_document

EXAMPLES = int(os.environ.get("GPUYARD_SCHEMA_EXAMPLES", "200"))

schema = schemathesis.openapi.from_dict(openapi_document())
# Input beyond the size limits is refused before it is read: that is a rejection too.
schema.config.checks.negative_data_rejection.expected_statuses += ["413", "414"]
schema.config.phases.coverage.enabled = not os.environ.get("GPUYARD_TEST_DB")


@pytest.fixture(scope="module")
def http_session():
    with requests.Session() as session:  # one keep-alive connection for every case
        yield session


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_and_never_fails(case, live_server, fleet, alice, http_session):
    case.call_and_validate(base_url=live_server, headers=_key_unless_refused(case, alice.key),
                           session=http_session, excluded_checks=[positive_data_acceptance])


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
