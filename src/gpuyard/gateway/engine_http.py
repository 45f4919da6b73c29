"""A small asyncio HTTP/1.1 client for the Docker Engine API, for what the ``docker`` package
cannot do without blocking a thread: exec streams in both directions (the hijacked connection
of ``POST /exec/{id}/start``), and archive reads streamed chunk by chunk.

One connection per request (``Connection: close``): requests are few and long-lived. Engines
on ``unix://`` sockets and plain ``tcp://`` work; ``ssh://`` engines and TLS are refused with a
message (the end of stdin is a half-close of the connection, which TLS cannot carry)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

API = "/v1.41"
MAX_HEAD = 64 * 1024


class EngineError(Exception):
    """The engine refused a request or could not be reached; ``status`` 0 when unreachable."""

    def __init__(self, msg: str, status: int = 0):
        super().__init__(msg)
        self.msg = msg
        self.status = status


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    async def body_chunks(self, size: int = 256 * 1024):
        """The body, as it arrives (chunked or sized or up to the end)."""
        if self.chunked:
            while True:
                line = await self.reader.readline()
                length = int(line.split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    await self.reader.readline()
                    return
                left = length
                while left:
                    data = await self.reader.read(min(left, size))
                    if not data:
                        raise EngineError("the engine closed the connection mid-answer")
                    left -= len(data)
                    yield data
                await self.reader.readexactly(2)
        elif "content-length" in self.headers:
            left = int(self.headers["content-length"])
            while left:
                data = await self.reader.read(min(left, size))
                if not data:
                    return
                left -= len(data)
                yield data
        else:
            while data := await self.reader.read(size):
                yield data

    async def body(self) -> bytes:
        return b"".join([c async for c in self.body_chunks()])

    def close(self) -> None:
        self.writer.close()


class EngineHTTP:
    """Requests to one engine URL (``unix:///run/podman/podman.sock``, ``tcp://host:2375``)."""

    def __init__(self, url: str):
        self.url = url
        parts = urlsplit(url)
        self.scheme = parts.scheme
        if self.scheme in ("unix", "http+unix"):
            self.path = parts.path
        elif self.scheme in ("tcp", "http"):
            self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 2375
        else:
            self.path = ""

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        import os

        if self.scheme in ("tcp", "http") and os.environ.get("DOCKER_TLS_VERIFY"):
            raise EngineError("the SSH gateway does not reach TLS engines yet (tcp:// with TLS); "
                              "use a unix socket or an engine on a private network")
        try:
            if self.scheme in ("unix", "http+unix"):
                return await asyncio.open_unix_connection(self.path, limit=MAX_HEAD)
            if self.scheme in ("tcp", "http"):
                return await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
        except OSError as exc:
            raise EngineError(f"cannot reach the Docker engine at {self.url}: {exc}") from None
        raise EngineError(f"the SSH gateway cannot reach engines at {self.url} (only unix:// and "
                          "tcp:// engines)")

    async def request(self, method: str, path: str, body: Any = None,
                      upgrade: bool = False) -> Answer:
        reader, writer = await self._connect()
        data = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {API}{path} HTTP/1.1", "Host: docker"]
        if body is not None:
            head += ["Content-Type: application/json"]
        head += [f"Content-Length: {len(data)}"]
        head += ["Connection: Upgrade", "Upgrade: tcp"] if upgrade else ["Connection: close"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await writer.drain()
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
            writer.close()
            raise EngineError(f"the Docker engine at {self.url} gave no answer: {exc}") from None
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        return Answer(status, headers, reader, writer)

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """A whole request: its JSON answer (None for an empty one); raises on >= 400."""
        answer = await self.request(method, path, body)
        try:
            data = await answer.body()
        finally:
            answer.close()
        if answer.status >= 400:
            try:
                msg = json.loads(data).get("message") or data.decode(errors="replace")
            except (ValueError, AttributeError):
                msg = data.decode(errors="replace")
            raise EngineError(msg.strip(), answer.status)
        return json.loads(data) if data.strip() else None


def q(text: str) -> str:
    return quote(text, safe="")
