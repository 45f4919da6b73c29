"""Serving an app for tests: uvicorn on a free 127.0.0.1 port in a background thread (the live
server fixture, and tests that start an app of their own)."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from gpuyard.api import serving as api_serving


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(application) -> Iterator[str]:
    """``application`` served by uvicorn on 127.0.0.1 in a background thread; yields its base
    URL, and stops it afterwards."""
    port = free_port()
    settings = dataclasses.replace(application.state.settings, host="127.0.0.1", port=port)
    server = uvicorn.Server(api_serving.config(application, settings, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
