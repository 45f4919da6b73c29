"""The simulated runtime: instances without containers, for demos, tests and offline automation.

It keeps its "containers" in memory. A new or started one is ``loading`` for ``boot_seconds``
and then ``running``; its log tells what a real machine would have done (pull, start, the
onstart script line by line, and the output of its ``echo`` lines). After a server restart it
has forgotten everything, so the reconciler creates the running instances again, as if the
machine had rebooted.

With ``shared=True`` (the app factory sets it on PostgreSQL, where several gpuyard processes act
on one fleet) the simulated machines are taken to be shared by those processes: a process asked
about a reference another one made adopts it (its box is rebuilt from the creation time the
reference carries), so an instance is never made again only because another process made it.
"""

from __future__ import annotations

import shlex
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gpuyard.runtimes.base import LaunchSpec, RuntimeState

MAX_LOG_LINES = 5000


@dataclass
class _Box:
    spec: LaunchSpec
    status: str
    ready_at: float
    log: list[str] = field(default_factory=list)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _echo_output(line: str, env: dict[str, str]) -> str | None:
    """What ``echo ...`` would print (variables expanded from the instance env), else None."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    if not words or words[0] != "echo":
        return None
    out = []
    for word in words[1:]:
        for name, value in sorted(env.items(), key=lambda kv: -len(kv[0])):
            word = word.replace("${" + name + "}", value).replace("$" + name, value)
        out.append(word)
    return " ".join(out)


class SimulatedRuntime:
    name = "simulated"
    in_memory = True  # no engine, no images: a rental needs no image check (Reconciler.checks_images)

    def __init__(self, boot_seconds: float = 0.0, clock: Callable[[], float] = time.monotonic,
                 shared: bool = False):
        self.boot_seconds = boot_seconds
        self.clock = clock  # tests pass one they move by hand
        self.shared = shared
        self._boxes: dict[str, _Box] = {}
        self._lock = threading.Lock()

    # -- helpers -------------------------------------------------------------------------------
    def _say(self, box: _Box, text: str) -> None:
        box.log.append(f"{_stamp()} {text}")
        del box.log[:-MAX_LOG_LINES]

    def _boot(self, box: _Box) -> None:
        spec = box.spec
        box.status = "loading"
        box.ready_at = self.clock() + self.boot_seconds
        gpus = ", ".join(map(str, spec.gpus)) or "none"
        self._say(box, f"starting container from {spec.image_uuid} on GPU(s) {gpus} ({spec.gpu_name})")
        if spec.volume_ref:
            self._say(box, f"mounting volume {spec.volume_ref} at {spec.volume_mount}")
        for port, host in sorted(spec.ports.items()):
            self._say(box, f"publishing container port {port} on host port {host}")
        if spec.runtype == "args" and spec.args:
            self._say(box, "running " + " ".join(shlex.quote(a) for a in spec.args))
        if spec.onstart:
            self._say(box, "running onstart script")
            for line in spec.onstart.splitlines():
                if not line.strip():
                    continue
                self._say(box, f"+ {line}")
                for part in line.split(";"):
                    printed = _echo_output(part.strip(), spec.env)
                    if printed is not None:
                        box.log.append(printed)

    def _settle(self, box: _Box) -> None:
        if box.status == "loading" and self.clock() >= box.ready_at:
            box.status = "running"
            self._say(box, "container is running")

    def _state(self, ref: str, box: _Box) -> RuntimeState:
        self._settle(box)
        msg = {
            "loading": f"starting {box.spec.image_uuid}",
            "running": "running",
            "stopped": "stopped",
        }.get(box.status)
        return RuntimeState(box.status, msg, ref)

    # -- the verbs -----------------------------------------------------------------------------
    def _adopt(self, ref: str) -> _Box | None:
        """The box of ``ref`` that another process made (``shared``), else None."""
        parts = ref.split("-")
        if not self.shared or len(parts) != 4 or parts[0] != "sim":
            return None
        try:
            instance_id, made = int(parts[1]), int(parts[3], 16) / 1000
        except ValueError:
            return None
        spec = LaunchSpec(instance_id=instance_id, owner_id=0, machine_id=0, image="", tag="")
        age = time.time() - made
        box = _Box(spec, "loading", self.clock() + max(0.0, self.boot_seconds - age))
        self._say(box, "container found on the machine")
        self._boxes[ref] = box
        return box

    def _box(self, ref: str) -> _Box | None:
        return self._boxes.get(ref) or self._adopt(ref)

    def states(self, refs: list[str]) -> dict[str, str]:
        """The status of each of ``refs`` this runtime holds (those it lost left out)."""
        with self._lock:
            found = {}
            for ref in refs:
                box = self._box(ref)
                if box is not None:
                    self._settle(box)
                    found[ref] = box.status
            return found

    def create(self, spec: LaunchSpec) -> RuntimeState:
        with self._lock:
            ref = f"sim-{spec.instance_id}-{uuid.uuid4().hex[:8]}-{int(time.time() * 1000):x}"
            box = _Box(spec, "loading", 0.0)
            self._say(box, f"pulling {spec.image_uuid}")
            self._say(box, f"{spec.image_uuid}: image is up to date")
            self._boot(box)
            self._boxes[ref] = box
            return self._state(ref, box)

    def status(self, ref: str) -> RuntimeState:
        with self._lock:
            box = self._box(ref)
            return RuntimeState("missing", None, ref) if box is None else self._state(ref, box)

    def start(self, ref: str) -> RuntimeState:
        with self._lock:
            box = self._box(ref)
            if box is None:
                return RuntimeState("missing", None, ref)
            if box.status in ("stopped", "exited"):
                self._boot(box)
            return self._state(ref, box)

    def stop(self, ref: str) -> RuntimeState:
        with self._lock:
            box = self._box(ref)
            if box is None:
                return RuntimeState("missing", None, ref)
            if box.status != "stopped":
                box.status = "stopped"
                self._say(box, "container stopped")
            return self._state(ref, box)

    def restart(self, ref: str) -> RuntimeState:
        with self._lock:
            box = self._box(ref)
            if box is None:
                return RuntimeState("missing", None, ref)
            self._say(box, "restarting container")
            self._boot(box)
            return self._state(ref, box)

    def destroy(self, ref: str) -> None:
        with self._lock:
            self._boxes.pop(ref, None)

    def logs(self, ref: str, tail: int | None = None) -> str:
        with self._lock:
            box = self._box(ref)
            if box is None:
                return ""
            self._settle(box)
            lines = box.log if not tail else box.log[-tail:]
            return "\n".join(lines) + ("\n" if lines else "")
