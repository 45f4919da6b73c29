"""Processes in a container through the engine's exec API: create the exec, start it on a
hijacked connection (stdin in, output out), follow window sizes, read the exit status.

Without a TTY the engine multiplexes stdout and stderr in frames with an 8-byte header (stream
id, 3 zero bytes, big-endian length); with a TTY the output is raw. The end of stdin is a
half-close of the connection."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

from gpuyard.gateway.engine_http import Answer, EngineError, EngineHTTP, q

STDOUT, STDERR = 1, 2


class Exec:
    """One process started in a container."""

    def __init__(self, http: EngineHTTP, exec_id: str, answer: Answer, tty: bool):
        self.http, self.id, self.answer, self.tty = http, exec_id, answer, tty

    @classmethod
    async def start(cls, http: EngineHTTP, container: str, cmd: list[str], *, tty: bool = False,
                    env: dict[str, str] | None = None, workdir: str | None = None,
                    size: tuple[int, int] | None = None) -> Exec:
        config = {"AttachStdin": True, "AttachStdout": True, "AttachStderr": True, "Tty": tty,
                  "Cmd": cmd}
        if env:
            config["Env"] = [f"{k}={v}" for k, v in env.items()]
        if workdir:
            config["WorkingDir"] = workdir
        if tty and size:
            config["ConsoleSize"] = [size[1], size[0]]  # rows, columns
        made = await http.call("POST", f"/containers/{q(container)}/exec", config)
        exec_id = made["Id"]
        body = {"Detach": False, "Tty": tty}
        if tty and size:
            body["ConsoleSize"] = [size[1], size[0]]
        answer = await http.request("POST", f"/exec/{exec_id}/start", body, upgrade=True)
        if answer.status >= 400:
            data = await answer.body()
            answer.close()
            raise EngineError(data.decode(errors="replace").strip(), answer.status)
        return cls(http, exec_id, answer, tty)

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(stream, data) until the process's output ends."""
        reader = self.answer.reader
        if self.tty:
            while data := await reader.read(65536):
                yield STDOUT, data
            return
        while True:
            try:
                head = await reader.readexactly(8)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            stream, length = head[0], struct.unpack(">I", head[4:])[0]
            left = length
            while left:
                data = await reader.read(min(left, 65536))
                if not data:
                    return
                left -= len(data)
                yield (STDERR if stream == STDERR else STDOUT), data

    async def write(self, data: bytes) -> None:
        self.answer.writer.write(data)
        await self.answer.writer.drain()

    def end_input(self) -> None:
        """Half-close: the process reads the end of its stdin."""
        try:
            if self.answer.writer.can_write_eof():
                self.answer.writer.write_eof()
        except (OSError, RuntimeError):
            pass

    async def resize(self, cols: int, rows: int) -> None:
        if not self.tty or cols <= 0 or rows <= 0:
            return
        try:
            await self.http.call("POST", f"/exec/{self.id}/resize?h={rows}&w={cols}")
        except EngineError:
            pass  # the process may be gone already

    async def exit_status(self) -> int:
        """The exit code, once the engine has it (it may lag the end of the output a moment)."""
        for _ in range(100):
            info = await self.http.call("GET", f"/exec/{self.id}/json")
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            await asyncio.sleep(0.05)
        return 255

    def close(self) -> None:
        self.answer.close()


async def run(http: EngineHTTP, container: str, cmd: list[str],
              stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    """Run ``cmd`` to its end: (exit status, stdout, stderr)."""
    ex = await Exec.start(http, container, cmd)
    try:
        if stdin:
            await ex.write(stdin)
        ex.end_input()
        out, err = bytearray(), bytearray()
        async for stream, data in ex.output():
            (err if stream == STDERR else out).extend(data)
        return await ex.exit_status(), bytes(out), bytes(err)
    finally:
        ex.close()
