"""Finding a run of free TCP ports on this machine: the gateway's, the recipe's and the engine's
port ranges in tests."""

from __future__ import annotations

import random
import socket


def free_block(count: int, first: int = 20000, last: int = 30000, *, step: int = 2,
               host: str = "0.0.0.0", reuse: bool = False) -> int:
    """A start port in ``[first, last - count)`` (a multiple of ``step`` from ``first``) with
    ``count`` ports after it that bind on ``host`` now; ``reuse`` binds with SO_REUSEADDR, as
    engines do, so TIME-WAIT leftovers count as free. The default range lies below the kernel's
    ephemeral range (the gateway refuses ports in it)."""
    for _ in range(200):
        start = random.randrange(first, last - count, step)
        if all(_binds(host, port, reuse) for port in range(start, start + count)):
            return start
    raise RuntimeError("no free port range")


def _binds(host: str, port: int, reuse: bool) -> bool:
    with socket.socket() as s:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True
