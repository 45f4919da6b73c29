"""``execute``: the few file commands (``ls``, ``rm``, ``du``) a user may run in an instance
through the API (VAST-WIRE §16.1), with no shell. The output is kept as a short-lived snapshot
served at ``result_url`` like the logs (services/rentals/instance_logs.py). Running the command calls
the runtime: it happens outside any transaction."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gpuyard.errors import Conflict, InvalidInput, Unavailable
from gpuyard.runtimes.base import CommandResult, EngineUnreachable, RuntimeError_
from gpuyard.services.rentals import instances as svc
from gpuyard.store.models import User

ALLOWED = ("ls", "rm", "du")
#: What a shell would have made of a command line; there is no shell, so they are refused.
SHELL_SYNTAX = (";", "|", "&", "$", "`", "<", ">", "\n", "\r")
MAX_COMMAND = 4096  # characters of a command line
MAX_OUTPUT = 1024 * 1024  # bytes of output kept; the rest is cut
HOW = ("execute runs only ls, rm and du with their arguments, with no shell (e.g. 'ls -l /workspace',"
       " 'du -sh /root', 'rm /tmp/old.log'); for anything else connect with ssh")


@dataclass(frozen=True)
class Target:
    """Where a command runs: the instance and its container on its engine."""

    instance_id: int
    runtime: str
    ref: str
    endpoint: str | None


def parse_command(text: str) -> list[str]:
    """The argv of an allowed command line; anything else is an InvalidInput saying what is
    allowed. Words are split as a shell would (quotes group them) but nothing is expanded."""
    found = sorted({c for c in SHELL_SYNTAX if c in text}, key=SHELL_SYNTAX.index)
    if found:
        shown = ", ".join(repr(c) if c in "\n\r" else c for c in found)
        raise InvalidInput(f"command has shell syntax ({shown}), which execute does not run: {HOW}",
                           "command_not_allowed")
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise InvalidInput(f"command cannot be split into words ({exc}): {HOW}",
                           "command_not_allowed") from None
    if not argv:
        raise InvalidInput(f"command is empty: {HOW}", "command_not_allowed")
    if argv[0] not in ALLOWED:
        raise InvalidInput(f"{argv[0]!r} is not allowed: {HOW}", "command_not_allowed")
    return argv


def target(session: Session, user: User, instance_id: Any) -> Target:
    """The caller's instance, able to run a command now (else NotFound or Conflict)."""
    inst = svc.owner_lookup(session, user, instance_id)
    if inst.runtime != "docker":
        raise Conflict(f"instance {inst.id} is a {inst.runtime} instance: no container to run "
                       "commands in (execute needs an instance on a docker machine)",
                       "not_runnable")
    if inst.actual_status != "running" or not inst.runtime_ref:
        raise Conflict(f"instance {inst.id} is {inst.actual_status}, not running; start it (and "
                       "wait until it runs) before executing commands in it", "not_running")
    machine = svc.machine_of(session, inst)
    return Target(inst.id, inst.runtime, inst.runtime_ref, machine.docker_url)


def run(reconciler: Any, where: Target, argv: list[str]) -> CommandResult:
    """Run ``argv`` in the instance's container (no transaction open)."""
    try:
        engine = reconciler.runtime_for(where.runtime, where.endpoint)
        return engine.run_command(where.ref, argv, MAX_OUTPUT)
    except EngineUnreachable as exc:
        raise Unavailable(f"cannot run the command in instance {where.instance_id}: {exc.msg}",
                          "engine_unreachable") from None
    except RuntimeError_ as exc:
        raise Conflict(f"cannot run {argv[0]} in instance {where.instance_id}: {exc.msg}",
                       "command_failed") from None


def output_text(result: CommandResult) -> str:
    """The text served at ``result_url``: the command's output, with a last line when it was cut."""
    text = result.output
    if result.truncated:
        text += f"{'' if text.endswith(chr(10)) else chr(10)}[output cut at {MAX_OUTPUT} bytes]\n"
    return text


def summary(argv: list[str], result: CommandResult) -> str:
    if result.exit_code is None:
        return f"{argv[0]} printed more than {MAX_OUTPUT} bytes; the output at result_url is cut"
    if result.exit_code:
        return f"{argv[0]} exited with status {result.exit_code}; its output is at result_url"
    return "the output is at result_url"
