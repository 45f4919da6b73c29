"""A container's files through the engine, for an image with a shell and nothing else (no
sftp-server, no scp): stat by the archive API's ``HEAD``, reads from its tar stream, writes
streamed into an exec of ``cat``, listings and changes by execs of the image's shell tools.
Nothing is held whole in memory or spooled on the gateway's disk."""

from __future__ import annotations

import asyncio
import base64
import json
import posixpath
import stat as st
from dataclasses import dataclass
from datetime import datetime

from gpuyard.gateway.engine_http import Answer, EngineError, EngineHTTP, q
from gpuyard.gateway.exec_bridge import Exec, run

# Go's os.FileMode bits, as the engine reports them
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE, GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
GO_SETUID, GO_SETGID, GO_CHARDEV, GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20
LIST_CONCURRENCY = 8


class FileError(Exception):
    """``kind``: "missing", "denied", "failure"."""

    def __init__(self, kind: str, msg: str):
        super().__init__(msg)
        self.kind, self.msg = kind, msg


@dataclass
class Stat:
    name: str
    size: int
    mode: int  # POSIX st_mode
    mtime: int
    link_target: str | None = None

    @property
    def is_dir(self) -> bool:
        return st.S_ISDIR(self.mode)


def posix_mode(go_mode: int) -> int:
    perm = go_mode & 0o777
    if go_mode & GO_SETUID:
        perm |= st.S_ISUID
    if go_mode & GO_SETGID:
        perm |= st.S_ISGID
    if go_mode & GO_STICKY:
        perm |= st.S_ISVTX
    if go_mode & GO_DIR:
        kind = st.S_IFDIR
    elif go_mode & GO_SYMLINK:
        kind = st.S_IFLNK
    elif go_mode & GO_PIPE:
        kind = st.S_IFIFO
    elif go_mode & GO_SOCKET:
        kind = st.S_IFSOCK
    elif go_mode & GO_DEVICE:
        kind = st.S_IFCHR if go_mode & GO_CHARDEV else st.S_IFBLK
    else:
        kind = st.S_IFREG
    return kind | perm


def _mtime(text: str) -> int:
    try:
        main = text.split(".")[0].rstrip("Z")
        return int(datetime.fromisoformat(main + "+00:00").timestamp())
    except ValueError:
        return 0


def _failure(code: int, err: bytes, what: str) -> FileError:
    text = err.decode(errors="replace").strip().splitlines()
    msg = text[-1] if text else f"{what} failed (exit status {code})"
    low = msg.lower()
    if "no such file" in low or "not found" in low:
        return FileError("missing", msg)
    if "permission denied" in low or "read-only" in low:
        return FileError("denied", msg)
    return FileError("failure", msg)


class ContainerFiles:
    """File operations in one container."""

    def __init__(self, http: EngineHTTP, container: str):
        self.http, self.container = http, container

    async def stat(self, path: str) -> Stat:
        answer = await self.http.request(
            "HEAD", f"/containers/{q(self.container)}/archive?path={q(path)}")
        answer.close()
        if answer.status == 404:
            raise FileError("missing", f"{path}: no such file or directory")
        if answer.status >= 400:
            raise FileError("failure", f"{path}: the engine answered {answer.status}")
        raw = answer.headers.get("x-docker-container-path-stat", "")
        info = json.loads(base64.b64decode(raw) or b"{}")
        mode = posix_mode(int(info.get("mode", 0)))
        target = info.get("linkTarget") or None
        if target == path or not st.S_ISLNK(mode):
            target = None  # Podman names a plain file's own path as its link target
        return Stat(info.get("name", ""), int(info.get("size", 0)), mode,
                    _mtime(info.get("mtime", "")), target)

    async def _sh(self, script: str, *args: str, stdin: bytes = b"") -> bytes:
        code, out, err = await run(self.http, self.container, ["sh", "-c", script, "sh", *args],
                                   stdin)
        if code != 0:
            raise _failure(code, err, script.split()[0])
        return out

    async def listdir(self, path: str) -> list[tuple[str, Stat]]:
        """The entries of a directory (dot files too) with their stats."""
        info = await self.stat(path)
        if not info.is_dir:
            raise FileError("failure", f"{path}: not a directory")
        out = await self._sh('cd -- "$1" && for f in .* *; do { [ -e "$f" ] || [ -L "$f" ]; } '
                             '&& printf "%s\\0" "$f"; done; true', path)
        names = [n.decode("utf-8", "surrogateescape") for n in out.split(b"\0") if n]
        base = path.rstrip("/")
        gate = asyncio.Semaphore(LIST_CONCURRENCY)

        async def one(name: str) -> tuple[str, Stat] | None:
            async with gate:
                try:
                    full = {".": path, "..": posixpath.dirname(base) or "/"}.get(name)
                    return name, await self.stat(full or f"{base}/{name}")
                except FileError:
                    return None  # gone meanwhile

        found = await asyncio.gather(*(one(n) for n in names))
        return [f for f in found if f is not None]

    async def mkdir(self, path: str) -> None:
        await self._sh('mkdir -- "$1"', path)

    async def rmdir(self, path: str) -> None:
        await self._sh('rmdir -- "$1"', path)

    async def remove(self, path: str) -> None:
        info = await self.stat(path)
        if info.is_dir:
            raise FileError("failure", f"{path}: is a directory")
        await self._sh('rm -f -- "$1"', path)

    async def rename(self, old: str, new: str, replace: bool) -> None:
        if not replace:
            try:
                await self.stat(new)
                raise FileError("failure", f"{new}: already exists")
            except FileError as exc:
                if exc.kind != "missing":
                    raise
        await self._sh('mv -f -- "$1" "$2"', old, new)

    async def chmod(self, path: str, mode: int) -> None:
        await self._sh('chmod "$1" -- "$2"', format(mode & 0o7777, "o"), path)

    async def reader(self, path: str) -> FileReader:
        reader = FileReader(self, path)
        await reader.open(0)
        return reader

    async def writer(self, path: str, append_at: int | None = None) -> FileWriter:
        """A file written from its start (``cat >``: it is truncated, as ``scp`` and ``put``
        want), or appended to from ``append_at``, its current size."""
        op = ">" if append_at is None else ">>"
        ex = await Exec.start(self.http, self.container,
                              ["sh", "-c", f'exec cat {op} "$1"', "sh", path])
        writer = FileWriter(path, ex)
        writer.pos = append_at or 0
        return writer


class FileReader:
    """A file read from the engine's archive stream, forwards; a backward seek reopens it."""

    def __init__(self, files: ContainerFiles, path: str):
        self.files, self.path = files, path
        self.answer: Answer | None = None
        self.pos = 0
        self.left = 0  # bytes of the file not read yet
        self._buf = bytearray()
        self._chunks = None

    async def _take(self, n: int) -> bytes:
        """Exactly n bytes of the tar stream (fewer at its end)."""
        while len(self._buf) < n:
            try:
                self._buf.extend(await anext(self._chunks))
            except StopAsyncIteration:
                break
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def open(self, offset: int) -> None:
        self.close()
        answer = await self.files.http.request(
            "GET", f"/containers/{q(self.files.container)}/archive?path={q(self.path)}")
        if answer.status >= 400:
            answer.close()
            raise FileError("missing" if answer.status == 404 else "failure",
                            f"{self.path}: the engine answered {answer.status}")
        self.answer, self._chunks, self._buf = answer, answer.body_chunks(), bytearray()
        size = None
        while True:  # skip PAX and GNU extension entries up to the file's own header
            head = await self._take(512)
            if len(head) < 512 or not head.strip(b"\0"):
                raise FileError("failure", f"{self.path}: empty archive from the engine")
            kind = head[156:157]
            length = _tar_number(head[124:136])
            padded = (length + 511) // 512 * 512
            if kind in (b"x", b"g", b"L", b"K"):
                ext = await self._take(padded)
                if kind == b"x":
                    size = _pax_size(ext[:length]) or size
                continue
            if kind == b"5":
                raise FileError("failure", f"{self.path}: is a directory")
            self.left = size if size is not None else length
            break
        self.pos = 0
        if offset:
            await self._skip(offset)

    async def _skip(self, n: int) -> None:
        while n > 0 and self.left > 0:
            data = await self._take(min(n, self.left, 1 << 20))
            if not data:
                break
            n -= len(data)
            self.left -= len(data)
            self.pos += len(data)

    async def read(self, offset: int, size: int) -> bytes:
        if offset < self.pos:
            await self.open(offset)
        elif offset > self.pos:
            await self._skip(offset - self.pos)
        data = await self._take(min(size, self.left))
        self.left -= len(data)
        self.pos += len(data)
        return data

    def close(self) -> None:
        if self.answer is not None:
            self.answer.close()
            self.answer = None


def _tar_number(field: bytes) -> int:
    if field and field[0] & 0x80:  # base-256 (GNU) for big sizes
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0")[0].strip()
    return int(text, 8) if text else 0


def _pax_size(data: bytes) -> int | None:
    for record in data.split(b"\n"):
        _, _, kv = record.partition(b" ")
        key, _, value = kv.partition(b"=")
        if key == b"size":
            return int(value)
    return None


class FileWriter:
    """A file written through an exec of ``cat``, in order (SFTP clients write forwards)."""

    def __init__(self, path: str, ex: Exec):
        self.path, self.ex, self.pos = path, ex, 0
        self.mode: int | None = None  # permissions to set at close (a new file's)
        self._errors = bytearray()

    async def write(self, offset: int, data: bytes) -> int:
        if offset != self.pos:
            raise FileError("failure", f"{self.path}: writes must go forwards through the gateway "
                            f"(offset {offset}, expected {self.pos})")
        await self.ex.write(data)
        self.pos += len(data)
        return len(data)

    async def close(self) -> None:
        self.ex.end_input()
        async for stream, data in self.ex.output():
            if stream == 2 and len(self._errors) < 4096:
                self._errors.extend(data)
        code = await self.ex.exit_status()
        self.ex.close()
        if code != 0:
            raise _failure(code, bytes(self._errors), "write")


__all__ = ["ContainerFiles", "EngineError", "FileError", "FileReader", "FileWriter", "Stat"]
