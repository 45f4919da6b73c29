"""The PostgreSQL pass's selection (tests/conftest.py POSTGRESQL_PASS) names test files and
folders that exist: a renamed one would otherwise drop out of that pass without a word."""

from __future__ import annotations

from pathlib import Path

from backend_passes import POSTGRESQL_PASS

TESTS = Path(__file__).parent


def test_every_postgresql_pass_entry_exists():
    missing = [entry for entry in POSTGRESQL_PASS if not (TESTS / entry).exists()]
    assert missing == []


def test_the_postgresql_pass_keeps_the_api_and_the_cluster_tests():
    assert "api/" in POSTGRESQL_PASS and "cli/test_cluster.py" in POSTGRESQL_PASS
    assert all(entry.endswith(("/", ".py")) for entry in POSTGRESQL_PASS)
