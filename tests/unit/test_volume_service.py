"""The volume service's records: a volume's existence check and a
container's reference to it are one transaction, as are `rm`'s in-use
check and the removal; a failed step leaves records and data as before."""
from __future__ import annotations

import os
import threading

import pytest

from dockyard.errors import Conflict
from dockyard.store.db import Database
from dockyard.volumes import mountspec
from dockyard.volumes.service import VolumeService


@pytest.fixture
def svc(tmp_path):
    db = Database(str(tmp_path / "db.sqlite"))
    yield VolumeService(db, str(tmp_path))
    db.close()


def test_rm_racing_attach_never_leaves_a_reference_to_a_removed_volume(svc):
    for i in range(200):
        svc.create(f"v{i}")
        points = [mountspec.parse_bind(f"v{i}:/x")]
        gate, outcome = threading.Barrier(2), {}

        def rm():
            gate.wait()
            try:
                svc.remove(f"v{i}")
                outcome["rm"] = "ok"
            except Conflict:
                outcome["rm"] = "in use"

        def attach():
            gate.wait()
            svc.attach(f"c{i}", points)
        threads = [threading.Thread(target=rm), threading.Thread(target=attach)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert svc.get(f"v{i}")["Name"] == f"v{i}"          # made again when rm went first
        assert os.path.isdir(svc.get(f"v{i}")["Mountpoint"])
        assert svc.users(f"v{i}") == [f"c{i}"]
        svc.release(f"c{i}", remove_anonymous=False)
        svc.remove(f"v{i}")


def test_a_failed_attach_makes_no_volume(svc, monkeypatch):
    real = svc.db.execute

    def failing(sql, params=()):
        if sql.startswith("INSERT OR REPLACE INTO container_mounts"):
            raise OSError(28, "No space left on device")
        return real(sql, params)
    monkeypatch.setattr(svc.db, "execute", failing)
    with pytest.raises(OSError):
        svc.attach("c", [mountspec.parse_bind("fresh:/x")])
    monkeypatch.undo()
    assert svc.list() == [] and not os.path.exists(os.path.join(svc.root, "fresh"))


def test_a_failed_rm_keeps_record_and_data(svc, monkeypatch):
    vol = svc.create("kept")
    with open(os.path.join(vol["Mountpoint"], "f"), "w") as f:
        f.write("data")
    real = svc.db.execute

    def failing(sql, params=()):
        if sql.startswith("DELETE FROM volumes"):
            raise OSError(28, "No space left on device")
        return real(sql, params)
    monkeypatch.setattr(svc.db, "execute", failing)
    with pytest.raises(OSError):
        svc.remove("kept")
    monkeypatch.undo()
    assert svc.get("kept")["Name"] == "kept"
    with open(os.path.join(vol["Mountpoint"], "f")) as f:
        assert f.read() == "data"
    assert [n for n in os.listdir(svc.root) if n.startswith(".trash-")] == []
