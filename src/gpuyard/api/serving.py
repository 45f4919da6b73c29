"""Serving the app with uvicorn: the HTTP parser, its limits, and a bounded shutdown.

* Requests are parsed by llhttp, in C (uvicorn's httptools protocol), which saves about 0.2 ms
  of the server's CPU per request over h11's pure-Python parser (bench/README.md, "rentals.py").
* Request heads up to ``MAX_HEAD`` bytes (as much as a body may hold) with URLs up to
  ``MAX_URL`` bytes reach the app, which answers an over-long query string with a 414 that
  explains. A longer head is answered 431, a longer URL 414, a request that is not HTTP 400,
  all in JSON, and the connection closed (:class:`BoundedHttpTools`): httptools itself bounds
  nothing, and uvicorn answers its parser's errors in plain text.
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
from http import HTTPStatus
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gpuyard.api.edge import error_response
from gpuyard.settings import Settings

MAX_HEAD = 1024 * 1024
MAX_URL = 65535  # what httptools.parse_url can split
LINGER = 2.0  # seconds a refused request's connection is still read (and dropped) before closing


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that is answered with an error."""


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounds on a request's head, and JSON errors.

    * The bytes a connection sends from the start of a request to the end of its headers are
      counted as they arrive; past ``MAX_HEAD`` the request is answered 431 and the connection
      closed, before the parser has kept them (it would keep any length).
    * A URL over ``MAX_URL`` bytes is answered 414: httptools cannot split a longer one into
      path and query (its offsets are 16-bit), and uvicorn would answer a bare 400.
    * A request that is not HTTP/1.1 is answered 400 with a JSON body, like every API error,
      where uvicorn answers in plain text.
    """

    _head_bytes = 0
    _in_body = False
    _refusal: tuple[int, str, str] | None = None
    _refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the rest of a refused request: read and dropped until the connection closes
        if not self._in_body:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD:
                self._refuse(431, "header_too_large", (
                    f"the request's line and headers are over {MAX_HEAD} bytes; send less: long "
                    "queries go in a request body where the call takes one"))
                return
        super().data_received(data)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL:
            self._refusal = (414, "uri_too_long", (
                f"the request's URL is over {MAX_URL} bytes; send long queries in a request body "
                "where the call takes one"))
            raise _Refused  # uvicorn then calls send_400_response, which answers this refusal

    def on_headers_complete(self) -> None:
        self._in_body, self._head_bytes = True, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request its parser gave up on (plain text): ours instead."""
        self._refuse(*(self._refusal or (400, "bad_request", (
            "the request is not valid HTTP/1.1 (its request line or a header is malformed, e.g. "
            "a control character or a raw non-ASCII byte in the URL); percent-encode the URL"))))

    def _refuse(self, status: int, error: str, text: str) -> None:
        """Answer a request refused before it reached the app, as the app answers errors, and
        close the connection (after ``LINGER`` seconds of reading and dropping what the client
        still sends)."""
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        answer = error_response(status, error, text)
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
        head += [name + b": " + value for name, value in answer.raw_headers]
        head.append(b"connection: close")
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + answer.body)
        # Half-close and drop what the client still sends for a while: closing at once with its
        # data unread makes the kernel reset the connection, and the client may lose the answer.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER, self.transport.close)


def config(app: Any, settings: Settings, **kwargs: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=BoundedHttpTools,
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
