"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL,
and running them again is harmless."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from gpuyard.store.db import migrate
from gpuyard.store.models import Base


def test_migrated_schema_matches_the_models(app):
    engine = app.state.engine
    migrate(engine)  # a second run at start-up changes nothing
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_no_plain_index_on_flag_columns(app):
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(app.state.engine).get_indexes("templates")}
    for flag in ("use_ssh", "ssh_direct", "jup_direct", "private", "recommended"):
        assert [flag] not in indexes.values()
    assert indexes["ix_templates_count_created"] == ["count_created"]
    assert "ix_templates_recommended_only" in indexes
