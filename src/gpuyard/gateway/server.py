"""The SSH gateway: one listening port per instance (docs/access.md), public-key login as
``root`` with the instance's keys, sessions and SFTP in the container through the engine, and
``ssh -L`` to the container's own ports.

It runs its own asyncio loop in a thread (``gpuyard serve`` starts it beside the API;
``gpuyard gateway`` runs it alone) and learns new and ended instances from the database every
second, or at once after :meth:`Gateway.wake`."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import asyncssh
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gpuyard.gateway import ports as port_rows
from gpuyard.gateway.access import Entry, KeySource, account_and_instance_keys, entry
from gpuyard.gateway.container_files import ContainerFiles, FileError
from gpuyard.gateway.engine_http import EngineError, EngineHTTP, q
from gpuyard.gateway.exec_bridge import STDERR, Exec
from gpuyard.gateway.hostkey import fingerprint, load_host_key, write_public
from gpuyard.gateway.sftp import ContainerSFTP
from gpuyard.store.db import transaction

log = logging.getLogger("gpuyard.gateway")
T = TypeVar("T")
POLL_SECONDS = 1.0
# After a wake, wait this long before looking at the database: a burst of launches (hundreds a
# second) then costs a few looks a second, not one each.
GATHER_SECONDS = 0.2
# A full look (every live instance's port: ports.current) at most this often, and at start; the
# looks between read only the rows that may have changed (ports.changed).
FULL_LOOK_SECONDS = 10.0
WATCH_LIMIT = 1000  # more instances waiting for a port than this: the next look is a full one
# A quick look gives back the ports of instances destroyed since the last full look, less this
# (destroyed_at is the destroying process's clock, and its commit may come a little later).
DESTROYED_MARGIN_SECONDS = 60.0
BAD_PORT_SECONDS = 60.0  # a port found taken on the host is tried again after this long
SHELL = ('if command -v bash >/dev/null 2>&1; then exec bash -l; '
         'else exec sh -l; fi')
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


class _Connection(asyncssh.SSHServer):
    """One client connection to one instance's port."""

    def __init__(self, gateway: Gateway, instance_id: int):
        self.gateway, self.instance_id = gateway, instance_id
        self.conn: asyncssh.SSHServerConnection | None = None
        self.entry: Entry | None = None
        self.allowed: set[bytes] = set()

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn

    def begin_auth(self, username: str):
        return self._begin_auth(username)

    async def _begin_auth(self, username: str) -> bool:
        assert self.conn is not None
        if username != "root":
            self.conn.send_auth_banner(f"gpuyard: log in as root (ssh root@…), not {username}\n")
            return True
        try:
            self.entry = await asyncio.to_thread(self.gateway.entry, self.instance_id)
        except Exception as exc:  # noqa: BLE001 - a database error refuses the login, says why
            log.warning("instance %s: cannot read its access: %s", self.instance_id, exc)
            self.conn.send_auth_banner("gpuyard: the gateway cannot reach its database; try again\n")
            return True
        if self.entry.refusal:
            self.conn.send_auth_banner(f"gpuyard: {self.entry.refusal}\n")
            return True
        for line in self.entry.keys:
            try:
                self.allowed.add(asyncssh.import_public_key(line).public_data)
            except (asyncssh.KeyImportError, ValueError):
                continue
        if not self.allowed:
            self.conn.send_auth_banner(
                f"gpuyard: instance {self.instance_id} has no SSH keys: add yours with "
                "`gpuyard create ssh-key \"$(cat ~/.ssh/id_ed25519.pub)\"`\n")
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        ok = (username == "root" and self.entry is not None and self.entry.refusal is None
              and key.public_data in self.allowed)
        if ok and self.conn is not None:
            assert self.entry is not None
            http = EngineHTTP(self.entry.docker_url or "")
            files = ContainerFiles(http, self.entry.container or "")
            self.conn.set_extra_info(gpuyard_files=files, gpuyard_entry=self.entry,
                                     gpuyard_http=http, gpuyard_home=await home_directory(files))
        return ok

    def auth_completed(self) -> None:
        assert self.entry is not None
        log.info("instance %s: root logged in", self.instance_id)

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int):
        return self._forward(dest_host, dest_port)

    async def _forward(self, dest_host: str, dest_port: int):
        """``ssh -L``: to the container's own ports (its address on the engine's network)."""
        assert self.conn is not None and self.entry is not None
        http: EngineHTTP = self.conn.get_extra_info("gpuyard_http")
        try:
            info = await http.call("GET", f"/containers/{q(self.entry.container or '')}/json")
        except EngineError as exc:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, exc.msg) from None
        addresses = _container_addresses(info)
        names = {*LOCAL_NAMES, (info.get("Config") or {}).get("Hostname") or ""}
        if dest_host not in names and dest_host not in addresses:
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                "the gpuyard gateway forwards only to the instance's own ports (use localhost)")
        if not addresses:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED,
                                            "the container has no network address")
        target = dest_host if dest_host in addresses else addresses[0]
        return await self.conn.forward_connection(target, dest_port)


def _container_addresses(info: dict) -> list[str]:
    net = info.get("NetworkSettings") or {}
    found = [net.get("IPAddress")] + [n.get("IPAddress") for n in (net.get("Networks") or {}).values()]
    out = []
    for a in found:
        try:
            if a and ipaddress.ip_address(a) and a not in out:
                out.append(a)
        except ValueError:
            continue
    return out


async def _session(process: asyncssh.SSHServerProcess) -> None:
    """A shell or a command in the container, with a PTY when the client asked for one."""
    conn = process.channel.get_connection()
    files: ContainerFiles = conn.get_extra_info("gpuyard_files")
    home = conn.get_extra_info("gpuyard_home") or "/"
    term = process.get_terminal_type()
    tty = term is not None
    cols, rows = process.get_terminal_size()[:2] if tty else (0, 0)
    cmd = ["sh", "-c", process.command] if process.command else (
        ["sh", "-c", SHELL] if tty else ["sh"])
    env = {"TERM": term} if tty else None
    try:
        ex = await Exec.start(files.http, files.container, cmd, tty=tty, env=env, workdir=home,
                              size=(cols, rows) if tty else None)
    except EngineError as exc:
        process.stderr.write(f"gpuyard: cannot start a process in the instance: {exc.msg}\r\n"
                             .encode())
        process.exit(255)
        return
    if tty:
        await ex.resize(cols, rows)

    async def pump_in() -> None:
        while True:
            try:
                data = await process.stdin.read(65536)
            except asyncssh.TerminalSizeChanged as change:
                await ex.resize(change.width, change.height)
                continue
            except (asyncssh.BreakReceived, asyncssh.SignalReceived):
                continue
            except (asyncssh.DisconnectError, ConnectionError, BrokenPipeError):
                return
            if not data:
                ex.end_input()
                return
            try:
                await ex.write(data)
            except (ConnectionError, OSError):
                return

    feeder = asyncio.create_task(pump_in())
    try:
        async for stream, data in ex.output():
            (process.stderr if stream == STDERR else process.stdout).write(data)
            await process.stdout.drain()
        status = await ex.exit_status()
    except EngineError:
        status = 255
    except (asyncssh.Error, ConnectionError, BrokenPipeError):
        return  # the client went away: closing the exec's stream ends the process's input
    finally:
        feeder.cancel()
        ex.close()
    process.exit(status)


class Gateway:
    """The gateway's listeners and the loop that keeps them in step with the database."""

    def __init__(self, sessions: sessionmaker[Session], data_dir: Path, *, public_host: str,
                 listen_host: str | None = None, first_port: int = 2200, last_port: int = 2999,
                 default_docker_url: str | None = None, keys: KeySource | None = None,
                 poll_seconds: float = POLL_SECONDS):
        self.sessions = sessions
        self.data_dir = Path(data_dir)
        self.public_host = public_host
        self.listen_host = listen_host or _listen_address(public_host)
        self.first_port, self.last_port = first_port, last_port
        self.default_docker_url = default_docker_url
        self.keys: KeySource = keys or account_and_instance_keys
        self.poll_seconds = poll_seconds
        self.host_key = load_host_key(data_dir)
        write_public(data_dir, self.host_key)
        self.fingerprint = fingerprint(self.host_key)
        self._listeners: dict[int, tuple[int, asyncssh.SSHAcceptor]] = {}  # port → (id, acceptor)
        self._bad_ports: dict[int, float] = {}  # port → when it was found taken on this host
        self._candidates = port_rows.candidates(first_port, last_port)
        self._seen = 0  # the highest instance id a look has read
        self._watch: set[int] = set()  # the instances that waited for a port at the last look
        self._full_at: float | None = None  # when the last full look was (monotonic)
        self._full_clock = 0.0  # … and by the clock (time.time, as destroyed_at is)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._sync_lock: asyncio.Lock | None = None
        self.on_sync: Callable[[], None] | None = None

    # -- lifecycle (from other threads) ------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="ssh-gateway", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None or self._loop is None:
            return
        loop, stop = self._loop, self._stop
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout)
        self._thread = None

    def wake(self) -> None:
        """Look at the database now (a launch or destroy in this process)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def sync_now(self, timeout: float = 10.0, full: bool = True) -> None:
        """Bring the listeners in step with the database and wait until done (tests, start-up);
        ``full=False``: a quick look, as after a wake."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._sync(full=full), self._loop).result(timeout)

    def listening(self) -> dict[int, int]:
        """port → instance id."""
        return {port: iid for port, (iid, _a) in self._listeners.items()}

    def run_forever(self) -> None:
        """``gpuyard gateway``: run in this (the main) thread until SIGTERM or SIGINT, then close
        the listeners and return. (As a container's first process, with no handler, SIGTERM
        would be ignored: ``podman stop`` would wait for its timeout and kill it.)"""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._request_stop)
            await self._main()

        asyncio.run(main())

    def _request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._sync_lock = asyncio.Lock()
        self._wake, self._stop = asyncio.Event(), asyncio.Event()
        self._ready.set()
        try:
            while not self._stop.is_set():
                try:
                    await self._sync()
                except Exception:  # noqa: BLE001 - keep serving; the next round retries
                    log.exception("gateway: sync with the database failed")
                waits = [asyncio.create_task(self._wake.wait()), asyncio.create_task(self._stop.wait())]
                await asyncio.wait(waits, timeout=self.poll_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
                if self._wake.is_set() and not self._stop.is_set():
                    await asyncio.sleep(GATHER_SECONDS)  # the rest of the burst
                self._wake.clear()
        finally:
            for _port, (_iid, acceptor) in list(self._listeners.items()):
                acceptor.close()
            self._listeners.clear()

    async def _sync(self, full: bool | None = None) -> None:
        """A look: ``full`` reads every live instance's port; else only what may have changed,
        unless the last full look is :data:`FULL_LOOK_SECONDS` old (None: decide by that)."""
        if self._sync_lock is None:
            self._sync_lock = asyncio.Lock()
        async with self._sync_lock:  # the loop's round and sync_now() never interleave
            if full is None:
                full = self._full_at is None or time.monotonic() - self._full_at >= FULL_LOOK_SECONDS
            await (self._sync_full() if full else self._sync_changes())

    async def _sync_full(self) -> None:
        """Listen on every port the live instances hold, and on no other."""
        started, clock = time.monotonic(), time.time()
        (rows, waiting, taken), _released = await asyncio.to_thread(self._read, port_rows.current)
        wanted: dict[int, int] = {}
        for row in rows:
            for port in port_rows.listens_on(row.port, row.runtype):
                wanted[port] = row.instance_id
        for port, (iid, acceptor) in list(self._listeners.items()):
            if wanted.get(port) != iid:
                acceptor.close()
                del self._listeners[port]
        for port, iid in wanted.items():
            if port not in self._listeners:
                await self._listen_logged(port, iid)
        self._full_at, self._full_clock = started, clock
        self._remember(rows, waiting)
        await self._assign_new(waiting, taken)

    async def _sync_changes(self) -> None:
        """A quick look (ports.changed): close the ports of instances destroyed since, listen on
        ports other replicas gave since, give ports to the instances waiting. A port released by
        another replica is closed here at the next full look; meanwhile its listener refuses every
        login (access is read per connection)."""
        seen, watch = self._seen, frozenset(self._watch)
        (rows, waiting), released = await asyncio.to_thread(
            self._read, lambda session: port_rows.changed(session, seen, watch),
            self._full_clock - DESTROYED_MARGIN_SECONDS)
        if released:
            gone = set(released)
            for port, (iid, _acceptor) in list(self._listeners.items()):
                if iid in gone:
                    self._close(port)
        for row in rows:
            for port in port_rows.listens_on(row.port, row.runtype):
                held = self._listeners.get(port)
                if held is not None and held[0] != row.instance_id:  # handed on since
                    self._close(port)
                    held = None
                if held is None:
                    await self._listen_logged(port, row.instance_id)
        taken = set(self._listeners) | {row.port for row in rows}
        self._remember(rows, waiting)
        await self._assign_new(waiting, taken)

    async def _listen_logged(self, port: int, instance_id: int) -> None:
        try:
            await self._listen(port, instance_id)
        except OSError as exc:
            log.warning("gateway: cannot listen on port %s for instance %s: %s", port,
                        instance_id, exc)

    def _read(self, read: Callable[[Session], T], since: float | None = None) -> tuple[T, list[int]]:
        """``read(session)`` (ports.current, ports.changed) in one read transaction; the ports of
        destroyed instances (destroyed at ``since`` or later) are given back first, in a write
        transaction only when there are some (SQLite has one writer: a look costs no write).
        With the ids of the instances whose ports were given back."""
        with transaction(self.sessions, write=False) as session:
            if not port_rows.destroyed_holding(session, since):
                return read(session), []
        with transaction(self.sessions) as session:
            released = port_rows.release_destroyed(session, since)
            return read(session), released

    def _remember(self, rows: list[port_rows.Assigned], waiting: list[tuple[int, str | None]]) -> None:
        """What the next quick look starts from: the highest instance id this look read, and the
        instances waiting for a port."""
        self._seen = max([self._seen, *(row.instance_id for row in rows), *(iid for iid, _r in waiting)])
        self._watch = {iid for iid, _r in waiting}
        if len(self._watch) > WATCH_LIMIT:  # too many to name in one query (SQLite's bound)
            self._watch, self._full_at = set(), None

    async def _assign_new(self, waiting: list[tuple[int, str | None]], taken: set[int]) -> None:
        if not waiting:
            return
        now = time.monotonic()
        self._bad_ports = {p: t for p, t in self._bad_ports.items() if now - t < BAD_PORT_SECONDS}
        pool = (p for p in self._candidates  # (read as ports are opened below)
                if p not in taken and p not in self._bad_ports and p not in self._listeners
                and p + 1 not in self._listeners)
        listening: list[tuple[int, int, list[int]]] = []  # (instance, port, ports opened)
        for iid, runtype in waiting:
            for port in pool:
                opened = []
                try:
                    for p in port_rows.listens_on(port, runtype):
                        await self._listen(p, iid)
                        opened.append(p)
                except OSError:
                    for p in opened:
                        self._close(p)
                    self._bad_ports[port] = now  # taken on this host by something else
                    continue
                listening.append((iid, port, opened))
                break
            else:
                log.warning("gateway: no free port left in %s-%s for instance %s",
                            self.first_port, self.last_port, iid)
                break
        if not listening:
            return
        claimed = await asyncio.to_thread(self._claim, [(iid, port) for iid, port, _ in listening])
        for iid, port, opened in listening:
            if iid in claimed:
                log.info("gateway: instance %s on port %s", iid, port)
            else:
                for p in opened:
                    self._close(p)

    def _claim(self, wanted: list[tuple[int, int]]) -> set[int]:
        """Record each (instance, port) of ``wanted``; the instances that got theirs. One
        transaction for all of them; one each when another replica took one of the ports
        meanwhile (its unique index refuses the whole transaction)."""
        try:
            with transaction(self.sessions) as session:
                return {iid for iid, port in wanted
                        if port_rows.claim(session, iid, port, self.public_host)}
        except IntegrityError:
            if len(wanted) == 1:
                return set()
        return {iid for iid, port in wanted if self._claim([(iid, port)])}

    def _close(self, port: int) -> None:
        found = self._listeners.pop(port, None)
        if found is not None:
            found[1].close()

    async def _listen(self, port: int, instance_id: int) -> None:
        acceptor = await asyncssh.create_server(
            lambda: _Connection(self, instance_id), self.listen_host, port,
            server_host_keys=[self.host_key], process_factory=_session,
            sftp_factory=ContainerSFTP, allow_scp=True, encoding=None, line_editor=False,
            agent_forwarding=False, x11_forwarding=False, reuse_address=True,
            server_version="gpuyard",
            # no GSS (Kerberos) login here: without gss_host asyncssh resolves this host's FQDN
            # (a reverse DNS lookup, seconds where DNS is slow) for every listener it opens
            gss_host=None, gss_kex=False, gss_auth=False,
        )
        self._listeners[port] = (instance_id, acceptor)

    # -- per connection (worker threads) -----------------------------------------------------
    def entry(self, instance_id: int) -> Entry:
        with transaction(self.sessions) as session:
            found = entry(session, instance_id, self.default_docker_url, self.keys)
        return found


def _listen_address(public_host: str) -> str:
    """Listen on the address users reach when it is a local IP literal; otherwise on all."""
    try:
        ipaddress.ip_address(public_host)
        return public_host
    except ValueError:
        return "0.0.0.0" if public_host != "localhost" else "127.0.0.1"


async def home_directory(files: ContainerFiles) -> str:
    for candidate in ("/root", "/"):
        try:
            if (await files.stat(candidate)).is_dir:
                return candidate
        except (FileError, EngineError):
            continue
    return "/"


