"""Shared fixtures of the CLI tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The environment of a gpuyard process with its own data and config folders."""
    e = dict(os.environ)
    e.pop("GPUYARD_DB", None)
    e["XDG_DATA_HOME"] = str(tmp_path / "data")
    e["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return e
