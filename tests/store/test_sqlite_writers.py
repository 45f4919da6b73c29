"""SQLite's writers in one process take the write lock in turn (store/db.py ``_WriterGate``): a
writer that waits is not starved by another thread's stream of short write transactions, as it
was with SQLite's polling busy handler alone, and a failed transaction hands the lock on."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from gpuyard.store.db import make_engine, make_sessionmaker, transaction


@pytest.fixture
def factory(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE log (id INTEGER PRIMARY KEY, who TEXT NOT NULL)"))
    yield make_sessionmaker(engine)
    engine.dispose()


def _write(factory, who: str) -> None:
    with transaction(factory) as session:
        session.execute(text("INSERT INTO log (who) VALUES (:who)"), {"who": who})


def _log(factory) -> list[str]:
    with transaction(factory, write=False) as session:
        return list(session.execute(text("SELECT who FROM log ORDER BY id")).scalars())


def test_a_waiting_writer_goes_before_the_holders_next_transaction(factory):
    waiting = threading.Event()

    def other_writer():
        waiting.set()
        _write(factory, "other")

    other = threading.Thread(target=other_writer)
    with transaction(factory) as session:
        session.execute(text("INSERT INTO log (who) VALUES ('first')"))
        other.start()
        assert waiting.wait(10)
        threading.Event().wait(0.5)  # the other writer is now waiting for the lock
    # This thread writes again at once; the writer that waited goes first. (With SQLite's busy
    # handler alone, it slept between tries and this thread took the lock again.)
    for n in range(5):
        _write(factory, f"again {n}")
    other.join(10)
    assert _log(factory)[:3] == ["first", "other", "again 0"]


def test_a_failed_write_transaction_hands_the_lock_on(factory):
    with pytest.raises(RuntimeError), transaction(factory) as session:
        session.execute(text("INSERT INTO log (who) VALUES ('rolled back')"))
        raise RuntimeError("the unit of work fails")
    done = threading.Thread(target=_write, args=(factory, "next"))
    done.start()
    done.join(10)
    assert not done.is_alive()
    assert _log(factory) == ["next"]
