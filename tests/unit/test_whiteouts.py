"""OCI whiteouts become overlayfs whiteouts (runs as root: mknod, trusted xattrs)."""
import io
import os
import stat

import pytest

from dockyard.images.unpack import LayerFormatError, unpack_layer
from dockyard.images.whiteouts import (OPAQUE_XATTR, Whiteout, classify, is_whiteout,
                                       make_opaque, make_whiteout)
from test_images_tars import entry, make_tar


@pytest.fixture
def dest(tmp_path):
    d = tmp_path / "layer"
    d.mkdir()
    try:
        os.setxattr(d, "trusted.dockyard-probe", b"1")
        os.removexattr(d, "trusted.dockyard-probe")
    except OSError as e:
        pytest.skip(f"trusted xattrs unavailable here: {e}")
    return d


@pytest.mark.parametrize("name, expected", [
    ("file", None),
    (".whatever", None),
    (".wh.file", (Whiteout.FILE, "file")),
    (".wh..hidden", (Whiteout.FILE, ".hidden")),
    (".wh..wh..opq", (Whiteout.OPAQUE, None)),
    (".wh..wh.plnk", (Whiteout.META, None)),
    (".wh..wh.aufs", (Whiteout.META, None)),
])
def test_classify(name, expected):
    assert classify(name) == expected


@pytest.mark.parametrize("name", [".wh.", ".wh..", ".wh..."])
def test_classify_rejects_names_that_would_delete_dot_entries(name):
    with pytest.raises(ValueError):
        classify(name)


def test_make_whiteout_is_a_0_0_char_device(dest):
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        make_whiteout(fd, "gone", uid=7, gid=8)
        make_opaque(fd)
    finally:
        os.close(fd)
    st = os.lstat(dest / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert is_whiteout(st)
    assert (st.st_uid, st.st_gid) == (7, 8)
    assert os.getxattr(dest, OPAQUE_XATTR) == b"y"


def test_unpack_converts_whiteouts(dest):
    tar = make_tar([
        entry("etc/", "dir"),
        entry("etc/.wh.motd"),                   # delete /etc/motd
        entry("var/", "dir"),
        entry("var/cache/", "dir"),
        entry("var/cache/.wh..wh..opq"),         # hide everything below /var/cache
        entry("var/cache/new", data=b"kept"),
        entry(".wh..wh.plnk/", "dir"),           # aufs bookkeeping: dropped
        entry(".wh.rootfile"),
    ])
    unpack_layer(io.BytesIO(tar), str(dest))
    assert is_whiteout(os.lstat(dest / "etc" / "motd"))
    assert is_whiteout(os.lstat(dest / "rootfile"))
    assert not os.path.lexists(dest / "etc" / ".wh.motd")
    assert os.getxattr(dest / "var" / "cache", OPAQUE_XATTR) == b"y"
    assert not os.path.lexists(dest / "var" / "cache" / ".wh..wh..opq")
    assert (dest / "var" / "cache" / "new").read_bytes() == b"kept"
    assert not os.path.lexists(dest / ".wh..wh.plnk")
    with pytest.raises(OSError):
        os.getxattr(dest / "etc", OPAQUE_XATTR)


def test_whiteout_replaces_an_entry_of_the_same_layer(dest):
    tar = make_tar([entry("d/", "dir"), entry("d/x/", "dir"), entry("d/x/f", data=b"1"),
                    entry("d/.wh.x")])
    unpack_layer(io.BytesIO(tar), str(dest))
    assert is_whiteout(os.lstat(dest / "d" / "x"))


def test_whiteout_inside_missing_parent_creates_it(dest):
    unpack_layer(io.BytesIO(make_tar([entry("a/b/.wh.c")])), str(dest))
    assert is_whiteout(os.lstat(dest / "a" / "b" / "c"))


def test_overlay_xattrs_in_the_archive_are_not_trusted(dest):
    tar = make_tar([entry("d/", "dir", xattrs={"trusted.overlay.opaque": "y",
                                               "trusted.overlay.redirect": "/etc"})])
    unpack_layer(io.BytesIO(tar), str(dest))
    assert not [x for x in os.listxattr(dest / "d") if x.startswith("trusted.overlay.")]


def test_bad_whiteout_name_rejects_the_layer(dest):
    with pytest.raises(LayerFormatError):
        unpack_layer(io.BytesIO(make_tar([entry("d/.wh..")])), str(dest))
