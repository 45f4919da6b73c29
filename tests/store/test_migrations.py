"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL,
running them again is harmless, and upgrading keeps what the data meant."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.engine import make_url

from gpuyard.store.db import make_engine, migrate
from gpuyard.store.models import Base, ServerSetting, Template, TemplateVersion, User


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


@pytest.fixture
def fresh_engine(db_url: str, tmp_path) -> Iterator[Engine]:
    """An empty database of its own: a SQLite file, or its own schema on the test PostgreSQL."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'upgrade.db'}")
        yield engine
        engine.dispose()
        return
    schema = f"upgrade_{uuid.uuid4().hex[:12]}"
    admin = make_engine(db_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_upgrading_0005_data_marks_private_versions_and_drops_the_signing_secret(fresh_engine):
    migrate(fresh_engine, "0005")
    now = time.time()
    with fresh_engine.begin() as conn:
        conn.execute(User.__table__.insert(), {"id": 1, "username": "alice", "created_at": now})
        conn.execute(Template.__table__.insert(), {
            "id": 7, "creator_id": 1, "hash_id": "c" * 32, "created_at": now, "updated_at": now,
            "image": "img/x", "tag": "latest", "runtype": "args", "use_ssh": False,
            "ssh_direct": False, "jup_direct": False, "use_jupyter_lab": False, "extra_filters": {},
            "private": False,
        })
        for version, (hash_id, content) in enumerate(
            [("a" * 32, {"image": "img/x", "private": True}),
             ("b" * 32, {"image": "img/x"}),  # no private key: taken as private
             ("c" * 32, {"image": "img/x", "private": False})], start=1):
            conn.execute(TemplateVersion.__table__.insert(), {
                "template_id": 7, "version": version, "hash_id": hash_id, "content": content,
                "created_at": now,
            })
        conn.execute(ServerSetting.__table__.insert(), [
            {"key": "installation_id", "value": "abc"}, {"key": "session_secret", "value": "s" * 64},
        ])
    migrate(fresh_engine)
    with fresh_engine.connect() as conn:
        marks = conn.execute(select(TemplateVersion.hash_id, TemplateVersion.private)
                             .order_by(TemplateVersion.version)).all()
        assert [tuple(m) for m in marks] == [("a" * 32, True), ("b" * 32, True), ("c" * 32, False)]
        settings = conn.execute(select(ServerSetting.key, ServerSetting.value)).all()
        assert [tuple(s) for s in settings] == [("installation_id", "abc")]
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_0008_keeps_existing_keys_full_and_its_downgrade_drops_restricted_ones(fresh_engine):
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    from gpuyard.store import db as db_module
    from gpuyard.store.models import ApiKey

    migrate(fresh_engine, "0007")
    now = time.time()
    with fresh_engine.begin() as conn:
        conn.execute(User.__table__.insert(), {"id": 1, "username": "alice", "created_at": now})
        conn.execute(text("INSERT INTO api_keys (id, user_id, key_hash, created_at) "
                          "VALUES (1, 1, :h, :t)"), {"h": "a" * 64, "t": now})
    migrate(fresh_engine)
    with fresh_engine.begin() as conn:
        key = conn.execute(select(ApiKey.__table__)).one()
        assert (key.permissions, key.name, key.last_used_at) == (None, None, None)  # a full key
        conn.execute(ApiKey.__table__.insert(), {"id": 2, "user_id": 1, "key_hash": "b" * 64,
                                                 "created_at": now, "permissions": {"api": {"misc": {}}}})
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db_module.__file__).parent / "migrations"))
    with fresh_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    with fresh_engine.connect() as conn:
        # a restricted key would be a full key to the older release: it goes; the full one stays
        assert conn.execute(text("SELECT id FROM api_keys")).scalars().all() == [1]
        assert "secrets" not in inspect(conn).get_table_names()


def test_upgrading_0007_data_opens_a_usage_interval_for_what_exists(fresh_engine):
    from gpuyard.store.models import Instance, Machine, UsageInterval, Volume

    migrate(fresh_engine, "0007")
    now = time.time()
    machine = {"hostname": "m", "gpu_name": "RTX 4090", "num_gpus": 2, "gpu_ram": 24, "cpu_cores": 8,
               "cpu_ram": 64, "disk_space": 500, "inet_down": 1, "inet_up": 1, "dph_per_gpu": 0.4,
               "min_bid_per_gpu": 0.1, "reliability": 1, "created_at": now, "updated_at": now}
    instance = {"owner_id": 1, "machine_id": 1, "gpus": "0", "num_gpus": 1, "dph_base": 0.4,
                "storage_cost": 0.1, "image": "busybox", "tag": "latest", "disk_space": 72,
                "runtime": "simulated", "start_date": now, "created_at": now, "updated_at": now,
                "label": None, "is_bid": False, "bid_price": None, "destroyed_at": None}
    with fresh_engine.begin() as conn:
        conn.execute(User.__table__.insert(), {"id": 1, "username": "alice", "created_at": now})
        conn.execute(Machine.__table__.insert(), {"id": 1, **machine})
        conn.execute(Instance.__table__.insert(), [
            {**instance, "id": 1, "actual_status": "running", "label": "a"},
            {**instance, "id": 2, "gpus": "1", "actual_status": "running", "is_bid": True, "bid_price": 0.2},
            {**instance, "id": 3, "actual_status": "stopped"},
            {**instance, "id": 4, "actual_status": "stopped", "destroyed_at": now},
        ])
        conn.execute(Volume.__table__.insert(), [
            {"id": 1, "owner_id": 1, "machine_id": 1, "size": 72, "storage_cost": 0.1, "created_at": now,
             "deleted_at": None},
            {"id": 2, "owner_id": 1, "machine_id": 1, "size": 72, "storage_cost": 0.1, "created_at": now,
             "deleted_at": now},
        ])
    migrate(fresh_engine)
    with fresh_engine.connect() as conn:
        rows = conn.execute(select(UsageInterval.instance_id, UsageInterval.volume_id, UsageInterval.gpus,
                                   UsageInterval.gpu_dph, UsageInterval.disk_dph, UsageInterval.label,
                                   UsageInterval.ended_at).order_by(UsageInterval.id)).all()
        assert [tuple(r) for r in rows] == [
            (1, None, 1, 0.4, pytest.approx(0.01), "a", None),
            (2, None, 1, 0.2, pytest.approx(0.01), None, None),  # a bid at its bid
            (3, None, 0, 0.0, pytest.approx(0.01), None, None),  # stopped: disk only
            (None, 1, 0, 0.0, pytest.approx(0.01), None, None),
        ]
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    migrate_down(fresh_engine, "0007")  # and back
    assert "usage_intervals" not in inspect(fresh_engine).get_table_names()
    assert "stop_reason" not in {c["name"] for c in inspect(fresh_engine).get_columns("instances")}


def migrate_down(engine: Engine, revision: str) -> None:
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    import gpuyard.store.db

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(gpuyard.store.db.__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
