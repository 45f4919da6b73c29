"""The Docker Engine runtime: one container per instance, on any Docker Engine API (Docker, or
Podman's compatible service), through the ``docker`` package. docs/runtime.md has the contract;
docs/docker-hosts.md how to set a machine up.

What an instance becomes:

* a container named ``gpuyard-i<instance id>-<random>``, labelled ``gpuyard.managed=true``,
  ``gpuyard.instance``, ``gpuyard.owner``, ``gpuyard.machine`` and ``gpuyard.created``;
* from ``image:tag``, pulled when the engine does not have it (with the registry login of the
  launch; credentials never reach a log), the pull's progress shown in ``status_msg``;
* the merged env as container environment, values verbatim (never through a host shell), plus
  ``GPUYARD_INSTANCE_ID``, ``PUBLIC_IPADDR`` and ``VAST_TCP_PORT_<port>`` for each published port;
* the merged ports published on the host ports the service chose from the machine's direct
  port range (one that something else on the machine holds is moved to the next free one);
* the main process by runtype (see :func:`main_process`), under the engine's init process
  (``init: true``), which passes the stop signal on and reaps orphans;
* the disk size as a storage limit where the engine supports one (overlay2 on xfs with pquota);
  elsewhere it runs without and says so;
* the instance's GPUs as a device request (``gpu_runtime: nvidia``) or CDI devices
  (``gpu_runtime: cdi``), none for ``gpu_runtime: none``;
* its volume as a named engine volume mounted at the mount path.

``create`` returns at once (``loading``); pulling, creating and starting happen in a worker
thread, so no API request waits for a pull.
"""

from __future__ import annotations

import re
import shlex
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from gpuyard.runtimes.base import (
    CommandResult,
    EngineUnreachable,
    ImageUnavailable,
    LaunchSpec,
    RuntimeError_,
    RuntimeState,
)

LABEL = "gpuyard.managed"
INSTALLATION = "gpuyard.installation"  # which gpuyard server made it
STOP_SECONDS = 5
ENGINE_TIMEOUT = 60  # seconds an engine call may stay silent
# How long a launch waits for the engine's verdict on an image it does not have (the pull's
# first layers, or its failure) before the rental goes ahead with the pull still running.
IMAGE_CHECK_SECONDS = 60.0
KEEP_ALIVE = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"
# How engines say a host port is held by something else (Podman, Docker)
PORT_TAKEN = ("address already in use", "port is already allocated")
NO_DISK_LIMIT = "disk limit not enforced: this engine's storage driver has none"
JUPYTER_PORT = 8080
NO_JUPYTER = "Jupyter needs jupyter on the image's PATH; this image has none, so no Jupyter runs"
NO_LAB = "JupyterLab is not in this image; Jupyter Notebook runs instead"
NO_INIT = "no init process: this engine has none (Docker ships docker-init; Podman needs catatonit)"


def _init_missing(msg: str) -> bool:
    """Whether an engine refused ``init: true`` because it has no init binary."""
    text = msg.lower()
    return any(word in text for word in ("docker-init", "catatonit", "container-init", "init binary"))


def main_process(spec: LaunchSpec) -> tuple[list[str] | None, list[str] | None]:
    """(entrypoint, command) for the container; None keeps the image's own.

    * runtype ``args``: a non-empty onstart is the main process, ``sh -c '<onstart>'``, and the
      instance runs as long as it does; without onstart the image's entrypoint runs with
      ``args`` (when given) as its command.
    * every other runtype (``ssh``, ``jupyter`` and their proxy/direct forms): ``sh -c`` runs
      the onstart script, then keeps the container up (an idle loop that exits on stop), so the
      instance stays running for ``exec``/SSH access after the script ends. The script's output
      is the container's log.
    """
    onstart = (spec.onstart or "").strip()
    if spec.runtype == "args":
        if onstart:
            return ["sh", "-c", spec.onstart or ""], []
        return None, list(spec.args) if spec.args else None
    script = f"{spec.onstart}\n{KEEP_ALIVE}" if onstart else KEEP_ALIVE
    if wants_jupyter(spec):
        script = f"{jupyter_script(spec)}\n{script}"
    return ["sh", "-c", script], []


def wants_jupyter(spec: LaunchSpec) -> bool:
    return "jupyter" in spec.runtype and bool(spec.jupyter_token)


def jupyter_script(spec: LaunchSpec) -> str:
    """Shell lines that start Jupyter in the background, before the onstart script (which may
    run for ever): Notebook, or Lab when asked for and the image has it, on port 8080 of all
    interfaces, in ``jupyter_dir`` (default ``/``), asking for the token of ``JUPYTER_TOKEN``
    (set in the container's environment). Its output joins the container's log."""
    root = shlex.quote(spec.jupyter_dir or "/")
    lab = ""
    if spec.jupyter_lab:
        lab = (f"if jupyter lab --version >/dev/null 2>&1; then mode=lab; "
               f"else echo {shlex.quote('gpuyard: ' + NO_LAB)}; fi; ")
    return (
        "if command -v jupyter >/dev/null 2>&1; then mode=notebook; " + lab
        + f"(cd {root} && exec jupyter \"$mode\" --ip=0.0.0.0 --port={JUPYTER_PORT} --no-browser "
        f"--allow-root --notebook-dir={root}) & "
        f"else echo {shlex.quote('gpuyard: ' + NO_JUPYTER)}; fi"
    )


def parse_login(login: str | None) -> tuple[dict[str, str] | None, str | None]:
    """``-u USER -p PASS [REGISTRY]`` (the official client's ``--login``) → auth config."""
    if not login:
        return None, None
    try:
        words = shlex.split(login)
    except ValueError:
        raise RuntimeError_("image_login is not '-u USER -p PASSWORD REGISTRY'") from None
    user = password = registry = None
    i = 0
    while i < len(words):
        if words[i] in ("-u", "--username") and i + 1 < len(words):
            user, i = words[i + 1], i + 2
        elif words[i] in ("-p", "--password") and i + 1 < len(words):
            password, i = words[i + 1], i + 2
        else:
            registry, i = words[i], i + 1
    if not user or password is None:
        raise RuntimeError_("image_login is not '-u USER -p PASSWORD REGISTRY'")
    auth = {"username": user, "password": password}
    if registry:
        auth["serveraddress"] = registry
    return auth, registry


def connection_options(url: str) -> dict[str, Any]:
    """How to reach an engine URL: ``ssh://user@host`` through the system ``ssh`` client (its
    keys and known_hosts, as the operator set them up); ``tcp://host:2376`` with TLS client
    certificates from ``DOCKER_CERT_PATH`` (ca.pem, cert.pem, key.pem) whenever
    ``DOCKER_TLS_VERIFY`` is set; ``unix://`` as is (docs/docker-hosts.md)."""
    import os

    if url.startswith("ssh://"):
        return {"use_ssh_client": True}
    if url.startswith("tcp://") and os.environ.get("DOCKER_TLS_VERIFY"):
        import docker

        certs = os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
        return {"tls": docker.tls.TLSConfig(
            client_cert=(os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem")),
            ca_cert=os.path.join(certs, "ca.pem"), verify=True)}
    return {}


def published_ports(attrs: dict[str, Any]) -> dict[str, int]:
    """A container's published host ports, ``"8000/tcp"`` → port, from its inspect data."""
    out: dict[str, int] = {}
    bindings = (attrs.get("HostConfig") or {}).get("PortBindings") or {}
    for key, binds in bindings.items():
        for bind in binds or []:
            try:
                out[key] = int((bind or {}).get("HostPort"))
                break
            except (TypeError, ValueError):
                continue
    return out


def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


@dataclass
class _Pull:
    """An image pull on one engine, shared by the launches that need the image."""

    image_uuid: str
    msg: str
    error: str | None = None
    known: threading.Event = field(default_factory=threading.Event)  # layers coming, or over
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Job:
    """A create in progress: pull, create, start."""

    msg: str
    done: bool = False
    error: str | None = None
    cancelled: bool = False
    no_init: bool = False  # the engine has no init binary: run without one
    no_disk_limit: bool = False  # the engine's storage driver has no size limit
    ports: dict[str, int] | None = None  # the host ports published (after any move)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Found:
    """A container of this server on an engine."""

    name: str
    created: float  # epoch, from its gpuyard.created label
    instance_id: int | None  # its gpuyard.instance label
    state: str  # the engine's word: running, exited, created …


class DockerEngine:
    """The runtime verbs against one engine URL."""

    name = "docker"

    def __init__(self, url: str, installation: str = "", gpu_runtime: str = "nvidia"):
        self.url = url
        self.installation = installation
        self.gpu_runtime = gpu_runtime
        self._client: Any = None
        self._jobs: dict[str, _Job] = {}
        self._pulls: dict[tuple[str, str], _Pull] = {}
        self._lock = threading.Lock()
        self.unreachable_since: float | None = None  # when it stopped answering (epoch)
        # What the engine was found to lack ("init", "disk limit"), remembered until the server
        # restarts so that later creates go without it at once, instead of being refused first.
        self.lacks: set[str] = set()

    # -- plumbing ------------------------------------------------------------------------------
    def client(self) -> Any:
        import docker

        if self._client is None:
            try:
                self._client = docker.DockerClient(
                    base_url=self.url, timeout=ENGINE_TIMEOUT, **connection_options(self.url)
                )
            except docker.errors.DockerException as exc:
                raise self._unreachable(f"cannot reach the Docker engine at {self.url}: {exc}") from None
        return self._client

    def _unreachable(self, msg: str) -> EngineUnreachable:
        with self._lock:
            if self.unreachable_since is None:
                self.unreachable_since = time.time()
            return EngineUnreachable(msg, self.unreachable_since)

    def _call(self, what: str, fn, *args: Any, **kwargs: Any) -> Any:
        import docker
        import requests

        try:
            answer = fn(*args, **kwargs)
        except docker.errors.NotFound:
            self.unreachable_since = None  # it answered
            raise
        except (requests.exceptions.ConnectionError, docker.errors.DockerException,
                requests.exceptions.RequestException) as exc:
            if isinstance(exc, docker.errors.APIError):
                self.unreachable_since = None
                raise RuntimeError_(f"{what}: {exc.explanation or exc}") from None
            raise self._unreachable(
                f"the Docker engine at {self.url} is unreachable ({what}): {exc}") from None
        self.unreachable_since = None
        return answer

    def _container(self, ref: str) -> Any | None:
        import docker

        try:
            return self._call("inspect", self.client().containers.get, ref)
        except docker.errors.NotFound:
            return None
        except RuntimeError_ as exc:
            if "no such container" in exc.msg.lower():  # Podman, of one being removed (a 500)
                return None
            raise

    # -- create (in a worker thread) -----------------------------------------------------------
    def create(self, spec: LaunchSpec) -> RuntimeState:
        """With the image on the engine, create and start the container now (a moment), so the
        engine's verdict is known when this returns; otherwise pull, create and start in a worker
        thread, and answer "loading" at once."""
        ref = f"gpuyard-i{spec.instance_id}-{uuid.uuid4().hex[:8]}"
        job = self._new_job(f"preparing {spec.image_uuid}")
        with self._lock:
            self._jobs[ref] = job
        # (an unreachable engine fails this first call, and so the create, at once)
        if self._has_image(spec.image_uuid):
            self._run_job(ref, spec, job, image_present=True)
            return self.status(ref)
        threading.Thread(target=self._run_job, args=(ref, spec, job), name=f"create-{ref}",
                         daemon=True).start()
        return RuntimeState("loading", job.msg, ref)

    def _new_job(self, msg: str) -> _Job:
        job = _Job(msg=msg, no_init="init" in self.lacks, no_disk_limit="disk limit" in self.lacks)
        job.notes += [note for lacked, note in (("disk limit", NO_DISK_LIMIT), ("init", NO_INIT))
                      if lacked in self.lacks]
        return job

    def _run_job(self, ref: str, spec: LaunchSpec, job: _Job, image_present: bool = False) -> None:
        try:
            if not image_present:
                self._ensure_image(spec, job)
            if job.cancelled:
                return
            job.msg = f"starting {spec.image_uuid}"
            self._create_and_start(ref, spec, job)
            if job.cancelled:
                self._remove(ref)
                return
            if wants_jupyter(spec):
                self._check_jupyter(ref, spec, job)
            job.msg = "running"
        except RuntimeError_ as exc:
            job.error = exc.msg
            self._remove(ref)
        except Exception as exc:  # noqa: BLE001 - reported to the user, never lost
            job.error = f"{type(exc).__name__}: {exc}"
            self._remove(ref)
        finally:
            job.done = True

    def _check_jupyter(self, ref: str, spec: LaunchSpec, job: _Job) -> None:
        """Say in the instance's status when the image has no Jupyter (or no Lab, when asked
        for): the instance runs anyway."""
        script = "command -v jupyter >/dev/null 2>&1 || { echo missing; exit 0; }"
        if spec.jupyter_lab:
            script += "; jupyter lab --version >/dev/null 2>&1 || echo nolab"
        try:
            found = self.run_command(ref, ["sh", "-c", script], 1000).output.split()
        except RuntimeError_:
            return  # the container ended meanwhile: its status says why
        if "missing" in found:
            job.notes.append(NO_JUPYTER)
        elif "nolab" in found:
            job.notes.append(NO_LAB)

    def _has_image(self, image_uuid: str) -> bool:
        import docker

        try:
            self._call("image lookup", self.client().images.get, image_uuid)
            return True
        except docker.errors.NotFound:
            return False

    def _pull(self, image: str, tag: str, login: str | None) -> _Pull:
        """The pull of ``image:tag`` in progress with this login, or a new one (in a thread of
        its own, so that a launch's check and its create share one pull)."""
        image_uuid = f"{image}:{tag}" if tag else image
        try:
            auth, _registry = parse_login(login)
        except RuntimeError_ as exc:
            raise ImageUnavailable(exc.msg) from None
        key = (image_uuid, login or "")
        with self._lock:
            pull = self._pulls.get(key)
            if pull is not None and not pull.done.is_set():
                return pull
            pull = self._pulls[key] = _Pull(image_uuid, msg=f"pulling {image_uuid}")
        threading.Thread(target=self._run_pull, args=(pull, image, tag, auth), daemon=True,
                         name=f"pull-{image_uuid}").start()
        return pull

    def _run_pull(self, pull: _Pull, image: str, tag: str, auth: dict[str, str] | None) -> None:
        import docker

        image_uuid = pull.image_uuid
        layers: dict[str, tuple[int, int]] = {}
        try:
            stream = self.client().api.pull(image, tag=tag or None, stream=True, decode=True,
                                            auth_config=auth)
            for event in stream:
                if "error" in event:
                    raise ImageUnavailable(f"pulling {image_uuid} failed: {event['error']}")
                if event.get("id"):  # layers are coming: the registry has the image
                    pull.known.set()
                detail = event.get("progressDetail") or {}
                if event.get("id") and detail.get("total"):
                    layers[event["id"]] = (int(detail.get("current", 0)), int(detail["total"]))
                if layers:
                    current = sum(c for c, _ in layers.values())
                    total = sum(t for _, t in layers.values())
                    pct = int(100 * current / total) if total else 0
                    pull.msg = f"pulling {image_uuid}: {pct}% ({_size(current)} of {_size(total)})"
            if not self._has_image(image_uuid):
                raise ImageUnavailable(f"image {image_uuid} not found after the pull")
        except docker.errors.NotFound:
            pull.error = (f"image {image_uuid} not found: check the name and tag, or the registry "
                          "login")
        except docker.errors.APIError as exc:
            pull.error = f"pulling {image_uuid} failed: {exc.explanation or exc}"
        except ImageUnavailable as exc:
            pull.error = exc.msg
        except RuntimeError_ as exc:
            pull.error = f"pulling {image_uuid} failed: {exc.msg}"
        except Exception as exc:  # noqa: BLE001 - reported to the user, never lost
            pull.error = f"pulling {image_uuid} failed: {exc}"
        finally:
            pull.done.set()
            pull.known.set()

    def prepare_image(self, image: str, tag: str, login: str | None = None,
                      wait: float = IMAGE_CHECK_SECONDS) -> str:
        """Before a rental (no database transaction open): make sure the engine can get the
        image. Answers "present" when the engine has it; otherwise starts the pull and waits for
        the engine's verdict: layers coming ("pulling": the pull goes on, and the instance shows
        its progress), the image pulled ("present"), or a failure (raises
        :class:`ImageUnavailable`). After ``wait`` seconds without a verdict (a registry that
        does not answer) it answers "pulling" too. Raises :class:`EngineUnreachable` when the
        engine does not answer (the image lookup is its first call)."""
        if self._has_image(f"{image}:{tag}" if tag else image):
            return "present"
        pull = self._pull(image, tag, login)
        pull.known.wait(wait)
        if pull.error:
            raise ImageUnavailable(pull.error)
        return "present" if pull.done.is_set() else "pulling"

    def _ensure_image(self, spec: LaunchSpec, job: _Job) -> None:
        if self._has_image(spec.image_uuid):
            return
        pull = self._pull(spec.image, spec.tag, spec.image_login)
        job.msg = pull.msg
        while not pull.done.wait(0.2):
            if job.cancelled:
                return
            job.msg = pull.msg
        job.msg = pull.msg
        if pull.error:
            raise ImageUnavailable(pull.error)

    def _environment(self, spec: LaunchSpec) -> dict[str, str]:
        env = dict(spec.env)
        env.setdefault("GPUYARD_INSTANCE_ID", str(spec.instance_id))
        if spec.public_ip:
            env.setdefault("PUBLIC_IPADDR", spec.public_ip)
        for key, host in spec.ports.items():
            port, _, proto = key.partition("/")
            env.setdefault(f"VAST_{proto.upper()}_PORT_{port}", str(host))
        if wants_jupyter(spec):
            env["JUPYTER_TOKEN"] = spec.jupyter_token or ""  # the row's token, whatever env says
        return env

    def _create_container(self, ref: str, spec: LaunchSpec, job: _Job) -> Any:
        import docker

        entrypoint, command = main_process(spec)
        options = dict(spec.options)
        kwargs: dict[str, Any] = {
            "name": ref,
            "environment": self._environment(spec),
            "labels": {
                LABEL: "true",
                INSTALLATION: self.installation,
                "gpuyard.instance": str(spec.instance_id),
                "gpuyard.owner": str(spec.owner_id),
                "gpuyard.machine": str(spec.machine_id),
                "gpuyard.created": str(int(time.time())),
            },
            "ports": {key: host for key, host in spec.ports.items()},
            "detach": True,
            # An init as PID 1: the main process gets the stop signal with its default action
            # (a shell as PID 1 would ignore SIGTERM and be killed after the grace period)
            "init": not job.no_init,
        }
        if entrypoint is not None:
            kwargs["entrypoint"] = entrypoint
        if command is not None:
            kwargs["command"] = command
        if "-h" in options:
            kwargs["hostname"] = options["-h"]
        if spec.volume_ref and spec.volume_mount:
            self._ensure_volume(spec.volume_ref)
            kwargs["volumes"] = {spec.volume_ref: {"bind": spec.volume_mount, "mode": "rw"}}
        gpu_runtime = spec.gpu_runtime or self.gpu_runtime
        if spec.gpus and gpu_runtime == "nvidia":
            kwargs["device_requests"] = [docker.types.DeviceRequest(
                device_ids=[str(g) for g in spec.gpus], capabilities=[["gpu"]])]
        elif spec.gpus and gpu_runtime == "cdi":
            kwargs["devices"] = [f"nvidia.com/gpu={g}" for g in spec.gpus]
        client = self.client()
        if spec.disk_gb and not job.no_disk_limit:
            try:
                return self._call("create", client.containers.create, spec.image_uuid,
                                  storage_opt={"size": f"{int(spec.disk_gb)}G"}, **kwargs)
            except RuntimeError_ as exc:
                if "storage" not in exc.msg.lower() and "size" not in exc.msg.lower():
                    raise
                self._remove(ref)
                job.no_disk_limit = True
                job.notes.append(NO_DISK_LIMIT)
                self.lacks.add("disk limit")
        return self._call("create", client.containers.create, spec.image_uuid, **kwargs)

    def _create_and_start(self, ref: str, spec: LaunchSpec, job: _Job) -> None:
        """Create the container and start it. A host port that something else on the machine
        holds (a process, a container gpuyard did not make) is moved to the next free port of
        the machine's range, and the container made again with it; an engine without an init
        binary gets the container again without ``init`` (and the instance's status says so)."""
        tried: set[int] = set()
        while True:
            try:
                container = self._create_container(ref, spec, job)
                if job.cancelled:
                    return
                self._call("start", container.start)
                job.ports = dict(spec.ports)
                return
            except RuntimeError_ as exc:
                moved = self._move_taken_port(spec, exc.msg, tried)
                if moved is not None:
                    self._remove(ref)
                    spec = replace(spec, ports=moved)
                    continue
                if job.no_init or not _init_missing(exc.msg):
                    raise
                self._remove(ref)
                job.no_init = True
                job.notes.append(NO_INIT)
                self.lacks.add("init")

    @staticmethod
    def _move_taken_port(spec: LaunchSpec, msg: str, tried: set[int]) -> dict[str, int] | None:
        """The spec's ports with the one the engine could not bind (``msg``) moved to the next
        free port of the machine's range; None when ``msg`` is about something else. Raises when
        the range has no free port left."""
        if not any(phrase in msg.lower() for phrase in PORT_TAKEN):
            return None
        mentioned = {int(n) for n in re.findall(r":(\d{1,5})\b", msg)}
        taken = [key for key, port in spec.ports.items() if port in mentioned]
        if not taken and len(spec.ports) == 1:
            taken = list(spec.ports)
        if not taken or spec.port_range is None:
            return None
        key = taken[0]
        tried.add(spec.ports[key])
        first, count = spec.port_range
        avoid = tried | set(spec.reserved_ports) | set(spec.ports.values())
        free = next((p for p in range(first, first + count) if p not in avoid), None)
        if free is None:
            raise RuntimeError_(
                f"host port {spec.ports[key]} for {key} is taken on the machine and its direct "
                f"port range ({first}-{first + count - 1}) has no free port left"
            )
        return {**spec.ports, key: free}

    def _ensure_volume(self, name: str) -> None:
        import docker

        client = self.client()
        try:
            self._call("volume lookup", client.volumes.get, name)
        except docker.errors.NotFound:
            self._call("volume create", client.volumes.create, name=name,
                       labels={LABEL: "true", INSTALLATION: self.installation})

    def _remove(self, ref: str) -> None:
        container = None
        try:
            container = self._container(ref)
        except RuntimeError_:
            return
        if container is not None:
            try:
                self._call("remove", container.remove, force=True)
            except Exception:  # noqa: BLE001 - already gone, or removed by a rival
                pass

    # -- the other verbs -----------------------------------------------------------------------
    def _job(self, ref: str) -> _Job | None:
        with self._lock:
            return self._jobs.get(ref)

    def status(self, ref: str) -> RuntimeState:
        job = self._job(ref)
        if job is not None and not job.done:
            return RuntimeState("loading", job.msg, ref)
        if job is not None and job.error:
            return RuntimeState("exited", f"error: {job.error}", ref)
        container = self._container(ref)
        if container is None:
            return RuntimeState("missing", None, ref)
        state = container.attrs.get("State", {})
        status = state.get("Status", "")
        notes = f" ({'; '.join(job.notes)})" if job is not None and job.notes else ""
        ports = published_ports(container.attrs)
        if status == "running":
            return RuntimeState("running", "running" + notes, ref, ports)
        if status in ("created", "configured"):
            image = container.attrs.get("Config", {}).get("Image")
            return RuntimeState("loading", f"starting {image}", ref, ports)
        if status in ("exited", "dead", "stopped"):
            # The engine cannot tell a stop from an exit; the reconciler, which knows whether
            # the instance should run, reads "exited" of an instance it stopped as "stopped".
            code, error = state.get("ExitCode"), state.get("Error")
            msg = f"exited with code {code}" + (f": {error}" if error else "")
            return RuntimeState("exited", msg, ref, ports)
        if status == "paused":
            return RuntimeState("stopped", "paused", ref, ports)
        return RuntimeState("loading", status or "unknown state", ref, ports)

    def start(self, ref: str) -> RuntimeState:
        container = self._container(ref)
        if container is None:
            return self.status(ref)
        self._call("start", container.start)
        return self.status(ref)

    def stop(self, ref: str) -> RuntimeState:
        job = self._job(ref)
        if job is not None and not job.done:
            job.cancelled = True
            return RuntimeState("stopped", "stopped before it started", ref)
        container = self._container(ref)
        if container is None:
            return self.status(ref)
        self._call("stop", container.stop, timeout=STOP_SECONDS)
        return self.status(ref)

    def restart(self, ref: str) -> RuntimeState:
        container = self._container(ref)
        if container is None:
            return self.status(ref)
        self._call("restart", container.restart, timeout=STOP_SECONDS)
        return self.status(ref)

    def destroy(self, ref: str) -> None:
        """Remove the container; raises (EngineUnreachable, …) when it may still be there."""
        import docker

        job = self._job(ref)
        if job is not None:
            job.cancelled = True
        container = self._container(ref)
        if container is not None:
            try:
                self._call("remove", container.remove, force=True)
            except docker.errors.NotFound:  # removed meanwhile
                pass
        with self._lock:
            if job is None or job.done:
                self._jobs.pop(ref, None)

    def logs(self, ref: str, tail: int | None = None) -> str:
        container = self._container(ref)
        if container is None:
            job = self._job(ref)
            return f"{job.error or job.msg}\n" if job is not None else ""
        import docker

        try:
            raw = self._call("logs", container.logs, tail=tail or "all")
        except docker.errors.NotFound:  # removed meanwhile
            return ""
        return raw.decode("utf-8", errors="replace")

    # -- direct SSH ----------------------------------------------------------------------------
    def install_ssh(self, ref: str, authorized_keys: str) -> Any:
        """Write ``authorized_keys`` into the running container and start its SSH server unless
        one listens on port 22 (:mod:`gpuyard.runtimes.direct_ssh`); the verdict as an
        ``SshSetup``. Raises :class:`EngineUnreachable` when the engine does not answer."""
        from gpuyard.runtimes import direct_ssh

        container = self._container(ref)
        if container is None or container.status != "running":
            return direct_ssh.SshSetup(None, "not running")
        try:
            self._call("write /root/.ssh/authorized_keys", direct_ssh.write_keys, container,
                       authorized_keys)
            return self._call("start the SSH server", direct_ssh.start_server, container)
        except EngineUnreachable:
            raise
        except (RuntimeError_, OSError) as exc:
            return direct_ssh.SshSetup(None, f"{direct_ssh.NO_SERVER} ({getattr(exc, 'msg', exc)})")
    def run_command(self, ref: str, argv: list[str], limit: int) -> CommandResult:
        """Run ``argv`` in the running container through the engine's exec API (no shell; the
        container's env), stdout and stderr merged in the order they come, at most ``limit``
        bytes kept: past that the output is cut and the command's connection closed."""
        import docker

        container = self._container(ref)
        if container is None:
            raise RuntimeError_("its container is gone from the machine; gpuyard makes it again "
                                "shortly (see logs --daemon-logs)")
        status = container.attrs.get("State", {}).get("Status")
        if status != "running":
            raise RuntimeError_(f"its container is {status}, not running; start the instance first")
        api = self.client().api
        try:
            exec_id = self._call("exec", api.exec_create, container.id, argv, stdout=True,
                                 stderr=True, stdin=False, tty=False)["Id"]
            stream = self._call("exec", api.exec_start, exec_id, stream=True, demux=False)
        except docker.errors.NotFound:
            raise RuntimeError_("the container is not running; start the instance first") from None
        import requests

        out = bytearray()
        truncated = False
        try:
            for chunk in stream:
                out += chunk
                if len(out) > limit:
                    del out[limit:]
                    truncated = True
                    break
        except (requests.exceptions.RequestException, OSError):
            raise RuntimeError_(f"it printed nothing for {ENGINE_TIMEOUT} s, so gpuyard stopped "
                                "waiting (the command may still run)") from None
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        code = None
        for _ in range(50):  # the exit status lags the end of the output a little
            info = self._call("exec inspect", api.exec_inspect, exec_id)
            if not info.get("Running"):
                code = info.get("ExitCode")
                break
            if truncated:
                break
            time.sleep(0.02)
        return CommandResult(code, out.decode("utf-8", errors="replace"), truncated)

    # -- ownership (restart re-attachment) -----------------------------------------------------
    def owned(self) -> dict[str, float]:
        """Containers this server made on the engine: name → creation time (epoch)."""
        return {found.name: found.created for found in self.containers()}

    def containers(self, instance_id: int | None = None) -> list[Found]:
        """This server's containers on the engine (of one instance), in one list call."""
        labels = [f"{LABEL}=true", f"{INSTALLATION}={self.installation}"]
        if instance_id is not None:
            labels.append(f"gpuyard.instance={instance_id}")
        found = self._call("list", self.client().containers.list, all=True,
                           filters={"label": labels}, sparse=True)
        out = []
        for c in found:
            attrs = c.attrs
            labels_of = attrs.get("Labels") or {}
            names = attrs.get("Names") or []
            name = (names[0] if names else c.id).lstrip("/")
            try:
                created = float(labels_of.get("gpuyard.created", "0"))
            except ValueError:
                created = 0.0
            try:
                owner = int(labels_of.get("gpuyard.instance", ""))
            except ValueError:
                owner = None
            out.append(Found(name, created, owner, attrs.get("State") or ""))
        return out

    def states(self, refs: list[str]) -> dict[str, str]:
        """The engine's status of each of ``refs`` it has ("running", "exited", …), one list
        call for the whole engine; those it does not have are left out."""
        wanted = set(refs)
        found = {c.name: c.state for c in self.containers() if c.name in wanted}
        with self._lock:  # a create in flight: not on the engine yet, but not lost either
            for ref in wanted - set(found):
                job = self._jobs.get(ref)
                if job is not None and not job.done:
                    found[ref] = "loading"
        return found

    def remove_strays(self, instance_id: int, keep: str | None) -> list[str]:
        """Remove the instance's containers other than ``keep`` (left by a process that died
        between creating one and recording it); the names removed."""
        import docker

        removed = []
        for found in self.containers(instance_id):
            if found.name == keep or self.busy(found.name):
                continue
            try:
                self._call("remove", self.client().api.remove_container, found.name, force=True)
            except docker.errors.NotFound:
                pass
            removed.append(found.name)
        return removed

    def ping(self, timeout: float) -> None:
        """Raise EngineUnreachable unless the engine answers a ping within ``timeout`` seconds
        (a client of its own, so a slow engine never holds up the verbs' client)."""
        import docker

        try:
            client = docker.APIClient(base_url=self.url, timeout=timeout,
                                      **connection_options(self.url))
        except docker.errors.DockerException as exc:
            raise self._unreachable(f"cannot reach the Docker engine at {self.url}: {exc}") from None
        try:
            self._call("ping", client.ping)
        finally:
            client.close()

    def busy(self, ref: str) -> bool:
        job = self._job(ref)
        return job is not None and not job.done

    def remove_volume(self, name: str) -> None:
        import docker

        try:
            volume = self._call("volume lookup", self.client().volumes.get, name)
        except docker.errors.NotFound:
            return
        self._call("volume remove", volume.remove, force=True)


class DockerRuntime:
    """The ``docker`` runtime: one :class:`DockerEngine` per engine URL (a machine's
    ``docker_url``, or the server's default)."""

    name = "docker"

    def __init__(self, default_url: str | None = None, installation: str = ""):
        self.default_url = default_url
        self.installation = installation
        self._engines: dict[str, DockerEngine] = {}
        self._lock = threading.Lock()

    def at(self, url: str | None) -> DockerEngine:
        url = url or self.default_url
        if not url:
            raise RuntimeError_(
                "this machine has no docker_url and the server has no default engine "
                "(gpuyard serve --docker-url URL, or DOCKER_HOST)"
            )
        with self._lock:
            engine = self._engines.get(url)
            if engine is None:
                engine = self._engines[url] = DockerEngine(url, self.installation)
            return engine

    def engines(self) -> list[DockerEngine]:
        with self._lock:
            return list(self._engines.values())
