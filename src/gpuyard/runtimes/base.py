"""The runtime contract (docs/runtime.md): a small set of idempotent verbs that take a resolved
launch spec or a runtime reference and return plain data. Runtimes never touch the database;
the reconciler calls them outside any transaction and records what they report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

# What a runtime reports. "missing" means it has nothing for that reference (never made, or
# lost, e.g. the simulated runtime after a server restart). The reconciler adds "unknown" for
# an instance whose engine does not answer (it raised EngineUnreachable).
STATUSES = ("loading", "running", "stopped", "exited", "missing")


@dataclass(frozen=True)
class LaunchSpec:
    """Everything a runtime needs to run one instance, already merged and checked."""

    instance_id: int
    owner_id: int
    machine_id: int
    image: str
    tag: str
    env: dict[str, str] = field(default_factory=dict)  # variables, passed verbatim
    ports: dict[str, int] = field(default_factory=dict)  # "8000/tcp" → host port
    # The machine's direct port range (first, count), and the host ports of it that other
    # instances hold: where a runtime may move a port that something else on the machine took.
    port_range: tuple[int, int] | None = None
    reserved_ports: frozenset[int] = frozenset()
    options: tuple[tuple[str, str], ...] = ()  # -h / -v / -n as given
    onstart: str | None = None
    runtype: str = "ssh"
    args: tuple[str, ...] | None = None
    disk_gb: float = 10.0
    gpus: tuple[int, ...] = ()
    gpu_name: str = ""
    image_login: str | None = field(default=None, repr=False)  # a password: never in a log line
    volume_ref: str | None = None
    volume_mount: str | None = None
    docker_url: str | None = None
    gpu_runtime: str | None = None  # "nvidia", "cdi" or "none" (docker runtime)
    public_ip: str | None = None

    @property
    def image_uuid(self) -> str:
        return f"{self.image}:{self.tag}" if self.tag else self.image


@dataclass(frozen=True)
class RuntimeState:
    status: str
    msg: str | None = None
    ref: str | None = None
    # The host ports really published ("8000/tcp" → port), when the runtime knows them; they
    # differ from the spec's when a port was taken on the machine and the runtime moved it.
    ports: dict[str, int] | None = None
    # Whether an SSH server in the container takes the instance's keys (direct SSH); None: not
    # looked at this time (the recorded verdict stays).
    direct_ssh: bool | None = None


class RuntimeError_(Exception):  # noqa: N801 - not the builtin RuntimeError
    """A runtime could not do what was asked; ``msg`` is shown to the user as status_msg."""

    def __init__(self, msg: str):
        super().__init__(msg)
        self.msg = msg


class EngineUnreachable(RuntimeError_):
    """The machine's engine did not answer (down, or the network to it is); ``since``: when it
    first failed to answer (epoch seconds)."""

    def __init__(self, msg: str, since: float | None = None):
        super().__init__(msg)
        self.since = since if since is not None else time.time()


class ImageUnavailable(RuntimeError_):
    """The engine cannot get the launch's image (no such image or tag, a registry that refuses,
    a bad registry login)."""


class Runtime(Protocol):
    name: str

    def create(self, spec: LaunchSpec) -> RuntimeState:
        """Make and start the instance; the returned state carries the new ``ref``."""

    def status(self, ref: str) -> RuntimeState: ...

    def start(self, ref: str) -> RuntimeState: ...

    def stop(self, ref: str) -> RuntimeState: ...

    def restart(self, ref: str) -> RuntimeState: ...

    def destroy(self, ref: str) -> None:
        """Remove it; removing something already gone is not an error."""

    def logs(self, ref: str, tail: int | None = None) -> str: ...
