"""``gpuyard ssh ID [-- CMD]`` and ``gpuyard copy SRC DST``: the system's OpenSSH clients
(``ssh``, ``scp`` in its SFTP mode) pointed at the instance's gateway address, with your own keys,
agent and known_hosts (docs/access.md)."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys

from gpuyard.cli.commands._common import handles_errors, sdk_from
from gpuyard.cli.output import fail

REMOTE = re.compile(r"^(\d+):(.*)$")


class NoAddress(Exception):
    pass


def address(sdk, instance_id: int) -> tuple[str, int]:
    """(host, port) of the instance: its direct address when an SSH server runs in it, else the
    SSH gateway's (as ``ssh-url``); raises NoAddress saying why there is none."""
    from gpuyard.sdk.access import access_url

    row = sdk.show_instance(instance_id)
    if not row:
        raise NoAddress(f"instance {instance_id} not found (see 'gpuyard show instances')")
    if row.get("runtime") == "simulated":
        raise NoAddress(f"instance {instance_id}: simulated instance: no shell")
    if row.get("actual_status") != "running":
        raise NoAddress(f"instance {instance_id} is not running ({row.get('actual_status')}): "
                        f"start it with 'gpuyard start instance {instance_id}'")
    url = access_url(row, "ssh")
    if not url:
        raise NoAddress(f"instance {instance_id} has no SSH address yet: the server's SSH gateway "
                        "gives it one within a second of the launch (is it running? 'gpuyard "
                        "serve' starts it unless --no-gateway)")
    host, _, port = url.removeprefix("ssh://root@").rpartition(":")
    return host, int(port)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise NoAddress(f"'{name}' not found: install the OpenSSH client (Debian: apt-get install "
                        "openssh-client)")
    return path


def _identity(args: argparse.Namespace) -> list[str]:
    """-i and -o as given, for ssh and scp alike."""
    out = ["-i", args.identity] if getattr(args, "identity", None) else []
    for option in getattr(args, "ssh_options", None) or []:
        out += ["-o", option]
    return out


@handles_errors
def ssh(args: argparse.Namespace) -> int:
    try:
        host, port = address(sdk_from(args), args.id)
        tool = _tool("ssh")
    except NoAddress as exc:
        return fail(str(exc))
    command = list(args.command or [])
    if command[:1] == ["--"]:
        command = command[1:]
    argv = [tool, *_identity(args), "-p", str(port), f"root@{host}", *command]
    sys.stdout.flush()
    return subprocess.call(argv)


def _location(sdk, text: str) -> str:
    """``ID:/path`` → an scp URI on the instance's gateway address; anything else is local."""
    found = REMOTE.match(text)
    if not found:
        return text
    host, port = address(sdk, int(found.group(1)))
    path = found.group(2)
    # scp URIs: "/rel" is relative to the home directory, "//abs" absolute
    return f"scp://root@{host}:{port}/{path}" if path else f"scp://root@{host}:{port}/"


@handles_errors
def copy(args: argparse.Namespace) -> int:
    sdk = sdk_from(args)
    if not REMOTE.match(args.src) and not REMOTE.match(args.dst):
        return fail("one side must be an instance, written ID:/path (e.g. gpuyard copy "
                    "./data 1234:/workspace/data)")
    try:
        src, dst = _location(sdk, args.src), _location(sdk, args.dst)
        tool = _tool("scp")
    except NoAddress as exc:
        return fail(str(exc))
    argv = [tool, "-r", *_identity(args)]
    if REMOTE.match(args.src) and REMOTE.match(args.dst):
        argv.append("-3")  # between two instances, through this machine
    sys.stdout.flush()
    return subprocess.call([*argv, src, dst])
