"""The daemon itself: lock, socket mode, clean shutdown, crash recovery,
atomic names, per-container runtime."""
from __future__ import annotations

import concurrent.futures
import json
import os
import stat
import subprocess
import time
from pathlib import Path



def _inspect(daemon, ref):
    return json.loads(daemon.docker("inspect", ref).stdout)[0]


def test_socket_mode_and_data_root_lock(daemon):
    assert stat.S_IMODE(os.stat(daemon.sock).st_mode) == 0o660
    argv = daemon.argv()
    argv[argv.index("-H") + 1] = "unix://" + str(daemon.base / "second.sock")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "another daemon is using data root" in r.stderr
    assert not os.path.exists(daemon.base / "second.sock")


def test_concurrent_creates_one_name_exactly_one_wins(daemon, bb_image):
    def create(_):
        st, body = daemon.api("POST", "/containers/create?name=race", {"Image": "bb", "Cmd": ["true"]})
        return st
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(create, range(16)))
    assert codes.count(201) == 1 and codes.count(409) == 15
    daemon.docker("rm", "race")


def test_runtime_per_container_and_restart_verb(daemon, bb_image):
    r = daemon.docker("run", "--rm", "--runtime", "runc", bb_image, "echo", "via-runc")
    assert r.stdout == "via-runc\n"
    r = daemon.docker("run", "--rm", "--runtime", "nosuch", bb_image, "true", check=False)
    assert r.returncode == 125 and "unknown or invalid runtime name: nosuch" in r.stderr
    daemon.docker("run", "-d", "--name", "rs", bb_image, "sleep", "100")
    try:
        pid1 = _inspect(daemon, "rs")["State"]["Pid"]
        daemon.docker("restart", "-t", "1", "rs")
        st = _inspect(daemon, "rs")["State"]
        assert st["Running"] and st["Pid"] != pid1
    finally:
        daemon.docker("rm", "-f", "rs")


def test_sigterm_leaves_containers_running_and_restart_adopts(daemon, bb_image):
    daemon.docker("run", "-d", "--name", "keeper", bb_image, "sleep", "1000")
    pid = _inspect(daemon, "keeper")["State"]["Pid"]
    daemon.restart()      # SIGTERM, then start again
    assert os.path.exists(f"/proc/{pid}")
    st = _inspect(daemon, "keeper")["State"]
    assert st["Running"] and st["Pid"] == pid
    daemon.docker("kill", "keeper")
    assert daemon.docker("wait", "keeper").stdout.strip() == "137"
    daemon.docker("rm", "keeper")


def test_half_done_start_is_rolled_back_on_daemon_start(daemon, bb_image):
    """A crash between mount and running leaves a mounted rootfs, a
    bundle, a pinned netns and cgroups; the next daemon start must undo
    them (the veth side: test_network_lowlevel's reconcile test)."""
    cid = daemon.docker("create", "--name", "half", bb_image, "true").stdout.strip()
    daemon.stop()
    merged = daemon.data_root / "rootfs" / cid
    merged.mkdir(parents=True, exist_ok=True)
    bundle = daemon.exec_root / "c" / cid
    bundle.mkdir(parents=True)
    (bundle / "config.json").write_text("{}")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(merged)], check=True)
    # ... a pinned network namespace and the container's (empty) cgroups
    netns = daemon.exec_root / "netns" / cid
    netns.parent.mkdir(exist_ok=True)
    netns.touch()
    subprocess.run(["unshare", f"--net={netns}", "true"], check=True)
    cgroups = [Path(h) / f"dockyard-{daemon.bridge}" / cid
               for h in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified")
               if os.path.isdir(h)]
    for cg in cgroups:
        cg.mkdir(parents=True)
    assert os.path.ismount(netns) and cgroups
    try:
        daemon.start()
        assert not os.path.ismount(merged)
        assert not bundle.exists()
        assert not os.path.ismount(netns) and not netns.exists()
        assert not [cg for cg in cgroups if cg.exists()]
        assert _inspect(daemon, "half")["State"]["Status"] == "created"
        assert daemon.docker("start", "-a", "half").returncode == 0
    finally:
        for m in (merged, netns):
            if os.path.ismount(m):
                subprocess.run(["umount", "-l", str(m)])
        for cg in cgroups:
            if cg.exists():
                cg.rmdir()
    daemon.docker("rm", "half")


def test_restart_always_comes_back_after_daemon_restart(daemon, bb_image):
    daemon.docker("run", "-d", "--name", "phoenix", "--restart", "always", bb_image, "sleep", "1000")
    pid = _inspect(daemon, "phoenix")["State"]["Pid"]
    daemon.kill9()
    os.kill(pid, 9)          # it dies while the daemon is down
    time.sleep(0.5)
    daemon.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        st = _inspect(daemon, "phoenix")["State"]
        if st["Running"] and st["Pid"] != pid:
            break
        time.sleep(0.1)
    assert st["Running"] and st["Pid"] != pid
    daemon.docker("rm", "-f", "phoenix")


def test_logs_follow_tail_timestamps(daemon, bb_image):
    daemon.docker("run", "-d", "--name", "talker", bb_image, "sh", "-c",
                  "for i in 1 2 3 4 5; do echo line$i; done; sleep 1; echo last")
    r = daemon.docker("logs", "-f", "talker", timeout=30)
    assert r.stdout.split() == ["line1", "line2", "line3", "line4", "line5", "last"]
    r = daemon.docker("logs", "--tail", "2", "-t", "talker")
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and lines[1].endswith(" last") and lines[0].startswith("20") and "Z " in lines[0]
    daemon.docker("rm", "talker")


def test_container_frozen_by_a_cut_short_checkpoint_is_thawed(daemon, bb_image):
    from dockyard.runtime.checkpoint import freeze, freezer_of
    daemon.docker("run", "-d", "--name", "icy", bb_image, "sleep", "1000")
    try:
        pid = _inspect(daemon, "icy")["State"]["Pid"]
        path = freezer_of(pid)
        assert path and freeze(path)
        daemon.kill9()        # as if the daemon died mid-checkpoint
        daemon.start()
        with open(path) as f:
            assert f.read().strip() in ("THAWED", "0")
        assert daemon.docker("exec", "icy", "true").returncode == 0
    finally:
        daemon.docker("rm", "-f", "icy")


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_no_thread_per_running_container(daemon, bb_image):
    """Issue 16 (RSS): a running container costs the daemon no thread (each
    would hold a stack and, with glibc, its share of an arena): 30 more
    sleepers, on the default bridge, leave the count where a few left it."""
    names = [f"thr{i}" for i in range(33)]
    try:
        for n in names[:3]:
            daemon.docker("run", "-d", "--name", n, bb_image, "sleep", "1000")
        before = _threads(daemon.proc.pid)
        for n in names[3:]:
            daemon.docker("run", "-d", "--name", n, bb_image, "sleep", "1000")
        after = _threads(daemon.proc.pid)
        assert after - before < 10, (before, after)
    finally:
        daemon.docker("rm", "-f", *names, check=False)
