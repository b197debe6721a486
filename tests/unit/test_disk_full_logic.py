"""A full disk, simulated with SQLite's max_page_count (it answers SQLITE_FULL,
"database or disk is full", as a full filesystem does): saves are deferred and
retried, creates and renames are refused with "no space left on device" and
change nothing, no transaction is left open; the event log survives a
compaction the disk refuses."""
import json
import os

import pytest

from dockyard.daemon.container import Container
from dockyard.daemon.events import Events
from dockyard.daemon.lookup import ContainerStore
from dockyard.errors import NoSpace
from dockyard.store.db import Database, is_full


def _c(cid, name, **config):
    return Container(id=cid, name=name, created="2026-01-01T00:00:00Z", image="sha256:" + "0" * 64,
                     image_ref="bb", config=dict(config), host_config={})


def _fill(db: Database) -> None:
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = db.one("PRAGMA page_count")[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def _free(db: Database) -> None:
    db.execute("PRAGMA max_page_count = 1000000")


@pytest.fixture
def db(tmp_path):
    d = Database(str(tmp_path / "db"))
    yield d
    d.close()


def test_sqlite_full_is_nospace_and_leaves_no_transaction_open(db):
    db.ensure_schema("CREATE TABLE t (v TEXT)")
    _fill(db)
    with pytest.raises(NoSpace, match="no space left on device"):
        with db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))
    with pytest.raises(NoSpace) as e:
        db.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))
    assert is_full(e.value) and db.path in e.value.message
    _free(db)
    with db.transaction() as conn:          # no "transaction within a transaction"
        conn.execute("INSERT INTO t VALUES ('y')")
    assert [r[0] for r in db.query("SELECT v FROM t")] == ["y"]


def test_is_full_knows_enospc_and_nothing_else():
    assert is_full(OSError(28, "No space left on device"))
    assert is_full(OSError(122, "Disk quota exceeded"))
    assert not is_full(OSError(13, "Permission denied"))
    assert not is_full(ValueError("disk is full"))


def test_saves_are_deferred_on_a_full_disk_and_flushed_later(db, tmp_path):
    store = ContainerStore(db)
    a = _c("a" * 64, "a")
    b = _c("b" * 64, "b")
    store.add(a)
    store.add(b)
    _fill(db)
    a.config["Env"] = ["BIG=" + "x" * 100_000]      # a record that needs new pages
    a.state.exit_code = 3
    store.save(a)                                   # no error: the in-memory state stands
    assert store.dirty == 1 and store.get("a") is a
    store.remove(b)                                 # ... and a removal is done in memory
    assert store.find("b") is None
    assert store.flush() >= 1                       # still full: still waiting
    _free(db)
    assert store.flush() == 0 and store.dirty == 0
    again = ContainerStore(Database(str(tmp_path / "db")))    # what a restart reads
    assert again.get("a").state.exit_code == 3
    assert again.find("b") is None


def test_create_and_rename_are_refused_whole_on_a_full_disk(db, tmp_path):
    store = ContainerStore(db)
    a = _c("a" * 64, "a")
    store.add(a)
    _fill(db)
    with pytest.raises(NoSpace):
        store.add(_c("c" * 64, "c", Env=["BIG=" + "x" * 100_000]))
    assert store.find("c") is None and not store.name_taken("c")
    a.config["Env"] = ["BIG=" + "x" * 100_000]
    with pytest.raises(NoSpace):
        store.rename(a, "renamed")
    assert a.name == "a" and store.get("a") is a and store.find("renamed") is None
    _free(db)
    store.rename(a, "renamed")
    assert ContainerStore(Database(str(tmp_path / "db"))).get("renamed").id == a.id


def test_a_deferred_delete_does_not_hold_the_name(db):
    store = ContainerStore(db)
    a = _c("a" * 64, "web", Env=["BIG=" + "x" * 200_000])
    store.add(a)
    _fill(db)
    store.remove(a)
    _free(db)
    store.add(_c("b" * 64, "web"))          # the delete lands first
    assert store.get("web").id == "b" * 64


def test_event_log_that_cannot_be_compacted_still_opens_and_appends(tmp_path):
    path = str(tmp_path / "events.jsonl")
    with open(path, "w") as f:
        f.write(json.dumps({"Type": "container", "Action": "old", "timeNano": 1}) + "\n")
    os.mkdir(path + ".tmp")                 # the rewrite fails, as on a full disk
    ev = Events(path=path)
    assert [e["Action"] for e in ev.history()] == ["old"]
    ev.emit("container", "new", "x")
    ev.close()
    with open(path) as f:
        assert [json.loads(line)["Action"] for line in f] == ["old", "new"]
