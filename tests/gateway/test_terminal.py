"""An interactive shell through the gateway follows the client's window size: ssh runs on a
pseudo-terminal of the test's, whose size changes mid-session."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import termios
import time

from gateway.conftest import SSH_OPTIONS, rent, running_with_port


def _size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _read_until(fd: int, pattern: re.Pattern, seen: bytearray, seconds: float = 60) -> re.Match:
    deadline = time.monotonic() + seconds
    while not (found := pattern.search(seen)):
        assert time.monotonic() < deadline, bytes(seen)
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen.extend(os.read(fd, 4096))
            except OSError:
                break
    assert found, bytes(seen)
    return found


def test_shell_follows_window_size_changes(api, gateway, machines, alice_key, test_image):
    iid = rent(api, "RTX 4090", image=test_image, runtype="ssh")
    port = running_with_port(api, gateway, iid)["ssh_port"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: ssh on the pseudo-terminal, 30 rows × 100 columns
        _size(0, 30, 100)
        os.execvp("ssh", ["ssh", "-i", str(alice_key.path), *SSH_OPTIONS, "-tt", "-p", str(port),
                          "root@127.0.0.1"])
    try:
        seen = bytearray()
        os.write(fd, b"echo READY-$((6*7))\n")
        _read_until(fd, re.compile(rb"READY-42"), seen)
        os.write(fd, b"echo SIZE1 $(stty size)\n")
        assert _read_until(fd, re.compile(rb"SIZE1 (\d+ \d+)"), seen).group(1) == b"30 100"
        _size(fd, 40, 120)  # the window grows: ssh gets SIGWINCH and tells the gateway
        for _ in range(100):  # ssh may read the next line before it handles the signal
            os.write(fd, b"echo SIZE2 $(stty size)\n")
            found = _read_until(fd, re.compile(rb"SIZE2 (\d+ \d+)\s*$", re.M), seen)
            if found.group(1) == b"40 120":
                break
            del seen[:found.end()]
            time.sleep(0.1)
        assert found.group(1) == b"40 120"
        os.write(fd, b"exit 0\n")
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
