"""The gateway's SFTP server (and legacy ``scp -O`` through it): every operation goes to the
container through the engine (:mod:`gpuyard.gateway.container_files`).

asyncssh's ``SFTPServer`` works on the gateway host's own file system for any method a
subclass does not override. Every method is overridden here: served in the container or
refused (``test_sftp_overrides_every_method`` checks the list against asyncssh's)."""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
from asyncssh import SFTPAttrs, SFTPName

from gpuyard.gateway.container_files import ContainerFiles, FileError, FileReader, FileWriter, Stat
from gpuyard.gateway.engine_http import EngineError

log = logging.getLogger("gpuyard.gateway.sftp")
FXF_READ, FXF_WRITE, FXF_APPEND, FXF_CREAT, FXF_TRUNC, FXF_EXCL = 1, 2, 4, 8, 0x10, 0x20


def _error(exc: FileError | EngineError) -> asyncssh.SFTPError:
    log.info("sftp: %s", exc.msg)
    if isinstance(exc, EngineError):
        return asyncssh.SFTPFailure(exc.msg)
    if exc.kind == "missing":
        return asyncssh.SFTPNoSuchFile(exc.msg)
    if exc.kind == "denied":
        return asyncssh.SFTPPermissionDenied(exc.msg)
    return asyncssh.SFTPFailure(exc.msg)


def _refuse(what: str) -> asyncssh.SFTPError:
    return asyncssh.SFTPOpUnsupported(f"{what} is not supported through the gpuyard gateway")


def _attrs(info: Stat) -> SFTPAttrs:
    t = info.mtime
    times = {"st_atime": float(t), "st_mtime": float(t), "st_ctime": float(t),
             "st_atime_ns": t * 10**9, "st_mtime_ns": t * 10**9, "st_ctime_ns": t * 10**9}
    attrs = SFTPAttrs.from_local(
        os.stat_result((info.mode, 0, 0, 1, 0, 0, info.size, t, t, t), times))
    attrs.owner = attrs.group = None  # container users are not the gateway host's
    return attrs


class ContainerSFTP(asyncssh.SFTPServer):
    """SFTP on one container; ``chan``'s connection carries the container (``files``)."""

    def __init__(self, chan: asyncssh.SSHServerChannel):
        super().__init__(chan)
        self.files: ContainerFiles = chan.get_connection().get_extra_info("gpuyard_files")
        self.home = chan.get_connection().get_extra_info("gpuyard_home") or "/"

    # -- paths -------------------------------------------------------------------------------
    def _path(self, path: bytes) -> str:
        text = path.decode("utf-8", "surrogateescape")
        return posixpath.normpath(posixpath.join(self.home, text)) if text else self.home

    def map_path(self, path: bytes) -> bytes:
        return path

    def reverse_map_path(self, path: bytes) -> bytes:
        return path

    async def realpath(self, path: bytes) -> bytes:
        full = self._path(path)
        return ("/" + full.lstrip("/")).encode("utf-8", "surrogateescape")

    def format_user(self, uid: int | None) -> str:
        return "root" if uid == 0 else str(uid or "")

    def format_group(self, gid: int | None) -> str:
        return "root" if gid == 0 else str(gid or "")

    # -- metadata ----------------------------------------------------------------------------
    async def _stat(self, path: bytes) -> SFTPAttrs:
        try:
            return _attrs(await self.files.stat(self._path(path)))
        except (FileError, EngineError) as exc:
            raise _error(exc) from None

    async def stat(self, path: bytes) -> SFTPAttrs:
        return await self._stat(path)

    async def lstat(self, path: bytes) -> SFTPAttrs:
        return await self._stat(path)

    async def fstat(self, file_obj: Any) -> SFTPAttrs:
        return await self._stat(file_obj.path.encode("utf-8", "surrogateescape"))

    async def setstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        if attrs.permissions is not None:
            try:
                await self.files.chmod(self._path(path), attrs.permissions)
            except (FileError, EngineError) as exc:
                raise _error(exc) from None
        # owners and times are kept as the container made them

    async def fsetstat(self, file_obj: Any, attrs: SFTPAttrs) -> None:
        if isinstance(file_obj, FileWriter):
            file_obj.mode = attrs.permissions  # applied at close, once the file is written
            return
        await self.setstat(file_obj.path.encode("utf-8", "surrogateescape"), attrs)

    def lsetstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        raise _refuse("lsetstat")

    def statvfs(self, path: bytes) -> None:
        raise _refuse("statvfs")

    def fstatvfs(self, file_obj: Any) -> None:
        raise _refuse("fstatvfs")

    async def readlink(self, path: bytes) -> bytes:
        try:
            info = await self.files.stat(self._path(path))
        except (FileError, EngineError) as exc:
            raise _error(exc) from None
        if info.link_target is None:
            raise asyncssh.SFTPFailure(f"{self._path(path)}: not a symbolic link")
        return info.link_target.encode("utf-8", "surrogateescape")

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise _refuse("symlink")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise _refuse("link")

    # -- directories -------------------------------------------------------------------------
    async def scandir(self, path: bytes) -> AsyncIterator[SFTPName]:
        try:
            entries = await self.files.listdir(self._path(path))
        except (FileError, EngineError) as exc:
            raise _error(exc) from None
        for name, info in entries:
            attrs = _attrs(info)
            yield SFTPName(name.encode("utf-8", "surrogateescape"), attrs=attrs)

    async def mkdir(self, path: bytes, attrs: SFTPAttrs) -> None:
        try:
            await self.files.mkdir(self._path(path))
        except (FileError, EngineError) as exc:
            raise _error(exc) from None

    async def rmdir(self, path: bytes) -> None:
        try:
            await self.files.rmdir(self._path(path))
        except (FileError, EngineError) as exc:
            raise _error(exc) from None

    async def remove(self, path: bytes) -> None:
        try:
            await self.files.remove(self._path(path))
        except (FileError, EngineError) as exc:
            raise _error(exc) from None

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        try:
            await self.files.rename(self._path(oldpath), self._path(newpath), replace=False)
        except (FileError, EngineError) as exc:
            raise _error(exc) from None

    async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        try:
            await self.files.rename(self._path(oldpath), self._path(newpath), replace=True)
        except (FileError, EngineError) as exc:
            raise _error(exc) from None

    # -- files -------------------------------------------------------------------------------
    async def open(self, path: bytes, pflags: int, attrs: SFTPAttrs) -> FileReader | FileWriter:
        full = self._path(path)
        try:
            if pflags & FXF_WRITE:
                if pflags & FXF_READ:
                    raise _refuse("opening a file for reading and writing at once")
                exists, size = True, 0
                try:
                    info = await self.files.stat(full)
                    size = info.size
                    if info.is_dir:
                        raise asyncssh.SFTPFailure(f"{full}: is a directory")
                except FileError as exc:
                    if exc.kind != "missing":
                        raise
                    exists = False
                if exists and pflags & FXF_EXCL:
                    raise asyncssh.SFTPFailure(f"{full}: already exists")
                if not exists and not pflags & FXF_CREAT:
                    raise asyncssh.SFTPNoSuchFile(f"{full}: no such file")
                # Writes go forwards from the start (the file is rewritten) or, with APPEND,
                # from its end; rewriting a part of a file in place is not supported.
                writer = await self.files.writer(
                    full, append_at=size if pflags & FXF_APPEND and exists else None)
                writer.mode = attrs.permissions if not exists else None
                return writer
            return await self.files.reader(full)
        except (FileError, EngineError) as exc:
            raise _error(exc) from None

    def open56(self, path: bytes, desired_access: int, flags: int, attrs: SFTPAttrs) -> None:
        raise _refuse("SFTP version 5 and 6 open")

    async def read(self, file_obj: Any, offset: int, size: int) -> bytes:
        if not isinstance(file_obj, FileReader):
            raise asyncssh.SFTPPermissionDenied("file not open for reading")
        try:
            return await file_obj.read(offset, size)
        except (FileError, EngineError) as exc:
            raise _error(exc) from None

    async def write(self, file_obj: Any, offset: int, data: bytes) -> int:
        if not isinstance(file_obj, FileWriter):
            raise asyncssh.SFTPPermissionDenied("file not open for writing")
        try:
            return await file_obj.write(offset, data)
        except (FileError, EngineError, ConnectionError) as exc:
            if isinstance(exc, ConnectionError):
                raise asyncssh.SFTPFailure(f"{file_obj.path}: the write ended early") from None
            raise _error(exc) from None

    async def close(self, file_obj: Any) -> None:
        try:
            if isinstance(file_obj, FileWriter):
                await file_obj.close()
                if file_obj.mode is not None:
                    await self.files.chmod(file_obj.path, file_obj.mode)
            else:
                file_obj.close()
        except (FileError, EngineError) as exc:
            raise _error(exc) from None

    def fsync(self, file_obj: Any) -> None:
        raise _refuse("fsync")

    def lock(self, file_obj: Any, offset: int, length: int, flags: int) -> None:
        raise _refuse("lock")

    def unlock(self, file_obj: Any, offset: int, length: int) -> None:
        raise _refuse("unlock")

    def _to_sftpname(self, parent: bytes, name: bytes) -> SFTPName:
        raise _refuse("local names")

    def exit(self) -> None:
        """End the session with exit status 0: without one OpenSSH's ``ssh`` reports 255 and
        ``scp`` exits 1 although the transfer succeeded."""
        try:
            self.channel.exit(0)
        except Exception:  # noqa: BLE001 - the channel may be closed already
            pass
