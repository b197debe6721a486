"""runtime/mntns.py: what the runtime mount namespace leaves out, and what
a container's conmon gets moved in (issue 16)."""
import os
import shutil
import subprocess

import pytest

from dockyard import linux
from dockyard.runtime import mntns

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - overlay overlay rw,lowerdir=/x
28 27 254:0 / /usr rw,relatime - overlay overlay rw,lowerdir=/y
29 27 0:5 / /var/lib/dy rw - tmpfs tmpfs rw
30 29 0:6 / /var/lib/dy/overlay/abc/merged rw - overlay overlay rw
31 29 0:7 / /var/lib/dy/volumes/v/_data rw - tmpfs tmpfs rw
32 27 0:8 / /run/dy rw - tmpfs tmpfs rw
33 32 0:9 mnt:[4026532] /run/dy/netns/abc rw - nsfs nsfs rw
34 32 0:10 / /run/dy/shm/abc rw - tmpfs shm rw
35 27 0:11 / /var/lib/docker/overlay2/def/merged rw - overlay overlay rw
36 27 0:12 net:[4026533] /run/netns/cni-1 rw - nsfs nsfs rw
37 27 0:13 / /mnt/with\\040space rw - tmpfs tmpfs rw
38 27 0:14 / /sys/fs/cgroup rw - tmpfs tmpfs rw
"""


def test_hidden_leaves_out_every_container_mount_and_keeps_the_host():
    mounts = mntns.parse_mounts(MOUNTINFO)
    assert ("/mnt/with space", "tmpfs") in mounts
    got = mntns.hidden(mounts, ["/var/lib/dy", "/run/dy"])
    assert set(got) == {"/var/lib/dy/overlay/abc/merged", "/var/lib/dy/volumes/v/_data", "/run/dy/netns/abc",
                        "/run/dy/shm/abc", "/var/lib/docker/overlay2/def/merged", "/run/netns/cni-1"}
    # deepest first, so none is unmounted from under another
    depths = [p.count("/") for p in got]
    assert depths == sorted(depths, reverse=True)


def test_hidden_keeps_a_root_and_what_holds_one():
    mounts = [("/srv/dy", "tmpfs"), ("/srv/dy/data", "ext4"), ("/srv/dy/data/exec", "tmpfs"),
              ("/srv/dy/data/overlay/a/merged", "overlay")]
    assert mntns.hidden(mounts, ["/srv/dy/data", "/srv/dy/data/exec"]) == ["/srv/dy/data/overlay/a/merged"]


def test_carried_paths_from_the_spec():
    spec = {"root": {"path": "/d/overlay/a/merged"},
            "linux": {"namespaces": [{"type": "network", "path": "/e/netns/a"}, {"type": "mount"},
                                     {"type": "ipc", "path": "/proc/123/ns/ipc"}]},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                       {"destination": "/etc/hosts", "type": "bind", "source": "/d/containers/a/hosts",
                        "options": ["rbind", "rprivate"]},
                       {"destination": "/x", "source": "/src", "options": ["rbind"]},
                       {"destination": "/dev/shm", "type": "tmpfs", "source": "shm"}]}
    assert mntns.carried_paths(spec) == ["/src", "/e/netns/a", "/d/containers/a/hosts", "/d/overlay/a/merged"]


def test_a_bind_of_the_root_starts_in_the_daemons_namespace():
    spec = {"root": {"path": "/d/overlay/a/merged"},
            "mounts": [{"destination": "/host", "type": "bind", "source": "/", "options": ["rbind"]}]}
    assert mntns.carried_paths(spec) is None


def test_no_namespace_no_prefix(monkeypatch):
    ns = mntns.RuntimeNamespace("/nonexistent-helper", ["/tmp/x"])
    monkeypatch.setattr(ns, "path", lambda: None)
    assert ns.prefix(["/tmp"]) == ([], [])
    assert ns.prefix(None) == ([], [])


def test_without_a_compiler_conmon_starts_in_the_daemons_namespace(tmp_path, monkeypatch):
    from dockyard.runtime import runtimes
    monkeypatch.setattr(runtimes, "_compile_helper", lambda *a, **kw: None)
    rts = runtimes.Runtimes(str(tmp_path / "exec"), data_root=str(tmp_path / "data"), private_crun_prefix=None)
    assert rts.mntns is None
    assert all(rt.mntns is None and rt._enter(["/x"]) == ((), ()) for rt in rts.available.values())
    assert any("mount namespace" in n for n in rts.notes)


@pytest.mark.skipif(os.geteuid() != 0 or not (shutil.which("cc") or shutil.which("gcc")),
                    reason="needs root and a C compiler")
def test_enter_hides_the_containers_mounts_and_carries_one_in(tmp_path):
    """A tmpfs under the data root (a container's mount) is not in the runtime
    namespace; one carried in is, at its path, with its content; the daemon's
    namespace keeps both; a carry onto a path missing there falls back to it."""
    from dockyard.runtime import runtimes
    helper = runtimes._compile_helper("mntns_enter.c", "dockyard-enter", str(tmp_path / "bin"))
    data = tmp_path / "data"
    mine, other = data / "overlay" / "mine", data / "overlay" / "other"
    mine.mkdir(parents=True)
    other.mkdir(parents=True)
    mounted = []
    fds: list[int] = []
    try:
        for d in (other, mine):
            linux.mount("tmpfs", str(d), "tmpfs")
            mounted.append(d)
        (mine / "marker").write_text("mine")
        ns = mntns.RuntimeNamespace(helper, [str(data), str(tmp_path / "exec")])
        argv, fds = ns.prefix([str(mine)])
        assert argv[:3] == [helper, ns.path(), "1"]
        r = subprocess.run([*argv, "/bin/sh", "-c", "cat /proc/self/mountinfo; cat marker; pwd"],
                           cwd=str(mine), capture_output=True, text=True, pass_fds=fds)
        for fd in fds:
            os.close(fd)
        fds = []
        points = [p for p, _ in mntns.parse_mounts(r.stdout.split("\n2", 1)[0])]
        assert r.returncode == 0, r.stderr
        assert str(mine) in r.stdout and str(other) not in r.stdout
        assert r.stdout.rstrip().endswith(f"mine{mine}")
        assert points and str(other) not in points
        assert linux.is_mountpoint(str(mine)) and linux.is_mountpoint(str(other))   # the daemon's view
        # a carry whose path the runtime namespace lacks: conmon starts where the daemon is
        argv, fds = ns.prefix([str(other)])
        argv[4] = str(other / "gone")
        r = subprocess.run([*argv, "/bin/cat", "/proc/self/mountinfo"], capture_output=True, text=True,
                           pass_fds=fds)
        assert r.returncode == 0 and "move_mount" in r.stderr
        assert str(other) in r.stdout and str(mine) in r.stdout
    finally:
        for fd in fds:
            os.close(fd)
        for d in reversed(mounted):
            linux.umount(str(d))
