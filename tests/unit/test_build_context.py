"""The build context: unpacking POST /build's body safely, COPY/ADD
sources and checksums, and copying into a build container's root without
ever leaving it."""
import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import tarfile

import pytest

from dockyard.daemon.build.context import (
    Source, SourceTree, check_dest, copy_sources, normalize_dest, unpack_context, write_context_tar,
)
from dockyard.daemon.build.dockerignore import PatternMatcher
from dockyard.errors import BuildFailed, InvalidParameter

MTIME = 1_700_000_000


def make_tar(entries, fmt=tarfile.PAX_FORMAT) -> bytes:
    """entries: (name, kind, data_or_linkname, mode, uid, gid)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            name, kind = e[0], e[1]
            payload = e[2] if len(e) > 2 else b""
            ti = tarfile.TarInfo(name)
            ti.mtime = MTIME
            ti.mode = e[3] if len(e) > 3 else (0o755 if kind == "dir" else 0o644)
            ti.uid = e[4] if len(e) > 4 else 0
            ti.gid = e[5] if len(e) > 5 else 0
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif kind == "file":
                ti.size = len(payload)
                tf.addfile(ti, io.BytesIO(payload))
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, payload
                tf.addfile(ti)
            elif kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, payload
                tf.addfile(ti)
            elif kind == "char":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3
                tf.addfile(ti)
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
                tf.addfile(ti)
    return buf.getvalue()


@pytest.fixture
def area(tmp_path):
    ctx, outside = tmp_path / "ctx", tmp_path / "outside"
    ctx.mkdir()
    outside.mkdir()
    (outside / "victim").write_text("original")
    return ctx, outside


def untouched(outside):
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_text() == "original"


def listing(root) -> list[str]:
    out = []
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(dirpath, n), root))
    return sorted(out)


# ---------------------------------------------------------------- unpack_context

BASIC = [("Dockerfile", "file", b"FROM busybox\n"), ("app/", "dir"), ("app/main.py", "file", b"print(1)\n", 0o755),
         ("app/link", "symlink", "main.py"), ("app/hard", "hardlink", "app/main.py"),
         (".wh.keep", "file", b"not a whiteout")]


@pytest.mark.parametrize("compress", [None, gzip.compress, bz2.compress, lzma.compress])
def test_unpack_context_every_compression(area, compress):
    ctx, _ = area
    data = make_tar(BASIC)
    if compress:
        data = compress(data)
    assert unpack_context(io.BytesIO(data), str(ctx), "Dockerfile") == "Dockerfile"
    assert listing(ctx) == [".wh.keep", "Dockerfile", "app", "app/hard", "app/link", "app/main.py"]
    assert (ctx / "app/main.py").read_bytes() == b"print(1)\n"
    assert stat.S_IMODE(os.lstat(ctx / "app/main.py").st_mode) == 0o755
    assert os.readlink(ctx / "app/link") == "main.py"
    assert os.lstat(ctx / "app/hard").st_ino == os.lstat(ctx / "app/main.py").st_ino


def test_unpack_context_bare_dockerfile(area):
    ctx, _ = area
    assert unpack_context(io.BytesIO(b"FROM busybox\nRUN echo hi\n"), str(ctx), "Dockerfile") == "Dockerfile"
    assert listing(ctx) == ["Dockerfile"]
    assert (ctx / "Dockerfile").read_bytes() == b"FROM busybox\nRUN echo hi\n"
    ctx2 = ctx.parent / "ctx2"
    ctx2.mkdir()
    assert unpack_context(io.BytesIO(b"FROM scratch\n"), str(ctx2), "../../evil") == "Dockerfile"
    assert listing(ctx2) == ["Dockerfile"]


def test_unpack_context_empty_body(area):
    ctx, _ = area
    assert unpack_context(io.BytesIO(b""), str(ctx), "Dockerfile") == "Dockerfile"
    assert listing(ctx) == []
    with pytest.raises(InvalidParameter) as e:
        SourceTree(str(ctx)).read_dockerfile("Dockerfile")
    assert e.value.message == "Cannot locate specified Dockerfile: Dockerfile"


def test_unpack_context_short_reads(area):
    """A socket-fed body hands out a few bytes per read."""
    ctx, _ = area

    class Trickle(io.RawIOBase):
        def __init__(self, data):
            self.f = io.BytesIO(data)

        def read(self, n=-1):
            return self.f.read(min(n, 7) if n and n > 0 else 7)

    assert unpack_context(Trickle(make_tar(BASIC)), str(ctx)) == "Dockerfile"
    assert (ctx / "app/main.py").read_bytes() == b"print(1)\n"


@pytest.mark.parametrize("body,message", [
    (make_tar(BASIC)[:700], "unexpected EOF"),                       # cut inside a file
    (make_tar(BASIC)[:300], "unexpected EOF"),                       # cut inside the first header
    (b"\x01\x02garbage" * 100, "archive/tar: invalid tar header"),
    (gzip.compress(b"just text, not a tar " * 40), "archive/tar: invalid tar header"),
    (gzip.compress(make_tar(BASIC))[:200], "unexpected EOF"),
    (b"\x28\xb5\x2f\xfd" + b"\0" * 600, "zstd-compressed build contexts are not supported yet"),
])
def test_unpack_context_malformed(area, body, message):
    ctx, _ = area
    with pytest.raises(InvalidParameter) as e:
        unpack_context(io.BytesIO(body), str(ctx), "Dockerfile")
    assert e.value.message == message


def _cut_after_last_data(tar: bytes, extra: int = 0) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        last = tf.getmembers()[-1]
    return tar[:last.offset_data + last.size + extra]


def test_unpack_context_without_padding_or_end_blocks(area):
    """What the docker CLI sends with a Dockerfile from outside the context:
    the tar stops right after the last file's data. Go's reader takes it."""
    ctx, _ = area
    tar = make_tar([("Dockerfile", "file", b"FROM x\n"), (".dockerfile.abc", "file", b"FROM y\n"),
                    (".dockerignore", "file", b".dockerignore\n.dockerfile.abc\n")])
    assert unpack_context(io.BytesIO(_cut_after_last_data(tar)), str(ctx), ".dockerfile.abc") == ".dockerfile.abc"
    assert (ctx / ".dockerignore").read_bytes() == b".dockerignore\n.dockerfile.abc\n"
    for cut in (_cut_after_last_data(tar, -1), _cut_after_last_data(tar, 5)):   # inside the data; half a padding
        other = ctx.parent / f"cut{len(cut)}"
        other.mkdir()
        with pytest.raises(InvalidParameter) as e:
            unpack_context(io.BytesIO(cut), str(other))
        assert e.value.message == "unexpected EOF"


def test_unpack_context_refuses_dotdot(area):
    ctx, outside = area
    with pytest.raises(InvalidParameter) as e:
        unpack_context(io.BytesIO(make_tar([("ok", "file", b"x"), ("../outside/victim", "file", b"pwned")])),
                       str(ctx))
    assert e.value.message == '"../outside/victim" is outside of "/"'
    untouched(outside)
    with pytest.raises(InvalidParameter) as e:
        unpack_context(io.BytesIO(make_tar([("h", "hardlink", "../outside/victim")])), str(ctx))
    assert e.value.message == 'invalid hardlink "/h" -> "../outside/victim"'
    untouched(outside)


def test_unpack_context_stays_inside(area):
    """Absolute names, symlinks pointing out and names written through them
    all land inside; device nodes are skipped."""
    ctx, outside = area
    tar = make_tar([
        ("/abs", "file", b"abs"),
        ("out", "symlink", str(outside)),
        ("out/victim", "file", b"pwned"),
        ("rel", "symlink", "../outside"),
        ("rel/victim", "file", b"pwned2"),
        ("null", "char"),
        ("fifo", "fifo"),
        ("./", "dir", b"", 0o777),
    ])
    unpack_context(io.BytesIO(tar), str(ctx))
    untouched(outside)
    assert (ctx / "abs").read_bytes() == b"abs"
    assert os.readlink(ctx / "out") == str(outside)             # kept as written: never followed by us
    assert (ctx / outside.relative_to("/") / "victim").read_bytes() == b"pwned"
    assert (ctx / "outside/victim").read_bytes() == b"pwned2"
    assert not os.path.lexists(ctx / "null")
    assert stat.S_ISFIFO(os.lstat(ctx / "fifo").st_mode)
    assert stat.S_IMODE(os.stat(ctx).st_mode) != 0o777            # the root's metadata stays ours


# ---------------------------------------------------------------- sources and checksums

def _ctx(tmp_path, files: dict, name="ctx"):
    root = tmp_path / name
    root.mkdir()
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple):               # ("symlink", target)
            os.symlink(content[1], p)
        elif content is None:
            p.mkdir(exist_ok=True)
        else:
            p.write_bytes(content)
    return root


def test_sources_plain_globs_and_dirs(tmp_path):
    root = _ctx(tmp_path, {"a.txt": b"a", "b.txt": b"b", "c.md": b"c", "sub/x.txt": b"x", "sub/deep/y.txt": b"y",
                           "link": ("symlink", "a.txt"), "abs": ("symlink", "/etc/passwd")})
    t = SourceTree(str(root))
    assert t.sources(["*.txt"]) == [Source("a.txt", "a.txt", False), Source("b.txt", "b.txt", False)]
    assert t.sources(["sub/*.txt", "/c.md"]) == [Source("sub/x.txt", "x.txt", False), Source("c.md", "c.md", False)]
    assert t.sources(["*/*/*.txt"]) == [Source("sub/deep/y.txt", "y.txt", False)]
    assert t.sources(["."]) == [Source(".", ".", True)]
    assert t.sources(["./sub/"]) == [Source("sub", "sub", True)]
    assert t.sources(["link"]) == [Source("link", "link", False)]     # followed: a file, named as written
    assert t.sources(["*.none", "c.md"]) == [Source("c.md", "c.md", False)]
    assert t.sources(["../../sub"]) == [Source("../../sub", "sub", True)]     # `..` stops at the root


def test_sources_never_leave_the_root(tmp_path):
    root = _ctx(tmp_path, {"a.txt": b"a", "abs": ("symlink", "/etc"), "up": ("symlink", "../../..")})
    t = SourceTree(str(root))
    # `..` stops at the root (moby's FollowSymlinkInScope): ../a.txt is the context's a.txt
    [s] = t.sources(["../a.txt"])
    assert not s.is_dir
    with pytest.raises(BuildFailed) as e:
        t.sources(["abs/passwd"])              # /etc is the context's /etc: not there
    assert e.value.message == ("COPY failed: file not found in build context or excluded by .dockerignore: "
                               "stat abs/passwd: file does not exist")
    with pytest.raises(BuildFailed):
        t.sources(["up/etc/passwd"])


def test_sources_errors(tmp_path):
    root = _ctx(tmp_path, {"a.txt": b"a", "secret.env": b"s"})
    t = SourceTree(str(root), ignore=PatternMatcher(["*.env"]))
    with pytest.raises(BuildFailed) as e:
        t.sources(["missing.txt"], cmd="ADD")
    assert e.value.message == ("ADD failed: file not found in build context or excluded by .dockerignore: "
                               "stat missing.txt: file does not exist")
    with pytest.raises(BuildFailed) as e:
        t.sources(["secret.env"])                       # excluded: invisible
    assert "stat secret.env: file does not exist" in e.value.message
    with pytest.raises(BuildFailed) as e:
        t.sources(["*.none", "*.env"])
    assert e.value.message == "COPY failed: no source files were specified"
    with pytest.raises(BuildFailed) as e:
        SourceTree(str(root), hostile=True).sources(["/usr/bin/nothing"])
    assert e.value.message == "COPY failed: stat usr/bin/nothing: file does not exist"


def test_read_dockerfile(tmp_path):
    root = _ctx(tmp_path, {"dockerfile": b"FROM a\n", "sub/Other": b"FROM b\n", "ln": ("symlink", "/sub/Other")})
    t = SourceTree(str(root))
    assert t.locate_dockerfile("Dockerfile") == "dockerfile"      # moby's lowercase fallback
    assert t.read_dockerfile() == b"FROM a\n"
    assert t.read_dockerfile("sub/Other") == b"FROM b\n"
    assert t.read_dockerfile("ln") == b"FROM b\n"                 # a symlink followed inside
    with pytest.raises(InvalidParameter) as e:
        t.read_dockerfile("nope.Dockerfile")
    assert e.value.message == "Cannot locate specified Dockerfile: nope.Dockerfile"
    # an ignored Dockerfile is still the build's (moby reads it before dropping it)
    (root / ".dockerignore").write_text("dockerfile\nsub\n")
    t = SourceTree(str(root), ignore=SourceTree(str(root)).read_dockerignore())
    assert t.read_dockerfile() == b"FROM a\n" and t.read_dockerfile("sub/Other") == b"FROM b\n"
    with pytest.raises(BuildFailed):
        t.sources(["dockerfile"])


def test_read_dockerignore_stays_inside(tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("*\n")
    root = _ctx(tmp_path, {".dockerignore": ("symlink", str(outside)), "x": b"x"})
    assert SourceTree(str(root)).read_dockerignore() is None          # the link's target is not in the context
    os.unlink(root / ".dockerignore")
    (root / ".dockerignore").write_text("[\n")
    assert SourceTree(str(root)).read_dockerignore() is None          # malformed: ignored, as moby
    (root / ".dockerignore").write_text("*.log\n")
    assert SourceTree(str(root)).read_dockerignore().matches("a.log")


def test_checksum_tracks_content_mode_owner_links_not_times(tmp_path):
    root = _ctx(tmp_path, {"d/a": b"a", "d/b": b"b", "d/l": ("symlink", "a"), "f": b"f"})
    t = SourceTree(str(root))
    srcs = t.sources(["d", "f"])
    base = t.checksum(srcs)
    assert base.startswith("sha256:") and t.checksum(srcs) == base
    os.utime(root / "d/a", (1, 1))
    assert SourceTree(str(root)).checksum(srcs) == base              # times are not content
    (root / "d/a").write_bytes(b"A")
    changed = SourceTree(str(root)).checksum(srcs)
    assert changed != base
    os.chmod(root / "d/b", 0o600)
    assert SourceTree(str(root)).checksum(srcs) != changed
    changed = SourceTree(str(root)).checksum(srcs)
    os.unlink(root / "d/l")
    os.symlink("b", root / "d/l")
    assert SourceTree(str(root)).checksum(srcs) != changed
    changed = SourceTree(str(root)).checksum(srcs)
    os.chown(root / "f", 1000, 1000)
    assert SourceTree(str(root)).checksum(srcs) != changed
    # an ignored file does not count
    (root / "d/junk.log").write_bytes(b"x")
    t2 = SourceTree(str(root), ignore=PatternMatcher(["**/*.log"]))
    before = t2.checksum(srcs)
    (root / "d/junk.log").write_bytes(b"y")
    assert SourceTree(str(root), ignore=PatternMatcher(["**/*.log"])).checksum(srcs) == before


# ---------------------------------------------------------------- copying

def _img(tmp_path):
    """A build container's root with the traps an image can hold."""
    r = tmp_path / "rootfs"
    for d in ("etc", "bin", "opt", "data"):
        (r / d).mkdir(parents=True)
    (r / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    os.symlink("/etc", r / "app")                         # absolute: means <root>/etc
    os.symlink("../../../../../../../../tmp", r / "up")   # climbing: stops at <root>
    os.symlink("/opt/missing", r / "dangling")
    (r / "bin/busybox").write_text("bb")
    os.symlink("busybox", r / "bin/sh")
    return r


def test_normalize_and_check_dest():
    assert normalize_dest("/app", "x") == "/app/x"
    assert normalize_dest("/app", "x/") == "/app/x/"
    assert normalize_dest("/app", ".") == "/app"
    assert normalize_dest("/", "./") == "/"
    assert normalize_dest("/app", "/abs/") == "/abs/"
    check_dest([1], "/x", "COPY")
    with pytest.raises(BuildFailed) as e:
        check_dest([1, 2], "/x", "ADD")
    assert e.value.message == ("When using ADD with more than one source file, the destination must be a "
                               "directory and end with a /")


def test_copy_follows_image_symlinks_inside_the_root(tmp_path):
    """The image has /app -> /etc: COPY x /app/x lands in <root>/etc/x, never the host's /etc."""
    ctx = _ctx(tmp_path, {"x": b"payload", "y": b"why"})
    rootfs = _img(tmp_path)
    t = SourceTree(str(ctx))
    host_before = os.path.exists("/etc/x")
    copy_sources(t, t.sources(["x"]), str(rootfs), "/app/x")
    assert (rootfs / "etc/x").read_bytes() == b"payload"
    assert os.path.exists("/etc/x") == host_before
    copy_sources(t, t.sources(["y"]), str(rootfs), "/up/y")             # climbing stops at the root
    assert (rootfs / "tmp/y").read_bytes() == b"why"
    copy_sources(t, t.sources(["y"]), str(rootfs), "/dangling")          # made where the link points
    assert (rootfs / "opt/missing").read_bytes() == b"why"
    copy_sources(t, t.sources(["x"]), str(rootfs), "/bin/sh")            # as moby: through the link
    assert (rootfs / "bin/busybox").read_bytes() == b"payload"
    assert os.readlink(rootfs / "bin/sh") == "busybox"
    copy_sources(t, t.sources(["."]), str(rootfs), "/app/sub/")          # a directory through it too
    assert (rootfs / "etc/sub/x").read_bytes() == b"payload"


def test_copy_file_and_dir_semantics(tmp_path):
    ctx = _ctx(tmp_path, {"f.txt": b"file", "d/a": b"a", "d/s/b": b"b", "d/l": ("symlink", "a"), "d/e": None})
    os.chown(ctx / "d/a", 1234, 1234)
    os.chmod(ctx / "d/a", 0o4751)
    os.chmod(ctx / "d/s", 0o750)
    os.utime(ctx / "d/a", (MTIME + 0.7, MTIME + 0.7))
    os.link(ctx / "d/a", ctx / "d/hard")
    rootfs = _img(tmp_path)
    t = SourceTree(str(ctx))
    # a file to a path: that file; missing parents made 0755
    copy_sources(t, t.sources(["f.txt"]), str(rootfs), "new/dir/renamed", workdir="/w")
    p = rootfs / "w/new/dir/renamed"
    assert p.read_bytes() == b"file"
    assert stat.S_IMODE(os.stat(rootfs / "w/new").st_mode) == 0o755
    # into an existing directory, or one written with a trailing slash
    copy_sources(t, t.sources(["f.txt"]), str(rootfs), "/data")
    assert (rootfs / "data/f.txt").read_bytes() == b"file"
    copy_sources(t, t.sources(["f.txt"]), str(rootfs), "/fresh/")
    assert (rootfs / "fresh/f.txt").read_bytes() == b"file"
    # a directory: its contents
    copy_sources(t, t.sources(["d"]), str(rootfs), "/out")
    assert sorted(os.listdir(rootfs / "out")) == ["a", "e", "hard", "l", "s"]
    a = os.lstat(rootfs / "out/a")
    assert (a.st_uid, a.st_gid) == (0, 0)                           # ownership: 0:0 without --chown
    assert stat.S_IMODE(a.st_mode) == 0o751             # mode kept; setuid dropped by the chown, as dockerd's
    assert a.st_mtime == MTIME                                      # whole seconds, as moby's tar copy
    assert os.lstat(rootfs / "out/hard").st_ino == a.st_ino         # hard links stay hard links
    assert os.readlink(rootfs / "out/l") == "a"                     # symlinks copied as symlinks
    assert stat.S_IMODE(os.stat(rootfs / "out/s").st_mode) == 0o750
    assert (rootfs / "out/s/b").read_bytes() == b"b"
    # several sources need a directory destination ending in /
    with pytest.raises(BuildFailed):
        copy_sources(t, t.sources(["f.txt", "d"]), str(rootfs), "/many")
    copy_sources(t, t.sources(["f.txt", "d/s"]), str(rootfs), "/many/")
    assert sorted(os.listdir(rootfs / "many")) == ["b", "f.txt"]


def test_copy_chown_chmod_and_preserve(tmp_path):
    ctx = _ctx(tmp_path, {"f": b"f", "d/a": b"a", "d/s/b": b"b"})
    os.chown(ctx / "d/a", 1234, 1234)
    rootfs = _img(tmp_path)
    t = SourceTree(str(ctx))
    copy_sources(t, t.sources(["d"]), str(rootfs), "/owned/sub", chown=(1000, 1001), chmod=0o640)
    for rel in ("owned/sub", "owned/sub/a", "owned/sub/s", "owned/sub/s/b"):
        st = os.lstat(rootfs / rel)
        assert (st.st_uid, st.st_gid) == (1000, 1001), rel
    assert (os.lstat(rootfs / "owned").st_uid, os.lstat(rootfs / "owned").st_gid) == (0, 0)   # moby: root's
    assert stat.S_IMODE(os.lstat(rootfs / "owned/sub/a").st_mode) == 0o640
    copy_sources(t, t.sources(["f"]), str(rootfs), "/p1/p2/f", chown=(7, 8))
    assert os.lstat(rootfs / "p1").st_uid == 7 and os.lstat(rootfs / "p1/p2/f").st_gid == 8
    assert os.lstat(rootfs / "etc").st_uid == 0                      # existing dirs are not chowned
    os.chmod(ctx / "d/a", 0o4755)
    copy_sources(t, t.sources(["d"]), str(rootfs), "/kept", preserve_ownership=True)
    kept = os.lstat(rootfs / "kept/a")
    assert kept.st_uid == 1234 and stat.S_IMODE(kept.st_mode) == 0o4755  # COPY --from keeps owners, setuid


def _tar_file(path, entries, compress=None):
    data = make_tar(entries)
    path.write_bytes(compress(data) if compress else data)


@pytest.mark.parametrize("compress", [None, gzip.compress, bz2.compress, lzma.compress])
def test_add_extracts_local_archives(tmp_path, compress):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    _tar_file(ctx / "a.tar", [("top/", "dir"), ("top/f", "file", b"in tar", 0o600, 33, 33),
                              ("../escape", "file", b"no")][:2], compress)
    not_tar = gzip.compress(b"not a tar", mtime=0)   # one value: gzip's header holds the time
    (ctx / "plain.gz").write_bytes(not_tar)
    rootfs = _img(tmp_path)
    t = SourceTree(str(ctx))
    copy_sources(t, t.sources(["a.tar"]), str(rootfs), "/x/", extract_archives=True, cmd="ADD")
    f = os.lstat(rootfs / "x/top/f")
    assert (rootfs / "x/top/f").read_bytes() == b"in tar" and (f.st_uid, f.st_gid) == (33, 33)
    copy_sources(t, t.sources(["plain.gz"]), str(rootfs), "/y/", extract_archives=True, cmd="ADD")
    assert (rootfs / "y/plain.gz").read_bytes() == not_tar   # no tar: copied
    copy_sources(t, t.sources(["a.tar"]), str(rootfs), "/z/")                    # COPY never extracts
    assert (rootfs / "z/a.tar").exists()


def test_add_archive_stays_in_dest(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    _tar_file(ctx / "evil.tar", [("ln", "symlink", "/"), ("ln/etc/pwned", "file", b"x")])
    rootfs = _img(tmp_path)
    t = SourceTree(str(ctx))
    copy_sources(t, t.sources(["evil.tar"]), str(rootfs), "/app/", extract_archives=True, cmd="ADD")
    # /app is <root>/etc; the archive's own symlink resolves inside the extraction dir
    assert (rootfs / "etc/etc/pwned").read_bytes() == b"x"
    assert not os.path.exists("/etc/pwned")


def test_copy_from_hostile_tree(tmp_path):
    """COPY --from: the source root is an image: its symlinks resolve inside it."""
    src = _img(tmp_path)
    (src / "etc/conf").write_text("conf")
    dest = tmp_path / "dest"
    dest.mkdir()
    t = SourceTree(str(src), hostile=True)
    [s] = t.sources(["/app/conf"])
    copy_sources(t, [s], str(dest), "/c", preserve_ownership=True)
    assert (dest / "c").read_text() == "conf"
    [s] = t.sources(["/app"])                      # a symlinked dir: followed inside, contents copied
    assert s.is_dir
    copy_sources(t, [s], str(dest), "/cfg")
    assert (dest / "cfg/passwd").read_text().startswith("root:")


# ---------------------------------------------------------------- moby's source hashes

def test_history_hash_is_mobys_tarsum(tmp_path):
    """file:<tarsum v1 of the context tar's entry>: sha256 over the header
    fields moby selects (mtime left out, uname/gname blanked), then the
    content (the layout moby's tarsum test vectors check)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    tar = make_tar([("Dockerfile", "file", b"FROM x\n"), ("app/", "dir"), ("app/a.txt", "file", b"hello", 0o640),
                    ("app/ln", "symlink", "a.txt")])
    unpack_context(io.BytesIO(tar), str(ctx))
    t = SourceTree(str(ctx))
    header = (b"nameapp/a.txtmode416uid0gid0size5typeflag0linknameunamegnamedevmajor0devminor0")
    want = hashlib.sha256(header + b"hello").hexdigest()
    assert t.history_hash(t.sources(["app/a.txt"])) == "file:" + want
    assert t.history_hash(t.sources(["app/ln"])) == "file:" + want          # a symlink: its target's sum
    d = t.history_hash(t.sources(["app"]))
    assert d.startswith("dir:") and len(d) == 68
    m = t.history_hash(t.sources(["app/a.txt", "Dockerfile"]))
    file_sums = [t.history_hash(t.sources([p])) for p in ("app/a.txt", "Dockerfile")]
    assert m == "multi:" + hashlib.sha256(",".join(file_sums).encode()).hexdigest()
    # the same tar unpacked again gives the same names; other content does not
    ctx2 = tmp_path / "ctx2"
    ctx2.mkdir()
    unpack_context(io.BytesIO(tar), str(ctx2))
    assert SourceTree(str(ctx2)).history_hash(t.sources(["app"])) == d
    ctx3 = tmp_path / "ctx3"
    ctx3.mkdir()
    unpack_context(io.BytesIO(make_tar([("app/", "dir"), ("app/a.txt", "file", b"HELLO", 0o640),
                                        ("app/ln", "symlink", "a.txt")])), str(ctx3))
    assert SourceTree(str(ctx3)).history_hash(t.sources(["app"])) != d


def test_history_hash_of_an_image_tree(tmp_path):
    """COPY --from: headers made from the files (moby's lazy source)."""
    root = _ctx(tmp_path, {"bin/tool": b"#!x"})
    os.chmod(root / "bin/tool", 0o755)
    t = SourceTree(str(root), hostile=True)
    header = b"namebin/toolmode493uid0gid0size3typeflag0linknameunamegnamedevmajor0devminor0"
    assert t.history_hash(t.sources(["/bin/tool"])) == "file:" + hashlib.sha256(header + b"#!x").hexdigest()


def test_history_hash_matches_dockerd(tmp_path):
    """The names a real dockerd (20.10, private, same tarsum as today's)
    wrote into `docker history` for this context and Dockerfile."""
    def tar_of(entries):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for name, kind, data, mode in entries:
                ti = tarfile.TarInfo(name)
                ti.mode, ti.mtime, ti.uid, ti.gid, ti.uname = mode, MTIME, 1000, 1000, "user"
                if kind == "dir":
                    ti.type = tarfile.DIRTYPE
                elif kind == "file":
                    ti.size = len(data)
                elif kind == "sym":
                    ti.type, ti.linkname = tarfile.SYMTYPE, data
                else:
                    ti.type, ti.linkname = tarfile.LNKTYPE, data
                tf.addfile(ti, io.BytesIO(data) if kind == "file" else None)
        return buf.getvalue()

    dockerfile = (b"FROM scratch\nCOPY app/main.py /x\nCOPY app /y/\nCOPY app/main.py Dockerfile /z/\n"
                  b"COPY link /w\nCOPY app/h* /v/\nADD app/sub /u\n")
    tar = tar_of([("Dockerfile", "file", dockerfile, 0o644), ("app/", "dir", None, 0o755),
                  ("app/main.py", "file", b"print(1)\n", 0o4755), ("app/sub/", "dir", None, 0o750),
                  ("app/sub/deep.txt", "file", b"deep", 0o600), ("app/hard", "hard", "app/main.py", 0o4755),
                  ("app/ln", "sym", "main.py", 0o777), ("link", "sym", "app/main.py", 0o777),
                  ("app/dangling", "sym", "/nope", 0o777)])
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    unpack_context(io.BytesIO(tar), str(ctx))
    t = SourceTree(str(ctx))
    dockerd = {   # `docker history`: /bin/sh -c #(nop) COPY <this> in /x
        ("app/main.py",): "file:4073169cd84c258d9a3d8381de47ca9b5fc9a7eb8c8c711b8e7b58f53bba7272",
        ("app",): "dir:7e6e70a6c969cf2c3203be581885f8f718ba9cf9adf88ac6df8fead249a7af73",
        ("app/main.py", "Dockerfile"): "multi:2920834960029bbcd97ceba6c3535bddb9b7fa19b1df4f5024356e8d7c9363b4",
        ("link",): "file:4073169cd84c258d9a3d8381de47ca9b5fc9a7eb8c8c711b8e7b58f53bba7272",
        ("app/h*",): "file:cce9e30dae0f03405f50cc0653273a7f61d92a1eb70eb517f8bc7b703c3f4d5a",
        ("app/sub",): "dir:53072b037178dcc60da9b13bb850be5a9eb8219616b5ac821badb65618c1ebce",
    }
    for patterns, want in dockerd.items():
        assert t.history_hash(t.sources(list(patterns))) == want, patterns


def test_write_context_tar_as_the_docker_cli(tmp_path):
    """Entry for entry what docker 28.2's CLI sent for such a directory
    (checked against a capture of its POST /build body)."""
    root = _ctx(tmp_path, {"Dockerfile": b"FROM x\n", ".dockerignore": b"build\n!build/keep\n*.log\nDockerfile\n",
                           "app/main.py": b"hi\n", "build/keep/k": b"k", "build/drop": b"d", "a.log": b"l",
                           "link": ("symlink", "/etc")})
    os.chown(root / "app/main.py", 1000, 1000)
    os.chmod(root / "app/main.py", 0o4755)
    os.link(root / "app/main.py", root / "app/again.py")
    os.utime(root / "app/main.py", (MTIME + 0.9, MTIME + 0.9))
    buf = io.BytesIO()
    write_context_tar(str(root), [ln for ln in (root / ".dockerignore").read_text().splitlines()], "Dockerfile", buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        got = {m.name: m for m in tf}
    assert list(got) == [".dockerignore", "Dockerfile", "app", "app/again.py", "app/main.py", "build/keep",
                         "build/keep/k", "link"]
    again, main = got["app/again.py"], got["app/main.py"]
    assert again.isreg() and main.islnk() and main.linkname == "app/again.py"     # the second name links
    assert (again.uid, again.gid, again.uname, again.gname) == (0, 0, "", "")
    assert again.mode == 0o4755 and again.mtime == MTIME
    assert got["link"].issym() and got["link"].linkname == "/etc"
    ctx = tmp_path / "unpacked"
    ctx.mkdir()
    unpack_context(io.BytesIO(buf.getvalue()), str(ctx))
    assert (ctx / "app/main.py").read_bytes() == b"hi\n"


def _unpacked(tmp_path, name, entries):
    ctx = tmp_path / name
    ctx.mkdir()
    unpack_context(io.BytesIO(make_tar(entries)), str(ctx))
    return SourceTree(str(ctx))


def test_checksum_of_an_unpacked_context(tmp_path):
    """Regular files' sums come from the unpack (no second read); whatever
    the tar did, the checksum follows what is on disk."""
    base = [("d/", "dir"), ("d/a", "file", b"A"), ("d/b", "hardlink", "d/a")]
    one = _unpacked(tmp_path, "one", base)
    two = _unpacked(tmp_path, "two", [("d/", "dir"), ("d/a", "file", b"B"), ("d/b", "hardlink", "d/a")])
    again = _unpacked(tmp_path, "again", base)
    for pats in (["d"], ["d/b"], ["d/a"]):
        assert one.checksum(one.sources(pats)) == again.checksum(again.sources(pats))
        assert one.checksum(one.sources(pats)) != two.checksum(two.sources(pats)), pats
    # a name written twice, or through the tar's own symlink: the disk decides
    dup1 = _unpacked(tmp_path, "dup1", [("x", "file", b"first"), ("x", "file", b"second")])
    dup2 = _unpacked(tmp_path, "dup2", [("x", "file", b"first"), ("x", "file", b"other")])
    assert dup1.checksum(dup1.sources(["x"])) != dup2.checksum(dup2.sources(["x"]))
    via1 = _unpacked(tmp_path, "via1", [("d/", "dir"), ("d/x", "file", b"1"), ("l", "symlink", "d"),
                                        ("l/x", "file", b"2")])
    via2 = _unpacked(tmp_path, "via2", [("d/", "dir"), ("d/x", "file", b"1"), ("l", "symlink", "d"),
                                        ("l/x", "file", b"3")])
    assert (tmp_path / "via1/d/x").read_bytes() == b"2"              # written through the link
    assert via1.checksum(via1.sources(["d"])) != via2.checksum(via2.sources(["d"]))
