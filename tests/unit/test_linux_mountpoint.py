"""linux.is_mountpoint: one statx (STATX_ATTR_MOUNT_ROOT), the same answers
as the mount table, bind mounts of the same filesystem included."""
import os

import pytest

from dockyard import linux


def _in_mountinfo(path: str) -> bool:
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def test_agrees_with_the_mount_table(tmp_path):
    for p in ("/", "/proc", str(tmp_path), str(tmp_path / "missing")):
        assert linux.is_mountpoint(p) == _in_mountinfo(p), p
    assert linux.is_mountpoint("/proc") and not linux.is_mountpoint(str(tmp_path))


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_bind_mount_on_the_same_filesystem_is_one(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    linux.mount(str(d), str(d), None, 4096)        # MS_BIND
    try:
        assert linux.is_mountpoint(str(d)) and _in_mountinfo(str(d))
    finally:
        linux.umount(str(d), detach=False)
    assert not linux.is_mountpoint(str(d))


def test_the_statx_answer_is_used_where_the_kernel_gives_it(monkeypatch):
    if linux._mount_root("/proc") is None:
        pytest.skip("this kernel or libc has no STATX_ATTR_MOUNT_ROOT")
    monkeypatch.setattr("builtins.open", None)     # no mount table read at all
    assert linux.is_mountpoint("/proc") is True
