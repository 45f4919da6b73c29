"""Direct SSH in a running container (docs/access.md, "Direct SSH"): the instance's keys written
to ``/root/.ssh/authorized_keys`` through the engine's archive API, and the image's own SSH server
(``dropbear`` or ``sshd``) started through the engine's exec API when nothing listens on port 22.

The server daemonizes; the container's init process (PID 1) adopts it, reaps it, and it ends
with the container. A container that restarts loses it, so the reconciler runs :func:`install`
again whenever an instance (re)starts. Nothing here touches the database.
"""

from __future__ import annotations

import io
import tarfile
import time
from dataclasses import dataclass
from typing import Any

NO_SERVER = ("direct SSH needs an SSH server in the image (sshd or dropbear); connect through the "
             "gateway instead (ssh-url)")

# Run with `sh -c`. Prints one last line: "listening SERVER", "none" or "failed SERVER".
# Something listening on port 22 (tcp or tcp6, state 0A) counts as the server.
START = r"""
listening() {
    grep -qE '^ *[0-9]+: [0-9A-Fa-f]+:0016 [0-9A-Fa-f]+:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
wait_listening() {
    i=0
    while [ $i -lt 50 ]; do
        listening && return 0
        sleep 0.1 2>/dev/null || sleep 1
        i=$((i + 1))
    done
    return 1
}
if listening; then echo "listening ssh"; exit 0; fi
if command -v dropbear >/dev/null 2>&1; then
    server=dropbear
    mkdir -p /etc/dropbear
    dropbear -R -E -p 22 </dev/null >/dev/null 2>&1
elif sshd=$(command -v sshd 2>/dev/null || { [ -x /usr/sbin/sshd ] && echo /usr/sbin/sshd; }); then
    server=sshd
    mkdir -p /run/sshd && chmod 0755 /run/sshd
    ssh-keygen -A >/dev/null 2>&1
    "$sshd" -o PermitRootLogin=prohibit-password </dev/null >/dev/null 2>&1
else
    echo none
    exit 0
fi
if wait_listening; then echo "listening $server"; else echo "failed $server"; fi
"""


@dataclass(frozen=True)
class SshSetup:
    """What :func:`install` found: ``server`` ("dropbear", "sshd", "ssh" for one already
    listening) when it listens on port 22, else None with ``msg`` saying why."""

    server: str | None
    msg: str | None = None


def keys_archive(authorized_keys: str) -> bytes:
    """A tar of ``root/.ssh/`` (0700) and ``root/.ssh/authorized_keys`` (0600), owned by root."""
    data = authorized_keys.encode()
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        folder = tarfile.TarInfo("root/.ssh")
        folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o700, now
        tar.addfile(folder)
        file = tarfile.TarInfo("root/.ssh/authorized_keys")
        file.size, file.mode, file.mtime = len(data), 0o600, now
        tar.addfile(file, io.BytesIO(data))
    return buf.getvalue()


def write_keys(container: Any, authorized_keys: str) -> None:
    """Replace the container's ``/root/.ssh/authorized_keys`` (works on a running container of
    any image: no shell needed)."""
    if not container.put_archive("/", keys_archive(authorized_keys)):
        raise OSError("the engine refused to write /root/.ssh/authorized_keys")


def start_server(container: Any) -> SshSetup:
    """Start the image's SSH server unless something listens on port 22 already."""
    code, output = container.exec_run(["sh", "-c", START], user="root", stdin=False, tty=False)
    lines = (output or b"").decode("utf-8", "replace").strip().splitlines()
    last = lines[-1].strip() if lines else ""
    if code == 0 and last.startswith("listening "):
        return SshSetup(last.split(" ", 1)[1])
    if last == "none":
        return SshSetup(None, NO_SERVER)
    if last.startswith("failed "):
        server = last.split(" ", 1)[1]
        return SshSetup(None, f"direct SSH is off: {server} did not start in the container; connect "
                              "through the gateway instead (ssh-url)")
    return SshSetup(None, f"{NO_SERVER} (the image has no sh to look for one)")
