"""fsview.clean, cp's extraction safety, diff kinds and the commit layer's whiteouts."""
from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from dockyard.daemon import archive
from dockyard.daemon.fsview import clean
from dockyard.errors import InvalidParameter


def test_clean_keeps_trailing_meaning():
    assert clean("//a/../b") == "/b" and clean("a/") == "/a/" and clean("/a/.") == "/a/."


def _tar(*members) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def _file(name: str, data: bytes = b"x", uid: int = 1234):
    ti = tarfile.TarInfo(name)
    ti.size, ti.uid, ti.gid = len(data), uid, uid
    return ti, data


def test_put_tar_never_leaves_the_destination(tmp_path):
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    link = tarfile.TarInfo("esc")
    link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path)
    archive.put_tar(str(dest), _tar((link, None), _file("esc/outside")), False, False)
    assert not outside.exists()
    assert (dest / str(tmp_path).lstrip("/") / "outside").exists()   # followed as if dest were /
    with pytest.raises(InvalidParameter):
        archive.put_tar(str(dest), _tar(_file("../outside")), False, False)
    assert not outside.exists()


def test_put_tar_ownership(tmp_path):
    archive.put_tar(str(tmp_path), _tar(_file("a")), False, False)
    archive.put_tar(str(tmp_path), _tar(_file("b")), False, True)
    assert os.lstat(tmp_path / "a").st_uid == 0 and os.lstat(tmp_path / "b").st_uid == 1234
    archive.put_tar(str(tmp_path), _tar(_file("c")), False, True, owner=(42, 43))    # cp -a, Config.User
    archive.put_tar(str(tmp_path), _tar(_file("d")), False, False, owner=(42, 43))   # no -a: root
    assert (os.lstat(tmp_path / "c").st_uid, os.lstat(tmp_path / "c").st_gid) == (42, 43)
    assert os.lstat(tmp_path / "d").st_uid == 0


def test_changes_and_layer_tar(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in (lower / "bin", lower / "etc", upper / "bin", upper / "etc", upper / "new"):
        d.mkdir(parents=True)
    (lower / "bin" / "vi").write_text("vi")
    (lower / "etc" / "passwd").write_text("root")
    (upper / "etc" / "passwd").write_text("root2")
    (upper / "etc" / "hosts").write_text("")                  # a mount target: not a change
    (upper / "new" / "f").write_text("f")
    os.mknod(upper / "bin" / "vi", stat.S_IFCHR, os.makedev(0, 0))
    got = [(c["Kind"], c["Path"]) for c in archive.changes(str(upper), [str(lower)])]
    assert got == [(0, "/bin"), (2, "/bin/vi"), (0, "/etc/passwd"), (1, "/new"), (1, "/new/f")]
    buf = io.BytesIO()
    archive.layer_tar(str(upper), buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        names = tf.getnames()
    assert "bin/.wh.vi" in names and "new/f" in names and "etc/passwd" in names
    assert "etc/hosts" not in names


def test_go_file_mode():
    st = os.lstat("/")
    assert archive.go_mode(st) & (1 << 31)
    assert archive.go_mode(st) & 0o777 == stat.S_IMODE(st.st_mode) & 0o777


def test_lookup_continues_into_mounts(tmp_path):
    from dockyard.inroot import Root
    root, vol = tmp_path / "root", tmp_path / "vol"
    (root / "data").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("p")
    (vol / "sub").mkdir(parents=True)
    (vol / "sub" / "f").write_text("f")
    os.symlink("/data/sub", root / "shortcut")
    os.symlink("../../etc", vol / "up")
    with Root(str(root), {"/data": str(vol)}) as r:
        for path, cpath in (("/data/sub/f", "/data/sub/f"), ("/shortcut/f", "/data/sub/f"),
                            ("/data/up/passwd", "/etc/passwd"), ("/data", "/data")):
            with r.lookup(path) as found:
                assert found.exists and found.cpath == cpath, path
        assert r.read_file("/shortcut/f") == b"f"
        assert r.read_file("/data/up/passwd") == b"p"
