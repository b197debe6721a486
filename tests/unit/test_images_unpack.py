"""Layer unpacking: metadata kept, nothing ever written outside the target."""
import io
import os
import stat

import pytest

from dockyard.images.unpack import LayerFormatError, clean_name, unpack_layer
from test_images_tars import MTIME, busybox_rootfs, entry, make_tar, sha256


@pytest.fixture
def area(tmp_path):
    """(dest, outside): the layer dir, and a sibling dir that must stay untouched."""
    dest, outside = tmp_path / "layer", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (outside / "victim").write_text("original")
    return dest, outside


def unpack(tar: bytes, dest):
    return unpack_layer(io.BytesIO(tar), str(dest))


def untouched(outside):
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_text() == "original"


# ---------------------------------------------------------------- metadata

def test_keeps_modes_owners_times_links_nodes_xattrs(area):
    dest, _ = area
    tar = make_tar([
        entry("d/", "dir", mode=0o750, uid=1000, gid=1001, mtime=MTIME - 100),
        entry("d/suid", data=b"#!", mode=0o4755, uid=1000, gid=1000, mtime=MTIME - 5,
              xattrs={"user.note": "hi", "security.capability": "\x01\x00\x00\x02" + "\x00" * 16}),
        entry("d/link", "symlink", linkname="suid", uid=1000, gid=1000),
        entry("d/hard", "hardlink", linkname="d/suid"),
        entry("dev/", "dir"),
        entry("dev/null", "char", mode=0o666, dev=(1, 3)),
        entry("dev/loop0", "block", mode=0o660, dev=(7, 0), gid=6),
        entry("run/", "dir"),
        entry("run/fifo", "fifo", mode=0o620),
        entry("sticky/", "dir", mode=0o1777),
    ])
    res = unpack(tar, dest)
    assert res.diff_id == sha256(tar)
    assert res.size == 2 + len("suid")       # moby's size: file bytes (each inode once) + link targets

    d = os.lstat(dest / "d")
    assert stat.S_IMODE(d.st_mode) == 0o750 and (d.st_uid, d.st_gid) == (1000, 1001)
    assert d.st_mtime == MTIME - 100           # set after its children were created
    f = os.lstat(dest / "d" / "suid")
    assert stat.S_IMODE(f.st_mode) == 0o4755   # chown did not eat the setuid bit
    assert f.st_mtime == MTIME - 5 and f.st_nlink == 2
    assert os.getxattr(dest / "d" / "suid", "user.note") == b"hi"
    assert os.lstat(dest / "d" / "hard").st_ino == f.st_ino
    assert os.readlink(dest / "d" / "link") == "suid"
    assert os.lstat(dest / "d" / "link").st_uid == 1000
    null = os.lstat(dest / "dev" / "null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666                  # not cut by the umask
    loop = os.lstat(dest / "dev" / "loop0")
    assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 0) and loop.st_gid == 6
    assert stat.S_ISFIFO(os.lstat(dest / "run" / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(dest / "sticky").st_mode) == 0o1777


def test_root_entry_sets_the_layer_root_metadata(area):
    dest, _ = area
    unpack(make_tar([entry("./", "dir", mode=0o711, mtime=MTIME), entry("./a", data=b"x")]), dest)
    st = os.lstat(dest)
    assert stat.S_IMODE(st.st_mode) == 0o711 and st.st_mtime == MTIME
    assert (dest / "a").read_bytes() == b"x"


def test_later_entries_replace_earlier_ones(area):
    dest, _ = area
    unpack(make_tar([
        entry("a", data=b"first"), entry("a", data=b"second"),
        entry("d/", "dir"), entry("d/x", data=b"1"), entry("d", data=b"now a file"),
        entry("e", data=b"file"), entry("e/", "dir"), entry("e/y", data=b"2"),
    ]), dest)
    assert (dest / "a").read_bytes() == b"second"
    assert (dest / "d").read_bytes() == b"now a file"
    assert (dest / "e" / "y").read_bytes() == b"2"


@pytest.mark.parametrize("compress", [None, "gz", "bz2", "xz"])
def test_compressed_layers_have_the_diff_id_of_the_plain_tar(area, compress):
    dest, _ = area
    plain = make_tar([entry("f", data=b"data" * 1000)])
    res = unpack(make_tar([entry("f", data=b"data" * 1000)], compress), dest)
    assert res.diff_id == sha256(plain)
    assert (dest / "f").read_bytes() == b"data" * 1000


def test_busybox_rootfs_runs(area):
    dest, _ = area
    unpack(busybox_rootfs(), dest)
    assert os.access(dest / "bin" / "busybox", os.X_OK)
    assert os.readlink(dest / "bin" / "sh") == "busybox"


@pytest.mark.parametrize("data", [b"not a tar at all" * 100, b"\x1f\x8b\x08\x00garbage", b""])
def test_garbage_is_a_format_error(area, data):
    dest, _ = area
    with pytest.raises(LayerFormatError):
        unpack(data, dest)


def test_truncated_gzip_is_a_format_error(area):
    dest, _ = area
    gz = make_tar([entry("f", data=os.urandom(100_000))], "gz")
    with pytest.raises(LayerFormatError):
        unpack(gz[: len(gz) // 2], dest)


# ---------------------------------------------------------------- safety

@pytest.mark.parametrize("name, parts", [
    ("a/b", ["a", "b"]), ("./a//b/", ["a", "b"]), ("/etc/passwd", ["etc", "passwd"]),
    ("a/../b", ["b"]), ("/../x", ["x"]), (".", []), ("./", []),
])
def test_clean_name(name, parts):
    assert clean_name(name) == parts


@pytest.mark.parametrize("name", ["..", "../x", "a/../../x", "./../x"])
def test_clean_name_rejects_climbing_out(name):
    with pytest.raises(LayerFormatError):
        clean_name(name)


def test_dotdot_entry_is_rejected_and_writes_nothing_outside(area):
    dest, outside = area
    with pytest.raises(LayerFormatError, match="outside the layer"):
        unpack(make_tar([entry("ok", data=b"1"), entry("../outside/evil", data=b"x")]), dest)
    untouched(outside)


def test_absolute_names_land_inside(area, tmp_path):
    dest, outside = area
    unpack(make_tar([entry(str(outside / "victim"), data=b"pwned"), entry("/etc/x", data=b"x")]), dest)
    untouched(outside)
    assert (dest / str(outside).lstrip("/") / "victim").read_bytes() == b"pwned"
    assert (dest / "etc" / "x").read_bytes() == b"x"


def test_writing_through_a_symlink_stays_inside(area):
    """A symlink pointing out, then files "through" it: they are resolved as
    if the layer were / (like Docker's chroot), never on the host."""
    dest, outside = area
    depth = "../" * 20
    unpack(make_tar([
        entry("abs", "symlink", linkname=str(outside)),
        entry("abs/victim", data=b"pwned"),
        entry("abs/new", data=b"pwned"),
        entry("rel", "symlink", linkname=depth + str(outside).lstrip("/")),
        entry("rel/new2", data=b"pwned"),
        entry("root", "symlink", linkname="/"),
        entry("root" + str(outside) + "/new3", data=b"pwned"),
        entry("abs/sub/", "dir"),
        entry("abs/sub/.wh.gone"),
    ]), dest)
    untouched(outside)
    inner = dest / str(outside).lstrip("/")
    assert (inner / "victim").read_bytes() == b"pwned"
    assert sorted(os.listdir(inner)) == ["new", "new2", "new3", "sub", "victim"]
    assert os.readlink(dest / "abs") == str(outside)        # the link itself is kept as data


def test_final_symlink_is_replaced_not_followed(area):
    dest, outside = area
    mode_before = os.stat(outside).st_mode
    unpack(make_tar([
        entry("f", "symlink", linkname=str(outside / "victim")),
        entry("f", data=b"pwned"),
        entry("d", "symlink", linkname=str(outside)),
        entry("d/", "dir", mode=0o700),
    ]), dest)
    untouched(outside)
    assert (dest / "f").read_bytes() == b"pwned" and not os.path.islink(dest / "f")
    assert os.path.isdir(dest / "d") and not os.path.islink(dest / "d")
    assert os.stat(outside).st_mode == mode_before        # the dir entry did not chmod the host dir


def test_hardlink_out_of_the_layer_is_rejected(area):
    dest, outside = area
    with pytest.raises(LayerFormatError):
        unpack(make_tar([entry("h", "hardlink", linkname="../outside/victim")]), dest)
    assert os.lstat(outside / "victim").st_nlink == 1


def test_hardlink_through_a_symlink_resolves_inside(area):
    dest, outside = area
    with pytest.raises(LayerFormatError):   # no such file inside the layer
        unpack(make_tar([entry("l", "symlink", linkname=str(outside)),
                         entry("h", "hardlink", linkname="l/victim")]), dest)
    assert os.lstat(outside / "victim").st_nlink == 1
    untouched(outside)


def test_symlink_loop_is_a_format_error(area):
    dest, outside = area
    with pytest.raises(LayerFormatError):
        unpack(make_tar([entry("a", "symlink", linkname="b"), entry("b", "symlink", linkname="a"),
                         entry("a/x", data=b"1")]), dest)
    untouched(outside)


def test_file_used_as_directory_is_a_format_error(area):
    dest, _ = area
    with pytest.raises(LayerFormatError):
        unpack(make_tar([entry("f", data=b"1"), entry("f/x", data=b"2")]), dest)


@pytest.mark.parametrize("linkname", ["/etc/passwd", "missing", "d/missing", "f/x", "d"])
def test_hardlink_to_a_missing_target_or_a_directory_is_a_bad_archive(area, linkname):
    """A 400 (`invalid ... archive`), not an OSError that the API turns into a 500."""
    dest, outside = area
    with pytest.raises(LayerFormatError, match="invalid layer archive: hard link 'h'"):
        unpack(make_tar([entry("d", "dir"), entry("f", "file"),
                         entry("h", "hardlink", linkname=linkname)]), dest)
    untouched(outside)


def test_an_entry_the_target_cannot_take_is_a_bad_archive(area):
    """A file where the archive then puts a directory's child: a 400, not an OSError (a 500)."""
    dest, outside = area
    with pytest.raises(LayerFormatError, match="invalid layer archive: f/x: Not a directory"):
        unpack(make_tar([entry("f", "file"), entry("f/x", "file")]), dest)
    untouched(outside)
