"""Fixtures for the deployment tests: gpuyard's image, and a database of its own for what runs
in containers (never the one the test session's server uses)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from image import gpuyard_image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@pytest.fixture(scope="session")
def image() -> str:
    return gpuyard_image()


@pytest.fixture
def scratch_db() -> Iterator[str | None]:
    """On the PostgreSQL run, the URL of a new, empty database in the test cluster (dropped
    afterwards); on the SQLite run None: the containers then keep SQLite in their volume."""
    url = os.environ.get("GPUYARD_TEST_DB")
    if not url:
        yield None
        return
    name = f"gpuyard_deploy_{secrets.token_hex(4)}"
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
