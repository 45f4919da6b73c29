"""Tables. Timestamps are UTC epoch seconds (floats), as the Vast wire carries them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gpuyard.store.crypto import EncryptedText


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
    # Set by ``gpuyard admin disable-user``: the user's keys are refused until enable-user.
    disabled_at: Mapped[float | None] = mapped_column(Float)


class ApiKey(Base):
    """API keys are stored as SHA-256 digests; the plain key is shown once, at creation. A
    revoked key (``gpuyard admin revoke-key``) stays, refused, so that it can be named."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)
    name: Mapped[str | None] = mapped_column(String(200))
    # Vast's permission document in normal form (services/accounts/permissions.py); NULL: a full key.
    permissions: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    key_params: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))  # kept, not interpreted
    # Written at most about once a minute per key, off the request path (services/accounts/apikeys.py).
    last_used_at: Mapped[float | None] = mapped_column(Float)


class Secret(Base):
    """An account secret (env var): injected into the user's new containers, never stored on an
    instance row. The value is encrypted at rest (store/crypto.py)."""

    __tablename__ = "secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("uq_secrets_user_name", "user_id", "name", unique=True),)


class SshKey(Base):
    """An account SSH public key: it logs into every instance of its owner. ``public_key`` is the
    normalised OpenSSH line ``type base64 [comment]``; ``fingerprint`` its ``SHA256:…``."""

    __tablename__ = "ssh_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("uq_ssh_keys_user_fingerprint", "user_id", "fingerprint", unique=True),)


class InstanceSshKey(Base):
    """A public key attached to one instance (``attach ssh``): it logs into that instance only,
    whoever holds it."""

    __tablename__ = "instance_ssh_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("uq_instance_ssh_keys_instance_fingerprint", "instance_id", "fingerprint",
                            unique=True),)


class ConsoleSession(Base):
    """A web console sign-in. The browser's (signed) cookie holds a random token; this row holds
    only its SHA-256 digest. Every console request looks the row up, so signing out, revoking
    the key, deleting it or disabling the user ends the session for any copy of the cookie."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)


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
    # The template as searches answer it, as JSON without "id" (kept by services/catalog/template_rows.py
    # on every change; NULL means "compute it"): a search of hundreds of templates then costs one
    # read of this column per row instead of building and encoding each row.
    row_json: Mapped[str | None] = mapped_column(Text, deferred=True)

    # content (see services/catalog/template_content.py for the canonical form)
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
    """One immutable version of a template: the content a hash names, forever.

    ``private`` repeats the content's ``private`` as a column: other users list only the
    versions that were public when saved (services/catalog/templates.py), filtered in SQL."""

    __tablename__ = "template_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    hash_id: Mapped[str] = mapped_column(String(32), index=True)
    content: Mapped[dict] = mapped_column(JSON)
    private: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("uq_template_versions_tpl_ver", "template_id", "version", unique=True),)


class Machine(Base):
    """A registered host. Sizes are stored as the host owner gives them (GB, $/hour per GPU);
    offers convert them to the wire's units. ``disk_used`` is the disk taken by live instances
    and volumes, kept up to date by the allocation service."""

    __tablename__ = "machines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), unique=True)
    host_id: Mapped[int] = mapped_column(Integer, default=1)
    gpu_name: Mapped[str] = mapped_column(String(100), index=True)
    num_gpus: Mapped[int] = mapped_column(Integer)
    gpu_ram: Mapped[float] = mapped_column(Float)  # GB per GPU
    cpu_cores: Mapped[int] = mapped_column(Integer)
    cpu_ram: Mapped[float] = mapped_column(Float)  # GB
    disk_space: Mapped[float] = mapped_column(Float)  # GB
    disk_used: Mapped[float] = mapped_column(Float, default=0.0)
    inet_down: Mapped[float] = mapped_column(Float)
    inet_up: Mapped[float] = mapped_column(Float)
    dph_per_gpu: Mapped[float] = mapped_column(Float)
    min_bid_per_gpu: Mapped[float] = mapped_column(Float)
    storage_cost: Mapped[float] = mapped_column(Float, default=0.10)  # $/GB/month
    reliability: Mapped[float] = mapped_column(Float)
    geolocation: Mapped[str | None] = mapped_column(String(100))
    verified: Mapped[bool] = mapped_column(Boolean, default=True)
    direct_port_start: Mapped[int] = mapped_column(Integer, default=40000)
    direct_port_count: Mapped[int] = mapped_column(Integer, default=0)
    runtime: Mapped[str | None] = mapped_column(String(20))  # None: the server's default
    docker_url: Mapped[str | None] = mapped_column(String(500))
    public_ipaddr: Mapped[str | None] = mapped_column(String(100))
    end_date: Mapped[float | None] = mapped_column(Float)  # listed until (epoch seconds)
    # Hardware details with defaults derived from the GPU model (see services/market/fleet.py).
    # JSONB on PostgreSQL: offer searches read ~25 of these keys per row, and plain JSON is
    # re-parsed from text on every read (bench/README.md).
    specs: Mapped[dict] = mapped_column(JSON().with_variant(JSONB(), "postgresql"), default=dict)
    listed: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    # The machine's engine as the workers' heartbeats last saw it (gpuyard/control/heartbeats.py):
    # after ``engine_failures`` reached the threshold the machine is offline (no offers, its
    # instances "unknown") until its engine answers again.
    engine_online: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    engine_failures: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    engine_checked_at: Mapped[float | None] = mapped_column(Float)
    engine_error: Mapped[str | None] = mapped_column(String(500))
    # The user who hosts it (docs/hosts.md): sees and prices it with the host commands. A plain
    # column (users are disabled, never deleted): SQLite cannot add a foreign key to a table
    # that others reference without rebuilding it.
    owner_id: Mapped[int | None] = mapped_column(Integer, index=True)
    min_chunk: Mapped[int | None] = mapped_column(Integer)  # fewest GPUs an offer holds (NULL: 1)
    # When the owner last set prices (list machine); a fleet file reload then keeps them.
    prices_set_at: Mapped[float | None] = mapped_column(Float)
    # The next (or current) maintenance window, copied from MachineMaintenance: offers end at its
    # start, bids are stopped during it (services/machines/maintenance.py).
    maint_start: Mapped[float | None] = mapped_column(Float)
    maint_end: Mapped[float | None] = mapped_column(Float)


class MachineMaintenance(Base):
    """A maintenance window an owner scheduled (``schedule maint``)."""

    __tablename__ = "machine_maintenances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    start_time: Mapped[float] = mapped_column(Float)
    end_time: Mapped[float] = mapped_column(Float)
    category: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)


class Ask(Base):
    """An offer: specific free GPUs of one machine (``kind`` "gpu"), or a machine's free disk
    (``kind`` "volume"). Rows are recomputed whenever a machine's allocation changes; an id keeps
    naming the same GPUs and is inactive while any of them is rented on demand."""

    __tablename__ = "asks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    gpus: Mapped[str] = mapped_column(String(200))  # "0,1,3" (GPU indices), "" for volume asks
    num_gpus: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        Index("uq_asks_machine_kind_gpus", "machine_id", "kind", "gpus", unique=True),
        {"sqlite_autoincrement": True},
    )


class Instance(Base):
    """A rented instance: the GPUs it holds, its merged launch configuration, and its state.

    ``intended_status`` is what the user asked for; ``outbid`` is the allocation's verdict for
    bids; ``actual_status`` is what the runtime last reported. Destroyed rows stay (with
    ``destroyed_at``) until the runtime has removed what it made for them."""

    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    ask_id: Mapped[int | None] = mapped_column(Integer)
    gpus: Mapped[str] = mapped_column(String(200))
    num_gpus: Mapped[int] = mapped_column(Integer)
    is_bid: Mapped[bool] = mapped_column(Boolean, default=False)
    bid_price: Mapped[float | None] = mapped_column(Float)  # $/hour for the whole instance
    dph_base: Mapped[float] = mapped_column(Float)  # on-demand GPU price at rental
    storage_cost: Mapped[float] = mapped_column(Float)  # $/GB/month at rental
    outbid: Mapped[bool] = mapped_column(Boolean, default=False)
    outbid_msg: Mapped[str | None] = mapped_column(Text)

    label: Mapped[str | None] = mapped_column(String(500))
    image: Mapped[str] = mapped_column(String(500))
    tag: Mapped[str] = mapped_column(String(200))
    env: Mapped[str | None] = mapped_column(Text)  # merged, Docker-flag form
    onstart: Mapped[str | None] = mapped_column(Text)
    runtype: Mapped[str | None] = mapped_column(String(60))
    args: Mapped[list | None] = mapped_column(JSON)
    # Registry login ("-u USER -p PASSWORD REGISTRY"): encrypted at rest (store/crypto.py), never
    # returned in rows, and deferred: only the reconciler's launch spec loads (and decrypts) it.
    image_login: Mapped[str | None] = mapped_column(EncryptedText, deferred=True)
    # Jupyter runtypes: the token the instance's Jupyter asks for (docs/instances.md)
    jupyter_token: Mapped[str | None] = mapped_column(EncryptedText)
    disk_space: Mapped[float] = mapped_column(Float)
    extra_filters: Mapped[dict] = mapped_column(JSON, default=dict)
    launch: Mapped[dict] = mapped_column(JSON, default=dict)  # remaining merged options
    template_id: Mapped[int | None] = mapped_column(Integer, index=True)
    template_hash_id: Mapped[str | None] = mapped_column(String(32))
    template_name: Mapped[str | None] = mapped_column(String(500))
    port_map: Mapped[dict] = mapped_column(JSON, default=dict)  # "8000/tcp" → host port
    # An SSH server runs in the container and takes the instance's keys (direct SSH, a direct
    # runtype on an image with sshd or dropbear): only then is 22/tcp reported in the row.
    direct_ssh: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    volume_id: Mapped[int | None] = mapped_column(ForeignKey("volumes.id"), index=True)
    volume_mount: Mapped[str | None] = mapped_column(String(1000))

    intended_status: Mapped[str] = mapped_column(String(20), default="running")
    actual_status: Mapped[str] = mapped_column(String(20), default="loading")
    cur_state: Mapped[str] = mapped_column(String(20), default="running")
    status_msg: Mapped[str | None] = mapped_column(Text)
    # Why gpuyard itself stopped the instance ("out of credit"): kept as its status_msg until it
    # is started again (services/ledger/usage.py).
    stop_reason: Mapped[str | None] = mapped_column(String(200))
    # Bumped by changes the runtime must act on (reboot, update from a template).
    generation: Mapped[int] = mapped_column(Integer, default=1)
    applied_generation: Mapped[int] = mapped_column(Integer, default=0)
    runtime: Mapped[str] = mapped_column(String(20))
    runtime_ref: Mapped[str | None] = mapped_column(String(200))
    # The SSH gateway's port for this instance and the address users reach it at, set by the
    # gateway once it listens there (docs/access.md); cleared when the instance is destroyed.
    ssh_port: Mapped[int | None] = mapped_column(Integer, index=True, unique=True)
    ssh_host: Mapped[str | None] = mapped_column(String(255))
    start_date: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    destroyed_at: Mapped[float | None] = mapped_column(Float, index=True)


class Volume(Base):
    """A local volume: disk on one machine, owned by one user, attached to at most one live
    instance at a time. It outlives instances; ``deleted_at`` marks a deleted one."""

    __tablename__ = "volumes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    ask_id: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[float] = mapped_column(Float)  # GB
    storage_cost: Mapped[float] = mapped_column(Float)
    runtime_ref: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)
    deleted_at: Mapped[float | None] = mapped_column(Float)


class InstanceEvent(Base):
    """What happened to an instance, in words (its daemon log)."""

    __tablename__ = "instance_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    at: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)


class LogRequest(Base):
    """A logs snapshot the client fetches from ``result_url`` (VAST-WIRE §6.6)."""

    __tablename__ = "log_requests"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float, index=True)


class ServerSetting(Base):
    """Facts about this gpuyard installation, e.g. its ``installation_id`` (the label that tells
    its containers from those of other gpuyard servers sharing an engine)."""

    __tablename__ = "server_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# -- accounts: usage, credit, quotas (docs/usage.md) --------------------------------------------


class UsageInterval(Base):
    """A stretch of time during which an instance or a volume accrued at constant rates.

    Written only when something that sets a rate changes (services/ledger/usage.py: the instance starts
    or stops running, a bid changes, it is destroyed …): the open interval (``ended_at`` NULL)
    is closed and a new one opened. Charges for any window are computed from these rows, so
    nothing is written while an instance simply keeps running."""

    __tablename__ = "usage_intervals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(10))  # "instance" | "volume"
    instance_id: Mapped[int | None] = mapped_column(Integer, index=True)
    volume_id: Mapped[int | None] = mapped_column(Integer, index=True)
    machine_id: Mapped[int] = mapped_column(Integer)
    template_id: Mapped[int | None] = mapped_column(Integer)
    template_name: Mapped[str | None] = mapped_column(String(500))
    label: Mapped[str | None] = mapped_column(String(500))
    gpus: Mapped[int] = mapped_column(Integer)  # GPUs accruing GPU time (0 unless running)
    gpu_dph: Mapped[float] = mapped_column(Float)  # $/hour for them (0 unless running)
    disk_gb: Mapped[float] = mapped_column(Float)
    disk_dph: Mapped[float] = mapped_column(Float)  # $/hour for the disk
    started_at: Mapped[float] = mapped_column(Float, index=True)
    ended_at: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_usage_intervals_user_started", "user_id", "started_at"),)


class CreditEntry(Base):
    """Credit the operator granted (a positive amount) or took back (negative)."""

    __tablename__ = "credit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount: Mapped[float] = mapped_column(Float)
    at: Mapped[float] = mapped_column(Float, index=True)
    note: Mapped[str | None] = mapped_column(String(500))


class UserQuota(Base):
    """A user's limits (NULL: no limit)."""

    __tablename__ = "user_quotas"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    max_gpus: Mapped[int | None] = mapped_column(Integer)
    max_dph: Mapped[float | None] = mapped_column(Float)
    max_volume_gb: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class Lease(Base):
    """A periodic job's turn: whoever moves ``expires_at`` forward runs the job this period
    (gpuyard/periodic.py), so that several worker processes run it once per period."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[float] = mapped_column(Float)


class InstanceLease(Base):
    """Which process may act on an instance's runtime until ``expires_at`` (gpuyard/control/
    leases.py): a worker or an API replica takes it before it calls the runtime, renews it while
    work it started runs (a pull, a create), and gives it back when done."""

    __tablename__ = "instance_leases"

    instance_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[float] = mapped_column(Float)
