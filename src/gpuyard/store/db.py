"""Engine, sessions and migrations. Nothing connects at import time."""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    """An engine for any SQLAlchemy URL. SQLite gets WAL, a busy timeout, foreign keys and a
    queue for its writers (:class:`_WriterGate`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=20, max_overflow=20)  # no reconnects under load

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Autocommit at the driver level, so that the BEGIN below is the only one.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")  # other processes: in this one, _WriterGate
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # A write transaction takes the write lock up front (BEGIN IMMEDIATE): a deferred
            # one that reads, then writes, fails at once with "database is locked" when another
            # writer got there first, instead of waiting for the busy timeout.
            write = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        _WRITERS[engine] = _WriterGate()
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


WRITE_OPTION = "gpuyard_write"


class _WriterGate:
    """The threads of one process that want SQLite's write lock queue here first, and take it
    in turn. SQLite's own busy handler polls: a writer that finds the lock taken sleeps 1, 2, 5,
    10, 15, 20, 25 … up to 100 ms between tries, and under a steady stream of short write
    transactions it may lose every try (in ``bench/rentals.py`` the 1 % slowest rentals took
    over 100 ms, the slowest up to 0.7 s, where most took 10-20). Here the holder hands the gate
    to the writer that has waited longest when its transaction ends. SQLite's handler still
    governs writers of other processes (a CLI command on the same file)."""

    #: A writer that waits this long goes on to ``BEGIN IMMEDIATE`` without its turn, and SQLite's
    #: busy timeout (as long again) then decides, as it did before the gate.
    WAIT = 30.0

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiting: deque[threading.Lock] = deque()

    @contextmanager
    def held(self) -> Iterator[None]:
        got = self._acquire()
        try:
            yield
        finally:
            if got:
                self._release()

    def _acquire(self) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        if turn.acquire(timeout=self.WAIT):
            return True  # handed over: the gate stayed held, now by this thread
        with self._mutex:
            if turn in self._waiting:
                self._waiting.remove(turn)
                return False
        return True  # handed over as the wait ran out

    def _release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()
            else:
                self._held = False


_WRITERS: weakref.WeakKeyDictionary[Engine, _WriterGate] = weakref.WeakKeyDictionary()


#: Every id column is a 32-bit INTEGER (PostgreSQL refuses a larger literal outright).
ROW_ID_RANGE = range(-(2**31), 2**31)


class StoreSession(Session):
    """A session whose ``get`` answers None for an integer key no row can have, so a huge id
    from the wire (the edge accepts up to 2^63 - 1) is "not found" on every backend instead of
    PostgreSQL's NumericValueOutOfRange (a 500)."""

    def get(self, entity: Any, ident: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(ident, int) and not isinstance(ident, bool) and ident not in ROW_ID_RANGE:
            return None
        return super().get(entity, ident, *args, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, class_=StoreSession, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session], write: bool = True) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error. ``write=False`` marks a
    read-only unit of work (on SQLite it then does not take the write lock)."""
    gate = _WRITERS.get(factory.kw["bind"]) if write else None
    with gate.held() if gate else nullcontext(), factory() as session, session.begin():
        session.connection(execution_options={WRITE_OPTION: write})
        yield session


def serialized(session: Session) -> bool:
    """Whether this session's transaction is a SQLite write transaction: it began with BEGIN
    IMMEDIATE, so no other writer runs until it ends, and every row it has read is current
    (a session lives for one transaction: :func:`transaction`)."""
    conn = session.connection()
    return conn.dialect.name == "sqlite" and bool(conn.get_execution_options().get(WRITE_OPTION))


def lock_row(session: Session, entity: Any, ident: Any) -> Any:
    """The row ``ident`` of ``entity``, locked for this transaction and read afresh: PostgreSQL
    ``SELECT … FOR UPDATE`` (a rival may have changed it since this transaction read it). In a
    SQLite write transaction the write lock already excludes rivals, so a row this transaction
    has read is taken as it is, without reading it again. None when there is no such row."""
    if serialized(session):
        return session.get(entity, ident)
    return session.get(entity, ident, with_for_update=True, populate_existing=True)


#: The PostgreSQL advisory lock that serializes start-ups (any number that is gpuyard's alone).
STARTUP_LOCK = 0x67707579617264  # "gpuyard"


@contextmanager
def startup_lock(engine: Engine) -> Iterator[None]:
    """One process at a time migrates and initializes the database: every replica may start at
    the same moment. PostgreSQL: a session advisory lock; SQLite: an exclusive lock on a file
    beside the database (``<db>.startup.lock``)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({STARTUP_LOCK})")
            conn.commit()
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({STARTUP_LOCK})")
                conn.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    import fcntl

    with open(f"{database}.startup.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class DatabaseInUse(Exception):
    """Another gpuyard server process already serves this SQLite database."""


_held: list[Any] = []  # lock files this process holds for its lifetime


def claim_sqlite(url: str) -> None:
    """SQLite: make this process the only gpuyard server on the database file, or raise
    DatabaseInUse. Two server processes on one SQLite file would each drive every instance; to run
    several, use PostgreSQL (docs/deploy.md). Admin commands do not claim it."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    import fcntl

    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    handle = open(f"{parsed.database}.server.lock", "a")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DatabaseInUse(
            f"another gpuyard server is already running on {parsed.database}: SQLite allows one "
            "server process per database file. Stop the other one, or run several processes "
            "on PostgreSQL (--db postgresql+psycopg://…; see docs/deploy.md)"
        ) from None
    _held.append(handle)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest Alembic revision (or to ``revision``)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


READY_KEY = "ready_probe"


def write_check(engine: Engine, timeout: float = 2.0) -> str | None:
    """None when the database takes a write within ``timeout`` seconds, else why not. The probe
    really writes (one row of ``server_settings``), so a full disk, a read-only replica or a
    write lock held too long all show."""
    import time as _time

    from sqlalchemy import exc
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    from gpuyard.store.models import ServerSetting

    sqlite = engine.dialect.name == "sqlite"
    insert = sqlite_insert if sqlite else pg_insert
    stmt = insert(ServerSetting).values(key=READY_KEY, value=repr(_time.time()))
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value})
    millis = int(timeout * 1000)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(**{WRITE_OPTION: True})
            raw = conn.connection.driver_connection  # PRAGMA outside SQLAlchemy's transaction
            if sqlite:
                raw.execute(f"PRAGMA busy_timeout={millis}")
            try:
                with conn.begin():
                    if not sqlite:
                        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {millis}")
                        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {millis}")
                    conn.execute(stmt)
            finally:
                if sqlite:
                    raw.execute("PRAGMA busy_timeout=30000")
    except exc.SQLAlchemyError as err:
        return str(err.orig if getattr(err, "orig", None) is not None else err).splitlines()[0]
    return None
