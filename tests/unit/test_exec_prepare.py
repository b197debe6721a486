"""The exec's process spec is made right after create (while the client
reads the answer and sends the start), and a start soon after uses it
without reading the container's files again; a later one reads them."""
from __future__ import annotations

import asyncio
import json
import os
import types

import pytest

from dockyard.daemon import exec as execmod
from dockyard.daemon.container import Container
from dockyard.daemon.lookup import ContainerStore
from dockyard.daemon.paths import Layout
from dockyard.store.db import Database

CID = "c" * 64


class _Runtime:
    def __init__(self):
        self.specs = []

    async def exec(self, cid, eid, name, *, exec_dir, socket_dir, spec, tty, stdin, on_attach=None):
        self.specs.append(spec)
        done = asyncio.get_running_loop().create_future()
        done.set_result(0)
        return types.SimpleNamespace(pid=4242, wait=lambda: done)


@pytest.fixture
def mgr(tmp_path):
    db = Database(str(tmp_path / "db"))
    containers = ContainerStore(db)
    c = Container(id=CID, name="web", created="2026-01-01T00:00:00Z", image="sha256:" + "0" * 64,
                  image_ref="bb", config={}, host_config={})
    c.state.status, c.state.pid = "running", 99
    containers.add(c)
    layout = Layout(str(tmp_path / "data"), str(tmp_path / "exec"))
    bundle = layout.container(CID).bundle
    os.makedirs(os.path.join(bundle, "rootfs", "bin"))
    true = os.path.join(bundle, "rootfs", "bin", "true")
    open(true, "w").close()
    os.chmod(true, 0o755)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump({"process": {"args": ["sleep"], "env": ["PATH=/bin"], "cwd": "/"}, "root": {"path": "rootfs"}}, f)
    rt = _Runtime()
    events = []
    m = execmod.ExecManager(db, containers, layout, lambda c: rt, frozenset(), lambda c, a, **kw: events.append(a),
                            spawn=lambda coro: asyncio.ensure_future(coro))
    return m, c, rt, bundle


def _run(m, c, bundle, *, forget_files_after_create: bool):
    async def go():
        ex = m.create(c, {"Cmd": ["true"]})
        await asyncio.sleep(0)                       # the create's answer is out: the spec is made now
        made = ex.prepared is not None
        if forget_files_after_create:
            os.unlink(os.path.join(bundle, "config.json"))
        await m.start(ex, c, attach=False)
        await asyncio.wait_for(ex.done.wait(), 5)
        return made, ex
    return asyncio.run(go())


def test_start_right_after_create_uses_the_spec_made_then(mgr):
    m, c, rt, bundle = mgr
    made, ex = _run(m, c, bundle, forget_files_after_create=True)
    assert made
    assert rt.specs[0]["args"] == ["true"] and rt.specs[0]["env"] == ["PATH=/bin"]
    assert ex.exit_code == 0 and ex.prepared is None


def test_a_later_start_reads_the_container_again(mgr, monkeypatch):
    m, c, rt, bundle = mgr
    monkeypatch.setattr(execmod, "PREPARED_FOR", 0.0)
    with pytest.raises(FileNotFoundError):
        _run(m, c, bundle, forget_files_after_create=True)
    assert rt.specs == []
