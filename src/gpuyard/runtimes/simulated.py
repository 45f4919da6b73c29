"""The simulated runtime: instances without containers, for demos, tests and offline automation.

It keeps its "containers" in memory. A new or started one is ``loading`` for ``boot_seconds``
and then ``running``; its log tells what a real machine would have done (pull, start, the
onstart script line by line, and the output of its ``echo`` lines). After a server restart it
has forgotten everything, so the reconciler creates the running instances again, as if the
machine had rebooted.
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

    def __init__(self, boot_seconds: float = 0.0, clock: Callable[[], float] = time.monotonic):
        self.boot_seconds = boot_seconds
        self.clock = clock  # tests pass one they move by hand
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
    def create(self, spec: LaunchSpec) -> RuntimeState:
        with self._lock:
            ref = f"sim-{spec.instance_id}-{uuid.uuid4().hex[:12]}"
            box = _Box(spec, "loading", 0.0)
            self._say(box, f"pulling {spec.image_uuid}")
            self._say(box, f"{spec.image_uuid}: image is up to date")
            self._boot(box)
            self._boxes[ref] = box
            return self._state(ref, box)

    def status(self, ref: str) -> RuntimeState:
        with self._lock:
            box = self._boxes.get(ref)
            return RuntimeState("missing", None, ref) if box is None else self._state(ref, box)

    def start(self, ref: str) -> RuntimeState:
        with self._lock:
            box = self._boxes.get(ref)
            if box is None:
                return RuntimeState("missing", None, ref)
            if box.status in ("stopped", "exited"):
                self._boot(box)
            return self._state(ref, box)

    def stop(self, ref: str) -> RuntimeState:
        with self._lock:
            box = self._boxes.get(ref)
            if box is None:
                return RuntimeState("missing", None, ref)
            if box.status != "stopped":
                box.status = "stopped"
                self._say(box, "container stopped")
            return self._state(ref, box)

    def restart(self, ref: str) -> RuntimeState:
        with self._lock:
            box = self._boxes.get(ref)
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
            box = self._boxes.get(ref)
            if box is None:
                return ""
            self._settle(box)
            lines = box.log if not tail else box.log[-tail:]
            return "\n".join(lines) + ("\n" if lines else "")
