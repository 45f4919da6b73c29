"""Tables. Timestamps are UTC epoch seconds (floats), as the Vast wire carries them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str | None] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    balance: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[float] = mapped_column(Float)


class ApiKey(Base):
    """API keys are stored as SHA-256 digests; the plain key is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float)


class Template(Base):
    """A template's current state: its newest content plus bookkeeping, one row per template.

    Every searchable field is a real, indexed column so that queries compile to SQL WHERE clauses.
    Older versions live in ``template_versions``.
    """

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    hash_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    updated_at: Mapped[float] = mapped_column(Float)
    deleted_at: Mapped[float | None] = mapped_column(Float)
    count_created: Mapped[int] = mapped_column(Integer, default=0, index=True)
    recent_create_date: Mapped[float | None] = mapped_column(Float, index=True)
    recommended: Mapped[bool] = mapped_column(Boolean, default=False)
    default_tag: Mapped[str | None] = mapped_column(String(200), index=True)
    volume_info: Mapped[Any | None] = mapped_column(JSON)

    # content (see services/template_content.py for the canonical form)
    name: Mapped[str | None] = mapped_column(String(500), index=True)
    image: Mapped[str] = mapped_column(String(500), index=True)
    tag: Mapped[str] = mapped_column(String(200), index=True)
    desc: Mapped[str | None] = mapped_column(Text)
    readme: Mapped[str | None] = mapped_column(Text)
    readme_visible: Mapped[bool] = mapped_column(Boolean, default=True)
    env: Mapped[str | None] = mapped_column(Text)
    onstart: Mapped[str | None] = mapped_column(Text)
    runtype: Mapped[str] = mapped_column(String(20))
    args_str: Mapped[str | None] = mapped_column(Text)
    use_ssh: Mapped[bool] = mapped_column(Boolean)
    ssh_direct: Mapped[bool] = mapped_column(Boolean)
    jup_direct: Mapped[bool] = mapped_column(Boolean)
    jupyter_dir: Mapped[str | None] = mapped_column(String(500))
    use_jupyter_lab: Mapped[bool] = mapped_column(Boolean)
    docker_login_repo: Mapped[str | None] = mapped_column(String(500), index=True)
    extra_filters: Mapped[dict] = mapped_column(JSON)
    recommended_disk_space: Mapped[float | None] = mapped_column(Float, index=True)
    href: Mapped[str | None] = mapped_column(String(2000))
    repo: Mapped[str | None] = mapped_column(String(2000))
    private: Mapped[bool] = mapped_column(Boolean)

    # No plain indexes on true/false columns: without statistics SQLite takes any equality on an
    # index as selective and scans half the table through it (bench/README.md). The one flag
    # worth an index is "on the recommended list", which few templates are: a partial index.
    __table_args__ = (
        Index("ix_templates_creator_hash", "creator_id", "hash_id"),
        Index(
            "ix_templates_recommended_only",
            "id",
            sqlite_where=text("recommended = 1"),
            postgresql_where=text("recommended = true"),
        ),
    )


class TemplateVersion(Base):
    """One immutable version of a template: the content a hash names, forever."""

    __tablename__ = "template_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    hash_id: Mapped[str] = mapped_column(String(32), index=True)
    content: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("uq_template_versions_tpl_ver", "template_id", "version", unique=True),)
