import os

from dockyard.daemon import users
from dockyard.runtime import lookpath


def _rootfs(tmp_path):
    r = tmp_path / "rootfs"
    (r / "bin").mkdir(parents=True)
    (r / "usr/bin").mkdir(parents=True)
    (r / "etc").mkdir()
    bb = r / "bin/busybox"
    bb.write_bytes(b"\x7fELF")
    bb.chmod(0o755)
    os.symlink("busybox", r / "bin/sh")
    os.symlink("/bin/busybox", r / "usr/bin/env")      # absolute link: must resolve inside the rootfs
    (r / "bin/noexec").write_text("x")
    (r / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/sh\n")
    (r / "etc/group").write_text("root:x:0:\nwww:x:33:\nextra:x:50:www\n")
    return str(r)


def test_lookpath(tmp_path):
    r = _rootfs(tmp_path)
    env = ["PATH=/usr/bin:/bin"]
    assert lookpath.check(r, "sh", env) is None
    assert lookpath.check(r, "env", env) is None
    assert lookpath.check(r, "/bin/sh", env) is None
    code, msg = lookpath.check(r, "nosuch", env)
    assert code == 127 and msg == 'exec: "nosuch": executable file not found in $PATH'
    code, msg = lookpath.check(r, "/nope/x", env)
    assert code == 127 and "no such file or directory" in msg
    code, msg = lookpath.check(r, "noexec", env)
    assert code == 126 and "permission denied" in msg
    # a link pointing outside the rootfs resolves inside it, never on the host
    os.symlink("/../../../../bin/true", os.path.join(r, "bin/escape"))
    assert lookpath.check(r, "escape", env)[0] == 127


def test_lookpath_leaves_mounted_paths_to_the_runtime(tmp_path):
    # a bind or volume covers these in the container: the rootfs cannot tell
    r = _rootfs(tmp_path)
    assert lookpath.check(r, "/host/usr/bin/x", [], ["/host/usr"]) is None
    assert lookpath.check(r, "tool", ["PATH=/usr/bin:/opt/tools"], ["/opt/tools/"]) is None
    # a mount elsewhere, or one whose name only shares a prefix, changes nothing
    assert lookpath.check(r, "/host/usr/bin/x", [], ["/data", "/host/us"])[0] == 127


def test_users(tmp_path):
    r = _rootfs(tmp_path)
    assert users.resolve("", r) == (0, 0, [])
    assert users.resolve("www", r) == (33, 33, [50])
    assert users.resolve("33:50", r) == (33, 50, [])
    assert users.resolve("1234", r) == (1234, 0, [])
    assert users.resolve("www:root", r)[:2] == (33, 0)
    import pytest
    from dockyard.errors import InvalidParameter
    with pytest.raises(InvalidParameter, match="unable to find user nobody"):
        users.resolve("nobody", r)


def test_process_user_groups_are_mobys(tmp_path):
    """moby's getUser: the primary gid, the groups naming the user (only without an explicit group),
    then GroupAdd (issue 14: `id` as root in busybox prints groups=0(root),10(wheel) on dockerd)."""
    r = _rootfs(tmp_path)
    (tmp_path / "rootfs" / "etc/group").write_text("root:x:0:\nwww:x:33:www\nextra:x:50:www,root\nwheel:x:10:root\n")
    assert users.process_user("", None, r) == (0, 0, [0, 50, 10])
    assert users.process_user("www", None, r) == (33, 33, [33, 33, 50])       # listed in its own group: twice, as moby
    assert users.process_user("www:extra", None, r) == (33, 50, [50])         # an explicit group: no supplementary ones
    assert users.process_user("33:0", ["wheel", "77"], r) == (33, 0, [0, 10, 77])
    assert users.process_user("1234", None, r) == (1234, 0, [0])              # no passwd entry: no groups
    assert users.process_user("www:99", None, r) == (33, 99, [99])
