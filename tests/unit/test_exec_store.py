"""Exec sessions on disk: records round-trip, rows go with their container,
what a daemon start does with an unfinished exec, moby's GC rules."""
import pytest

from dockyard.daemon.container import Container
from dockyard.daemon.exec import Exec
from dockyard.daemon.exec_store import (KEEP_FINISHED, ExecStore, collectable, from_record,
                                        recovery_verdict, to_record)
from dockyard.daemon.lookup import ContainerStore
from dockyard.store.db import Database

CID = "c" * 64


@pytest.fixture
def stores(tmp_path):
    db = Database(str(tmp_path / "db"))
    containers = ContainerStore(db)
    containers.add(Container(id=CID, name="web", created="2026-01-01T00:00:00Z", image="sha256:" + "0" * 64,
                             image_ref="bb", config={}, host_config={}))
    return containers, ExecStore(db)


def _ex(eid="e" * 64, **kw):
    return Exec(id=eid, container_id=CID, cmd=["sh", "-c", "exit 7"], **kw)


def test_record_round_trip_keeps_config_and_state():
    ex = _ex(env=["A=1"], user="nobody", workdir="/tmp", privileged=True, tty=True, attach_stdin=True,
             attach_stdout=True, detach_keys="ctrl-x", console_size=(30, 90), running=True, started=True,
             pid=42, created_at=1.5)
    back = Exec(**from_record(ex.id, CID, to_record(ex)))
    assert back.to_api() == ex.to_api()
    assert (back.console_size, back.env, back.workdir, back.created_at) == ((30, 90), ["A=1"], "/tmp", 1.5)


def test_unknown_record_keys_are_ignored():
    kw = from_record("x", CID, {"cmd": ["true"], "from_a_newer_daemon": 1})
    assert Exec(**kw).cmd == ["true"]


def test_rows_written_updated_and_gone_with_their_container(stores):
    containers, store = stores
    ex = _ex()
    store.add(ex)
    ex.started, ex.exit_code = True, 7
    store.save(ex)
    [(eid, cid, rec)] = store.load()
    assert (eid, cid, rec["exit_code"], rec["started"]) == (ex.id, CID, 7, True)
    containers.remove(containers.get(CID))   # foreign key: the exec row goes too
    assert store.load() == []


def test_delete_for_container_and_by_id(stores):
    _, store = stores
    for i in range(3):
        store.add(_ex(str(i) * 64))
    store.delete(["0" * 64])
    assert sorted(e for e, _, _ in store.load()) == ["1" * 64, "2" * 64]
    store.delete_for_container(CID)
    assert store.load() == []


@pytest.mark.parametrize("started, have_dir, code, alive, verdict", [
    (False, False, None, False, "keep"),     # created, never started: still startable
    (True, True, 7, False, "finish"),        # ended while we were down: conmon's exit file
    (True, True, 7, True, "finish"),         # exit file written, conmon not gone yet
    (False, True, 0, False, "finish"),       # crash between launch and the record's write
    (True, True, None, True, "watch"),       # still running
    (False, True, None, True, "watch"),
    (True, True, None, False, "lost"),       # conmon killed before recording anything
    (True, False, None, False, "lost"),      # its dir went (bundle removed)
])
def test_recovery_verdict(started, have_dir, code, alive, verdict):
    assert recovery_verdict(started, have_dir, code, alive) == verdict


def test_gc_keeps_running_and_recent_execs_and_drops_old_finished_ones():
    now = 10_000.0
    assert not collectable(_ex(started=True, running=True, created_at=0), True, now)
    assert not collectable(_ex(started=True, finished_at=now - 1), True, now)
    assert collectable(_ex(started=True, finished_at=now - KEEP_FINISHED), True, now)
    # never started: kept while the container runs (it may still be started)
    assert not collectable(_ex(created_at=0), True, now)
    assert collectable(_ex(created_at=0), False, now)
    assert not collectable(_ex(created_at=now - 1), False, now)


def test_inspect_process_config_as_mobys():
    """moby's ExecProcessConfig: `user` is omitempty, `privileged` always there."""
    pc = _ex().to_api()["ProcessConfig"]
    assert pc == {"tty": False, "entrypoint": "sh", "arguments": ["-c", "exit 7"], "privileged": False}
    assert _ex(user="nobody").to_api()["ProcessConfig"]["user"] == "nobody"


def test_live_ids_are_the_execs_not_yet_ended(stores):
    """Container inspect's ExecIDs, as moby's container.ExecCommands: created and
    running execs; one that exited is dropped (inspect said null always)."""
    from dockyard.daemon.exec import ExecManager
    mgr = ExecManager.__new__(ExecManager)
    mgr._execs = {e.id: e for e in (_ex("a" * 64), _ex("b" * 64, started=True, running=True),
                                    _ex("d" * 64, started=True, running=False, exit_code=0),
                                    Exec(id="f" * 64, container_id="x" * 64, cmd=["true"]))}
    assert sorted(mgr.live_ids(CID)) == ["a" * 64, "b" * 64]
    assert mgr.live_ids("y" * 64) == []
