"""A build step's layer made from its private overlay's upper dir
(LayerStore.stage_dir): the same diff id and tar as the tar-and-unpack
path, the dir moved in as the layer's files, overlayfs' own attributes
(except the opaque marker) dropped."""
from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest

from dockyard.daemon import archive
from dockyard.images.layers import LayerStore
from dockyard.store.db import Database


@pytest.fixture
def store(tmp_path):
    db = Database(str(tmp_path / "db"))
    yield LayerStore(db, str(tmp_path / "image"))
    db.close()


def _upper(path) -> str:
    up = str(path)
    os.makedirs(os.path.join(up, "app", "sub"))
    with open(os.path.join(up, "app", "f.txt"), "w") as f:
        f.write("hello\n")
    os.symlink("f.txt", os.path.join(up, "app", "link"))
    os.mknod(os.path.join(up, "gone"), 0o600 | 0o020000, os.makedev(0, 0))      # an overlay whiteout
    os.setxattr(os.path.join(up, "app", "sub"), "trusted.overlay.opaque", b"y")
    os.setxattr(os.path.join(up, "app"), "trusted.overlay.origin", b"\x00fake")
    return up


def test_stage_dir_matches_the_tar_path(store, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("whiteouts and trusted xattrs need root")
    up = _upper(tmp_path / "upper")
    buf = io.BytesIO()
    archive.layer_tar(up, buf, skip_init=False)
    want_diff_id = "sha256:" + hashlib.sha256(buf.getvalue()).hexdigest()
    names = tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getnames()
    assert ".wh.gone" in names and "app/sub/.wh..wh..opq" in names

    staged = store.stage_dir(up, lambda out: archive.layer_tar(up, out, skip_init=False))
    try:
        assert staged.diff_id == want_diff_id
        assert staged.tar_size == len(buf.getvalue())
        assert not os.path.exists(up)                                  # moved, not copied
        diff = os.path.join(staged.path, "diff")
        with open(os.path.join(staged.path, "layer.tar"), "rb") as f:
            assert f.read() == buf.getvalue()
        assert os.readlink(os.path.join(diff, "app", "link")) == "f.txt"
        assert os.getxattr(os.path.join(diff, "app", "sub"), "trusted.overlay.opaque") == b"y"
        assert "trusted.overlay.origin" not in os.listxattr(os.path.join(diff, "app"))
        assert staged.size == 6 + len("f.txt")      # the files' bytes and the symlink's target
    finally:
        store.discard(staged)


def test_drop_init_paths_stays_inside(tmp_path):
    from dockyard.daemon.build.commit import drop_init_paths
    outside = tmp_path / "host-etc"
    outside.mkdir()
    (outside / "hosts").write_text("the host's\n")
    up = tmp_path / "upper"
    (up / "dev" / "pts").mkdir(parents=True)
    (up / "app").mkdir()
    (up / "app" / "keep").write_text("k")
    (up / ".dockerenv").write_text("")
    os.symlink(str(outside), up / "etc")            # a RUN swapped /etc for a symlink
    drop_init_paths(str(up))
    assert (outside / "hosts").read_text() == "the host's\n"
    assert sorted(os.listdir(up)) == ["app", "etc"]
