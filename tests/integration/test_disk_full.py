"""A daemon whose data root is a small tmpfs that the test fills up.

On a full data root: an exiting container is still cleaned up and `docker
wait` returns (the save of its exit is deferred, lookup.py); commit fails
with "no space left on device" and leaves the container running; dockyardd
restarts and serves reads, refusing writes clearly; once space is freed the
deferred saves land and every image and container works again.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

import leaks
from conftest import Daemon, shut_down

SIZE = "40m"
NO_SPACE = "no space left on device"


@pytest.fixture(scope="module")
def daemon(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A dockyardd whose data root (only) is a tmpfs of SIZE."""
    cfg = request.config
    d = Daemon(runtime=cfg.getoption("dockyard_runtime"),
               log_path=tmp_path_factory.mktemp("diskfull") / "dockyardd.log")
    d.data_root.mkdir(mode=0o710)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0710", "dytfull", str(d.data_root)],
                   check=True)
    before = None if cfg.getoption("no_leak_check") else leaks.snapshot(d.scope)
    try:
        d.start()
        yield d
    finally:
        # stops the daemon, unmounts what is under its base (the tmpfs too), checks for leaks
        errors, _notes = shut_down(d, before, False)
        subprocess.run(["umount", str(d.data_root)], capture_output=True)
    assert not errors, "\n".join(errors)


@contextlib.contextmanager
def full(d: Daemon):
    """The data root filled to the last byte; freed again afterwards."""
    filler = d.data_root / "filler"
    try:
        r = subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, text=True)
        assert "No space left on device" in r.stderr, r.stderr
        assert os.statvfs(d.data_root).f_bavail == 0
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            filler.unlink()


def inspect(d: Daemon, ref: str) -> dict:
    return json.loads(d.docker("inspect", ref).stdout)[0]


def mounted(path: Path) -> bool:
    return any(m.mountpoint == str(path) for m in leaks.parse_mountinfo(Path("/proc/self/mountinfo").read_text()))


def cgroup_dirs(d: Daemon, cid: str) -> list[str]:
    parent = f"dockyard-{d.bridge}"
    base = "/sys/fs/cgroup"
    return [p for p in [os.path.join(base, parent, cid)] + [os.path.join(base, h, parent, cid)
                                                              for h in os.listdir(base)]
            if os.path.isdir(p)]


def assert_cleaned_up(d: Daemon, cid: str) -> None:
    assert not mounted(d.data_root / "rootfs" / cid)
    assert not (d.exec_root / "netns" / cid).exists()
    deadline = time.monotonic() + 10
    while cgroup_dirs(d, cid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cgroup_dirs(d, cid) == []


def saved_state(d: Daemon, ref: str) -> dict:
    """The state as the database has it: what a daemon restart reads back."""
    d.restart()
    return inspect(d, ref)["State"]


def test_exit_on_full_disk_is_cleaned_up_and_wait_returns(daemon, bb_image):
    d = daemon
    cid = d.docker("run", "-d", "--name", "ender", bb_image, "sh", "-c", "sleep 2; exit 3").stdout.strip()
    killed = d.docker("run", "-d", "--name", "killed", bb_image, "sleep", "1000").stdout.strip()
    with full(d):
        # the exit the monitor sees, and one a verb makes
        assert d.docker("wait", "ender", timeout=30).stdout.strip() == "3"
        d.docker("kill", "killed", timeout=30)
        assert d.docker("wait", "killed", timeout=30).stdout.strip() == "137"
        for c in (cid, killed):
            assert_cleaned_up(d, c)
        st = inspect(d, "ender")["State"]
        assert (st["Status"], st["ExitCode"]) == ("exited", 3)
        r = d.docker("rename", "ender", "other", check=False)
        assert r.returncode != 0 and NO_SPACE in r.stderr.lower()
        assert inspect(d, "ender")["Name"] == "/ender"
        time.sleep(4)          # a retry of the deferred saves fails quietly meanwhile
    time.sleep(4)              # ... and the next one lands
    st = saved_state(d, "ender")
    assert (st["Status"], st["ExitCode"]) == ("exited", 3)
    assert saved_state(d, "killed")["ExitCode"] == 137
    d.docker("start", "killed")
    assert inspect(d, "killed")["State"]["Running"]
    d.docker("rm", "-f", "ender", "killed")


def test_commit_on_full_disk_leaves_the_container_running(daemon, bb_image):
    d = daemon
    d.docker("run", "-d", "--name", "snap", bb_image, "sleep", "1000")
    d.docker("exec", "snap", "sh", "-c", "echo kept > /kept")
    with full(d):
        r = d.docker("commit", "snap", "snapimg", check=False, timeout=60)
        assert r.returncode != 0
        assert NO_SPACE in r.stderr.lower()
        st = inspect(d, "snap")["State"]
        assert st["Running"] and not st["Paused"] and st["Status"] == "running"
        assert d.api("GET", "/images/snapimg/json")[0] == 404
        leftovers = [p for p in (d.data_root / "image").rglob("*") if p.name.startswith((".tmp-", "commit-"))]
        assert leftovers == []
    d.docker("commit", "snap", "snapimg")
    assert d.docker("run", "--rm", "snapimg", "cat", "/kept").stdout == "kept\n"
    assert inspect(d, "snap")["State"]["Status"] == "running"
    d.docker("rm", "-f", "snap")
    d.docker("rmi", "snapimg")


def test_daemon_restarts_on_full_disk_serves_reads_and_recovers(daemon, bb_image):
    d = daemon
    d.docker("create", "--name", "idle", bb_image, "echo", "idle")
    d.docker("create", "--name", "idle2", bb_image, "echo", "idle2")
    d.docker("run", "-d", "--name", "busy", bb_image, "sleep", "1000")
    d.docker("run", "-d", "--name", "ended", bb_image, "sleep", "1000")
    with full(d):
        d.docker("stop", "-t", "0", "ended", timeout=30)     # its exit is not saved yet
        d.restart()
        names = d.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
        assert {"idle", "busy", "ended"} <= set(names)
        assert inspect(d, "busy")["State"]["Running"]
        d.docker("images")
        d.docker("events", "--since", "0", "--until", "1")
        r = d.docker("create", "--name", "new", bb_image, "true", check=False)
        assert r.returncode != 0 and NO_SPACE in r.stderr.lower(), r.stderr
        assert d.api("GET", "/containers/new/json")[0] == 404
        r = d.docker("volume", "create", "vol", check=False)
        assert r.returncode != 0 and NO_SPACE in r.stderr.lower(), r.stderr
        d.docker("stop", "-t", "1", "busy", timeout=30)
        assert inspect(d, "busy")["State"]["Status"] == "exited"
        # start: done, or refused whole (/etc/hosts & co are written under the data root)
        r = d.docker("start", "idle", check=False, timeout=30)
        if r.returncode != 0:
            assert NO_SPACE in r.stderr.lower(), r.stderr
            assert not inspect(d, "idle")["State"]["Running"]
        # rm: done, or refused whole (its volume references cannot be dropped)
        r = d.docker("rm", "idle2", check=False)
        if r.returncode != 0:
            assert NO_SPACE in r.stderr.lower(), r.stderr
            assert inspect(d, "idle2")["State"]["Status"] == "created"
    # space is back: everything works, with no restart
    assert d.docker("start", "-a", "idle").stdout == "idle\n"
    d.docker("start", "busy")
    d.docker("start", "ended")
    assert d.docker("run", "--rm", bb_image, "echo", "ok").stdout == "ok\n"
    d.docker("volume", "create", "vol")
    d.docker("commit", "busy", "busyimg")
    assert d.docker("run", "--rm", "--name", "new", "busyimg", "echo", "fine").stdout == "fine\n"
    assert saved_state(d, "busy")["Running"]
    d.docker("rm", "-f", "idle", "busy", "ended")
    d.docker("rm", "-f", "idle2", check=False)
    d.docker("rmi", "busyimg")
    d.docker("volume", "rm", "vol")
