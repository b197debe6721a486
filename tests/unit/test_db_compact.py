"""store/db.py keeps its files as small as what they hold: the WAL bounded,
the space of deleted rows given back."""
import os
import sqlite3

from dockyard.store.db import COMPACT_FREE, JOURNAL_SIZE_LIMIT, Database


def sizes(path):
    def size(p):
        try:
            return os.path.getsize(p)
        except FileNotFoundError:
            return 0
    return size(path), size(path + "-wal")


def fill_and_empty(db, rows=40, row_size=1 << 20):
    db.ensure_schema("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(rows):
        db.execute("INSERT INTO t (id, v) VALUES (?, ?)", (100 + i, "x" * row_size))
        assert sizes(db_path(db))[1] <= JOURNAL_SIZE_LIMIT + 2 * row_size
    for i in range(rows):
        db.execute("DELETE FROM t WHERE id=?", (100 + i,))
    with db.transaction() as conn:
        conn.execute("DELETE FROM t WHERE id >= 100")


def db_path(db):
    return db._wal[:-len("-wal")]


def test_wal_stays_bounded_and_deleted_rows_give_their_space_back(tmp_path):
    path = str(tmp_path / "d.db")
    db = Database(path)
    fill_and_empty(db)
    main, wal = sizes(path)
    assert wal <= JOURNAL_SIZE_LIMIT
    assert main < COMPACT_FREE + (1 << 20)
    db.close()


def test_a_database_made_without_auto_vacuum_is_converted(tmp_path):
    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("INSERT INTO t VALUES (1, 'kept')")
    conn.commit()
    conn.close()
    db = Database(path)
    assert db.one("PRAGMA auto_vacuum")[0] == 2
    assert db.one("SELECT v FROM t WHERE id=1")["v"] == "kept"
    fill_and_empty(db)
    assert sizes(path)[0] < COMPACT_FREE + (1 << 20)
    db.close()
