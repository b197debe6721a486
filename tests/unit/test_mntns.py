"""runtime/mntns.py: what the runtime mount namespace leaves out, and what
a container's conmon gets moved in (issue 16)."""
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
