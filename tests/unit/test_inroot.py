"""inroot: container paths resolved on fds inside the root, by openat2 and by
the component walk (the two must agree), across the container's mounts."""
from __future__ import annotations

import os

import pytest

from dockyard import inroot


@pytest.fixture(params=["openat2", "walk"])
def mode(request, monkeypatch):
    if request.param == "walk":
        monkeypatch.setattr(inroot, "_openat2_ok", False)
    elif not inroot.has_openat2():
        pytest.skip("no openat2 on this kernel")
    return request.param


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_text("ctr")
    (r / "a" / "b").mkdir(parents=True)
    os.symlink("/", r / "up")
    os.symlink("../../../..", r / "etc" / "climb")
    os.symlink("/etc", r / "abs")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    return r


def test_links_stay_inside(root, mode):
    with inroot.Root(str(root)) as r:
        assert r.read_file("/up/etc/passwd") == b"ctr"
        assert r.read_file("/etc/climb/etc/passwd") == b"ctr"
        assert r.read_file("/abs/../etc/passwd") == b"ctr"
        with r.lookup("/abs", follow_last=False) as f:
            assert f.exists and f.cpath == "/abs" and inroot.readlink_fd(f.fd) == "/etc"
        with r.lookup("/abs", follow_last=True) as f:
            assert f.exists and f.cpath == "/etc"
        with r.lookup("/up/etc/climb/etc/nope") as f:
            assert not f.exists and f.cpath == "/etc/nope"
        with pytest.raises(FileNotFoundError):
            r.lookup("/nope/x")
        with pytest.raises(NotADirectoryError):
            r.lookup("/etc/passwd/x")
        with pytest.raises(OSError):
            r.read_file("/loop1")


def test_mounts_are_walked_into_and_out_of(root, tmp_path, mode):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "f").write_text("vol")
    os.symlink("/", vol / "top")
    with inroot.Root(str(root), {"/mnt/v": str(vol)}) as r:
        assert r.read_file("/mnt/v/f") == b"vol"            # /mnt is missing in the rootfs
        assert r.read_file("/mnt/v/top/etc/passwd") == b"ctr"   # "/" in a volume is the container's
        assert r.read_file("/mnt/v/../../etc/passwd") == b"ctr"
        assert r.read_file("/up/mnt/v/f") == b"vol"
        with r.lookup("/mnt/v") as f:
            assert f.exists and f.cpath == "/mnt/v"


def test_reopen_never_opens_devices_or_fifos(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    fd = os.open(tmp_path / "fifo", inroot.O_PATH)
    try:
        with pytest.raises(OSError):
            inroot.reopen(fd, os.O_RDONLY)
    finally:
        os.close(fd)


def test_lstat_beneath_does_not_follow(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    os.symlink("d", tmp_path / "l")
    fd = os.open(tmp_path, inroot.O_PATH)
    try:
        assert inroot.lstat_beneath(fd, "d/f") is not None
        assert inroot.lstat_beneath(fd, "l/f") is None
        assert inroot.lstat_beneath(fd, "l") is not None
        assert inroot.lstat_beneath(fd, "nope/f") is None
    finally:
        os.close(fd)
