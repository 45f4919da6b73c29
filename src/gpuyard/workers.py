"""Database work on worker threads, with bounded concurrency.

Service calls run on worker threads (a transaction blocks). How many run at once matters: the
database drivers release the GIL while the database works and take it back for every row, so
beyond about one reading thread per core, more threads only fight over the GIL (measured:
template searches under load, 237 req/s with unbounded threads, 334 with two; bench/README.md).

* Reads run at most ``settings.read_threads`` at a time (default: the number of cores).
* Writes have their own, larger limit (``settings.write_threads``), so a write that waits for a
  lock (SQLite's single writer, a PostgreSQL row lock) never holds up the reads.

The limiters are made on first use, inside the event loop, and kept on the app's state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


def _limiter(app: Any, write: bool) -> anyio.CapacityLimiter:
    name = "write_limiter" if write else "read_limiter"
    limiter = getattr(app.state, name, None)
    if limiter is None:
        settings = app.state.settings
        limiter = anyio.CapacityLimiter(settings.write_threads if write else settings.read_threads)
        setattr(app.state, name, limiter)
    return limiter


async def run_db(app: Any, work: Callable[[], T], *, write: bool) -> T:
    """``work()`` on a worker thread, within the app's read or write limit."""
    return await anyio.to_thread.run_sync(work, limiter=_limiter(app, write))
