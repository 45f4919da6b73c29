"""One settings object, built at start-up from flags and the environment (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8686
RUNTIMES = ("simulated", "docker")
DEFAULT_MAX_BODY = 1024 * 1024


def data_dir() -> Path:
    """``$XDG_DATA_HOME/gpuyard`` (``~/.local/share/gpuyard`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gpuyard"


_default_data_dir = data_dir  # Settings.build's parameter of the same name hides the function


def default_db_url(folder: Path | None = None) -> str:
    return f"sqlite:///{(folder or data_dir()) / 'gpuyard.db'}"


@dataclass(frozen=True)
class Settings:
    db_url: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    runtime: str = "simulated"
    # The Docker Engine for docker machines that name no docker_url (DOCKER_HOST by default).
    docker_url: str | None = None
    # Searches return at most this many rows when the caller gives no limit.
    default_search_limit: int = 1000
    max_search_limit: int = 10000
    # The simulated runtime's boot time: instances are "loading" this long before "running".
    sim_boot_seconds: float = 2.0
    # How often the reconciler sweeps for instances whose runtime state lags their row.
    reconcile_seconds: float = 0.25
    # Request bodies over this many bytes are refused (413) before they are read whole.
    max_body: int = DEFAULT_MAX_BODY
    # On SIGTERM, requests in flight get this many seconds to finish before they are cancelled.
    graceful_seconds: float = 10.0
    # Service calls that only read run at most this many at a time (more only fight over the
    # GIL); writes have their own limit, so one waiting for a lock never holds up reads.
    read_threads: int = field(default_factory=lambda: max(2, os.cpu_count() or 2))
    write_threads: int = 16
    # Where the server keeps its files: the default SQLite database, and the server secret
    # (``secret_key``) when GPUYARD_SECRET_KEY is not set (docs/security.md).
    data_dir: Path = field(default_factory=_default_data_dir)
    # Credit (docs/usage.md): launching needs a positive balance, and the running instances of
    # accounts whose balance reached zero are stopped every ``billing_seconds``.
    credit: bool = False
    billing_seconds: float = 30.0
    # The SSH gateway (docs/access.md): run in this process (``gpuyard serve`` turns it on), the
    # address users reach it at, the address it listens on (None: ``ssh_host`` when that is an
    # IP address, else all), and the port range instances get their ports from.
    gateway: bool = False
    ssh_host: str = DEFAULT_HOST
    ssh_listen: str | None = None
    ssh_ports: tuple[int, int] = (2200, 2999)
    # Cluster roles (docs/architecture.md, "Roles"): an instance lease lasts this long unless
    # renewed (a killed process's work is taken over after at most this), engines are pinged
    # every ``heartbeat_seconds`` with ``engine_timeout`` seconds to answer, and a machine goes
    # offline after ``heartbeat_failures`` failed heartbeats in a row. At most
    # ``engine_concurrency`` runtime calls are in flight on one engine.
    lease_seconds: float = 10.0
    heartbeat_seconds: float = 5.0
    heartbeat_failures: int = 3
    engine_timeout: float = 5.0
    engine_concurrency: int = 4
    # Maintenance windows (docs/hosts.md): how often bids are stopped on machines whose window
    # has started, and resumed where it has ended.
    maintenance_seconds: float = 30.0

    @classmethod
    def build(
        cls,
        db_url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        runtime: str | None = None,
        sim_boot_seconds: float | None = None,
        docker_url: str | None = None,
        max_body: int | None = None,
        graceful_seconds: float | None = None,
        data_dir: Path | str | None = None,
        credit: bool | None = None,
        gateway: bool = False,
        ssh_host: str | None = None,
        ssh_listen: str | None = None,
        ssh_ports: tuple[int, int] | None = None,
    ) -> Settings:
        """Flags win over the environment (``GPUYARD_DB``), which wins over the defaults."""
        folder = Path(data_dir) if data_dir is not None else _default_data_dir()
        return cls(
            db_url=db_url or os.environ.get("GPUYARD_DB") or default_db_url(folder),
            data_dir=folder,
            host=host or DEFAULT_HOST,
            port=port or DEFAULT_PORT,
            runtime=runtime or "simulated",
            docker_url=docker_url or os.environ.get("DOCKER_HOST") or None,
            sim_boot_seconds=(
                sim_boot_seconds
                if sim_boot_seconds is not None
                else float(os.environ.get("GPUYARD_SIM_BOOT_SECONDS") or 2.0)
            ),
            max_body=max_body or int(os.environ.get("GPUYARD_MAX_BODY") or DEFAULT_MAX_BODY),
            graceful_seconds=10.0 if graceful_seconds is None else graceful_seconds,
            read_threads=int(os.environ.get("GPUYARD_READ_THREADS") or max(2, os.cpu_count() or 2)),
            credit=credit if credit is not None else _flag(os.environ.get("GPUYARD_CREDIT")),
            gateway=gateway,
            ssh_host=ssh_host or DEFAULT_HOST,
            ssh_listen=ssh_listen or None,
            ssh_ports=ssh_ports or (2200, 2999),
            lease_seconds=_number("GPUYARD_LEASE_SECONDS", 10.0),
            heartbeat_seconds=_number("GPUYARD_HEARTBEAT_SECONDS", 5.0),
            heartbeat_failures=int(_number("GPUYARD_HEARTBEAT_FAILURES", 3)),
            engine_timeout=_number("GPUYARD_ENGINE_TIMEOUT", 5.0),
            engine_concurrency=int(_number("GPUYARD_ENGINE_CONCURRENCY", 4)),
        )


def _number(name: str, default: float) -> float:
    """A positive number from the environment variable ``name`` (``default`` when unset)."""
    text = (os.environ.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {text!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be more than 0, not {text}")
    return value


def _flag(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes", "on")
