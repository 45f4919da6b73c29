"""Serving the app with uvicorn: the limits of the HTTP layer and a bounded shutdown.

* Request heads up to ``MAX_HEAD`` bytes (as much as a body may hold) reach the app, which
  answers an over-long query string with a 414 that explains (uvicorn's h11 default of 16 KiB
  would reset the connection without a word).
* On SIGTERM (or Ctrl-C) uvicorn stops accepting, lets requests in flight finish for at most
  ``settings.graceful_seconds``, then cancels them; :func:`run` then returns even when a worker
  thread is still stuck (e.g. waiting on a database lock).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
from typing import Any

import uvicorn

from gpuyard.settings import Settings

MAX_HEAD = 1024 * 1024


def config(app: Any, settings: Settings, **kwargs: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        h11_max_incomplete_event_size=MAX_HEAD,
        timeout_graceful_shutdown=settings.graceful_seconds,
        **kwargs,
    )


def settle_heap() -> None:
    """Move what start-up built (modules, routes, models, the ORM's mappers: some 200,000
    objects) out of the garbage collector's reach: it lives as long as the process, and each full
    collection would otherwise walk all of it again, a pause of 100-300 ms on whichever request
    thread allocates at that moment (bench/README.md, "rentals.py")."""
    gc.collect()
    gc.freeze()


def run(app: Any, settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; never hang on the way out."""
    settle_heap()
    uvicorn.Server(config(app, settings, log_level="info")).run()
    deadline = time.monotonic() + 1.0
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threading.enumerate()
             if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if stuck:
        print(f"gpuyard: exiting with {len(stuck)} request(s) still stuck ({', '.join(stuck[:3])})",
              file=sys.stderr)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
