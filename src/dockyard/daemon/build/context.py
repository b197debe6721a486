"""The build context and COPY/ADD (moby's builder/remotecontext and
builder/dockerfile copy.go, internals.go):

- `unpack_context`: POST /build's body (a tar, plain or gzip/bzip2/xz; or a
  bare Dockerfile) unpacked with the layer unpacker (images/unpack.py), so
  no entry lands outside the context directory;
- `SourceTree`: where COPY/ADD read from: the context, or the root of the
  image or stage a `COPY --from` names. Every path is resolved inside the
  tree on file descriptors, symlinks followed *inside* it as moby's
  FollowSymlinkInScope does: a context or an image is content from outside,
  and a symlink in it must never lead to the host's files;
- `copy_sources`: Docker's COPY/ADD semantics, written into the build
  container's root through fds resolved inside that root.
"""
from __future__ import annotations

import errno
import hashlib
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from ...errors import BuildFailed, InvalidParameter, SystemError_
from ...images.unpack import (
    Extractor, LayerFormatError, Prefixed, decompressed, lstat_at, open_dir_beneath,
)
from ...inroot import O_PATH, Root, components
from .dockerignore import (
    PatternMatcher, filepath_match, filter_for_context, go_clean, has_glob, read_patterns,
)
from .shell import go_quote

DEFAULT_DOCKERFILE = "Dockerfile"
_BLOCK = 512
_HOST_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM, errno.EMFILE, errno.ENFILE}
_CHUNK = 1 << 20
_TAR_BUFSIZE = 1 << 16      # tarfile's stream buffer: re-sliced on every read, so not larger
_CAPABILITY_XATTR = "security.capability"
_MAX_LINK_FDS = 1024        # hard-linked files remembered per copy (beyond: copied as separate files)


# ---------------------------------------------------------------- the context tar

def _tar_header_ok(block: bytes) -> bool:
    """Whether a 512-byte block is a tar header with a valid checksum (what
    Go's tar.Reader needs to call it a header)."""
    if len(block) < _BLOCK or block.count(0) == _BLOCK:
        return False
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except (tarfile.HeaderError, ValueError):
        return False
    return True


def _read_full(f, n: int) -> bytes:
    """n bytes (fewer only at the end): a socket-fed body may give less per read."""
    chunks, left = [], n
    while left > 0:
        b = f.read(left)
        if not b:
            break
        chunks.append(b)
        left -= len(b)
    return b"".join(chunks)


_CONTROL = bytes(c for c in range(32) if chr(c) not in "\t\n\r\f\v") + b"\x7f"


def _looks_like_text(head: bytes) -> bool:
    """Text a person wrote (a Dockerfile): UTF-8 without control characters."""
    if head.translate(None, _CONTROL) != head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:         # a multi-byte character cut at the end is fine
        return e.start >= len(head) - 3
    return True


def _context_error(e: BaseException) -> InvalidParameter:
    """Go's words for a broken stream: a cut one is `unexpected EOF`, a
    block that is no tar header `archive/tar: invalid tar header`."""
    msg = str(e)
    if isinstance(e, EOFError) or "unexpected end" in msg or "truncated" in msg:
        return InvalidParameter("unexpected EOF")
    if "CRC check failed" in msg:
        return InvalidParameter("gzip: invalid checksum")
    if isinstance(e, zlib.error) or "gzip" in msg.lower():
        return InvalidParameter("flate: corrupt input")
    if isinstance(e, lzma.LZMAError):
        return InvalidParameter(f"xz: {msg}")
    if "invalid data stream" in msg:
        return InvalidParameter("bzip2 data invalid")
    return InvalidParameter("archive/tar: invalid tar header")


class _Counting:
    """A reader that notes where its stream ended."""

    def __init__(self, f):
        self.f = f
        self.n = 0
        self.eof_at: int | None = None

    def read(self, size: int = -1) -> bytes:
        b = self.f.read(size)
        if b:
            self.n += len(b)
        elif size != 0:
            self.eof_at = self.n
        return b


def _members(tf: tarfile.TarFile, counting: _Counting):
    """The members of a streamed tar, with Go's tar.Reader leniency: a
    stream that stops right after the last member's data (no padding, no
    end blocks) ends cleanly. The docker CLI sends such a tar when the
    Dockerfile is outside the context (it appends .dockerfile.<random> and
    .dockerignore that way); Python's tarfile calls it a truncation."""
    last = None
    it = iter(tf)
    while True:
        try:
            m = next(it)
        except StopIteration:
            return
        except tarfile.ReadError:
            if last is not None and counting.eof_at == last.offset_data + last.size:
                return
            raise
        last = m
        yield m


def _dockerfile_name(dockerfile: str) -> str:
    name = go_clean(dockerfile or DEFAULT_DOCKERFILE).lstrip("/")
    if name in ("", ".") or name == ".." or name.startswith("../"):
        return DEFAULT_DOCKERFILE
    return name


def unpack_context(fileobj: BinaryIO, dest_dir: str, dockerfile: str = DEFAULT_DOCKERFILE) -> str:
    """Unpack POST /build's body into the existing, empty `dest_dir` and
    return the Dockerfile's name in it.

    The body is a tar (compression detected by its magic, as moby's
    DetectCompression: gzip, bzip2, xz), or, if it is plain text and no tar,
    the Dockerfile itself (the context then holds only it, named
    `dockerfile`). Entry names are cleaned; one that climbs out with `..`,
    or a hard link to outside, is refused; absolute names and names met
    through symlinks stay inside (resolved there as in moby's chroot);
    device nodes are skipped (a context has no use for them, and they would
    only reach an image through COPY). Owners and modes are the tar's.

    Raises InvalidParameter with Go's wording for a broken archive
    (`unexpected EOF`, `archive/tar: invalid tar header`), SystemError_
    when the host fails (disk full)."""
    _context_sums.pop(os.path.realpath(dest_dir), None)   # never an older context's sums for this one
    try:
        plain = decompressed(fileobj)
        compressed = not isinstance(plain, Prefixed)
        head = _read_full(plain, _BLOCK)
    except LayerFormatError as e:       # zstd
        raise InvalidParameter(e.message.replace("layers are", "build contexts are")) from None
    except (EOFError, OSError, zlib.error, lzma.LZMAError) as e:
        raise _context_error(e) from None
    body = Prefixed(head, plain)
    if not head:
        _remember_sums(dest_dir, _ContextSums())
        return _dockerfile_name(dockerfile)             # an empty context
    if not _tar_header_ok(head[:_BLOCK]) and head.count(0) != len(head):
        if compressed or not _looks_like_text(head):
            if len(head) < _BLOCK:
                raise InvalidParameter("unexpected EOF")
            raise InvalidParameter("archive/tar: invalid tar header")
        name = _dockerfile_name(dockerfile)
        _write_bare_dockerfile(body, dest_dir, name)
        return name
    _untar_context(body, dest_dir)
    return dockerfile or DEFAULT_DOCKERFILE


def _write_bare_dockerfile(body, dest_dir: str, name: str) -> None:
    parts = name.split("/")
    top = os.open(dest_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pfd = open_dir_beneath(top, parts[:-1], create=True)
        try:
            fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o644, dir_fd=pfd)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(body, out, _CHUNK)
        finally:
            os.close(pfd)
    except OSError as e:
        raise SystemError_(f"writing the Dockerfile: {e.strerror or e}") from None
    finally:
        os.close(top)


def _check_names(m: tarfile.TarInfo) -> list[str]:
    p = go_clean(m.name).lstrip("/")
    if p == ".." or p.startswith("../"):
        raise InvalidParameter(f"{go_quote(m.name)} is outside of {go_quote('/')}")
    if m.islnk():
        t = go_clean(m.linkname).lstrip("/")
        if t in (".", "..") or t.startswith("../"):
            raise InvalidParameter(f"invalid hardlink {go_quote('/' + p)} -> {go_quote(m.linkname)}")
    return [] if p in ("", ".") else p.split("/")


class _SummingTar:
    """What the Extractor uses of a TarFile (extractfile), with each
    member's content added to a hash as the Extractor reads it: the context
    is read once, its tarsums made on the way."""

    def __init__(self, tf: tarfile.TarFile):
        self.tf = tf
        self.h = hashlib.sha256()

    def extractfile(self, m: tarfile.TarInfo):
        return _HashingReader(self.tf.extractfile(m), self.h)


class _HashingReader:
    def __init__(self, f, h):
        self.f = f
        self.h = h

    def read(self, size: int = -1) -> bytes:
        b = self.f.read(size)
        self.h.update(b)
        return b


def _untar_context(body, dest_dir: str) -> None:
    ex = Extractor(dest_dir, whiteouts=False)
    sums = _ContextSums()
    links: set[str] = set()
    try:
        counting = _Counting(body)
        with tarfile.open(fileobj=counting, mode="r|", encoding="utf-8", errors="surrogateescape",
                          bufsize=_TAR_BUFSIZE) as tf:
            summing = _SummingTar(tf)
            for m in _members(tf, counting):
                parts = _check_names(m)
                key = "/".join(parts) or "."
                summing.h = hashlib.sha256(_member_header(m))
                if parts and not (m.ischr() or m.isblk()):  # the root's own metadata stays ours; no devices
                    ex.entry(summing, m)
                sums.add(key, summing.h.hexdigest(), m.isreg(),
                         through_link=any("/".join(parts[:i]) in links for i in range(1, len(parts))))
                if m.issym():
                    links.add(key)
        ex.finish()
        _remember_sums(dest_dir, sums)
    except InvalidParameter:
        raise
    except LayerFormatError as e:
        raise InvalidParameter(e.message.replace("invalid layer archive: ", "")) from None
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, ValueError) as e:
        raise _context_error(e) from None
    except OSError as e:
        if e.errno is None:             # gzip/bz2 data errors come as bare OSErrors
            raise _context_error(e) from None
        if e.errno in _HOST_ERRNOS:
            raise SystemError_(f"unpacking the build context: {e.strerror}") from None
        raise InvalidParameter(f"unpacking the build context: {e.strerror or e}") from None
    finally:
        ex.close()


def write_context_tar(root: str, patterns: list[str], dockerfile: str | None, out: BinaryIO) -> None:
    """The context tar the docker CLI sends for directory `root` (for our
    CLI's `dockyard build`): the paths dockerignore.filter_for_context
    keeps, owned by 0:0 with no user names, modes and whole-second mtimes
    as on disk, directories named with a trailing "/", symlinks as
    symlinks, a file met again under another name as a hard link to the
    first; sockets left out. Files are the user's own: read by path."""
    seen: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tf:
        for rel in filter_for_context(root, patterns, dockerfile):
            path = os.path.join(root, rel)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            m = st.st_mode
            if stat.S_ISSOCK(m):
                continue
            ti = tarfile.TarInfo(rel)
            ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = stat.S_IMODE(m), 0, 0, "", ""
            ti.mtime = int(st.st_mtime)
            if stat.S_ISDIR(m):
                ti.type = tarfile.DIRTYPE
            elif stat.S_ISLNK(m):
                ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
            elif stat.S_ISREG(m):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    ti.type, ti.linkname = tarfile.LNKTYPE, seen[key]
                else:
                    seen[key] = rel
                    with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as f:
                        ti.size = os.fstat(f.fileno()).st_size
                        tf.addfile(ti, f)
                    continue
            else:
                ti.type = (tarfile.CHRTYPE if stat.S_ISCHR(m) else tarfile.BLKTYPE if stat.S_ISBLK(m)
                           else tarfile.FIFOTYPE)
                if stat.S_ISCHR(m) or stat.S_ISBLK(m):
                    ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            tf.addfile(ti)


# ---------------------------------------------------------------- moby's tarsums

# moby names COPY/ADD sources in history and in its cache key by tarsum
# (version 1: sha256 over a tar header's fields, mtime left out, then the
# content), computed from the context tar's own headers as it is unpacked.
# The headers of the last few contexts unpacked are kept here, by directory
# (and inode, so a new directory at the same path is not mistaken for it).
_SUMS_KEPT = 16


class _ContextSums:
    """The tarsums of one unpacked context: `moby` every entry's (the first
    of a name, as moby's GetFile), `files` the regular files' for our own
    checksums, None when the tar wrote a path twice or through one of its
    own symlinks (the disk may then hold other content than a sum says)."""

    def __init__(self) -> None:
        self.moby: dict[str, str] = {}
        self.files: dict[str, str] | None = {}

    def add(self, key: str, tarsum: str, regular: bool, through_link: bool) -> None:
        if key in self.moby or through_link:
            self.files = None
        self.moby.setdefault(key, tarsum)
        if regular and self.files is not None:
            self.files[key] = tarsum


_context_sums: dict[str, tuple[tuple[int, int], _ContextSums]] = {}


def _v1_header(name: str, mode: int, uid: int, gid: int, size: int, typeflag: str, linkname: str,
               devmajor: int, devminor: int, xattrs: list[tuple[str, str]]) -> bytes:
    fields = [("name", name), ("mode", str(mode)), ("uid", str(uid)), ("gid", str(gid)), ("size", str(size)),
              ("typeflag", typeflag), ("linkname", linkname), ("uname", ""), ("gname", ""),
              ("devmajor", str(devmajor)), ("devminor", str(devminor))] + sorted(xattrs)
    return b"".join((k + v).encode("utf-8", "surrogateescape") for k, v in fields)


def _member_header(m: tarfile.TarInfo) -> bytes:
    typeflag = m.type.decode("latin-1")
    if typeflag == "\0":                   # Go reads the old "regular" flag as TypeReg
        typeflag = "0"
    name = m.name + "/" if m.isdir() and not m.name.endswith("/") else m.name   # Python drops it
    xattrs = [(k[len("SCHILY.xattr."):], v) for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")]
    return _v1_header(name, m.mode, m.uid, m.gid, m.size, typeflag, m.linkname, m.devmajor, m.devminor, xattrs)


def _remember_sums(dest_dir: str, sums: _ContextSums) -> None:
    st = os.stat(dest_dir)
    key = os.path.realpath(dest_dir)
    _context_sums.pop(key, None)
    _context_sums[key] = ((st.st_dev, st.st_ino), sums)
    while len(_context_sums) > _SUMS_KEPT:
        _context_sums.pop(next(iter(_context_sums)))


def _sums_of(root_dir: str) -> _ContextSums | None:
    entry = _context_sums.get(os.path.realpath(root_dir))
    if entry is None:
        return None
    try:
        st = os.stat(root_dir)
    except OSError:
        return None
    return entry[1] if entry[0] == (st.st_dev, st.st_ino) else None


# ---------------------------------------------------------------- sources

@dataclass(frozen=True)
class Source:
    """One COPY/ADD source found in a tree: `path` is inside the tree
    (cleaned, "." for its root), `name` the base name a file gets when
    copied into a directory (moby: the name as written, not a symlink's
    target), `is_dir` whether its contents are what gets copied."""
    path: str
    name: str
    is_dir: bool


def _trim_source(orig: str) -> str:
    """moby's calcCopyInfo: a leading "/" and "./" go (the source is always
    relative to the tree's root)."""
    p = orig[1:] if orig.startswith("/") else orig
    return p[2:] if p.startswith("./") else p


def _entries(dir_fd: int) -> list[tuple[str, os.stat_result]]:
    out = []
    for name in sorted(os.listdir(dir_fd)):
        try:
            out.append((name, os.stat(name, dir_fd=dir_fd, follow_symlinks=False)))
        except FileNotFoundError:
            continue
    return out


def _open_subdir(dir_fd: int, name: str) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


class SourceTree:
    """A tree COPY/ADD read from: the unpacked context (`ignore`: a
    .dockerignore matcher whose excluded paths are invisible; moby's daemon
    itself only drops the Dockerfile and .dockerignore, see
    dockerignore.remove_ignored_build_files), or, `hostile`, the root of an
    image or stage for `COPY --from` (a missing source is then moby's bare
    `stat x: file does not exist`). Paths are always resolved inside the
    root on fds (inroot.Root), whichever it is."""

    def __init__(self, root_dir: str, ignore: PatternMatcher | None = None, hostile: bool = False):
        self.root_dir = root_dir
        self.ignore = ignore if ignore else None
        self.hostile = hostile
        self._digests: dict[tuple[int, int, int, int, int], bytes] = {}
        self._moby_sums: dict[tuple, str] = {}
        self._files: dict[str, str] | None | bool = False     # False: not looked up yet

    def _hidden(self, rel: str) -> bool:
        return self.ignore is not None and rel not in ("", ".") and self.ignore.matches(rel)

    def _open(self, root: Root, path: str, hide: bool = True) -> tuple[int, str]:
        """(O_PATH fd, path inside the root) of what `path` leads to,
        symlinks followed inside the root; FileNotFoundError if nothing
        (or, with `hide`, if the ignore patterns exclude it)."""
        try:
            found = root.lookup(path, follow_last=True)
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(errno.ENOENT, "no such file", path) from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise FileNotFoundError(errno.ENOENT, "no such file", path) from None
            raise
        if not found.exists:
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        rel = found.cpath.lstrip("/") or "."
        if hide and self._hidden(rel):
            found.close()
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        return found.fd, rel

    # ------------------------------------------------------------ the Dockerfile

    def locate_dockerfile(self, name: str = DEFAULT_DOCKERFILE) -> str:
        """The Dockerfile's name in the context: `name`, or for the default
        name its lowercase form when only that exists (moby); else
        `Cannot locate specified Dockerfile: <name>` (InvalidParameter)."""
        with Root(self.root_dir) as root:
            for candidate in (name, name.lower()) if name == DEFAULT_DOCKERFILE else (name,):
                try:
                    fd, _ = self._open(root, candidate, hide=False)     # read before any ignoring
                except FileNotFoundError:
                    continue
                os.close(fd)
                return candidate
        raise InvalidParameter(f"Cannot locate specified Dockerfile: {name}")

    def read_dockerfile(self, name: str = DEFAULT_DOCKERFILE, limit: int = 16 << 20) -> bytes:
        """The Dockerfile's bytes (see locate_dockerfile), even when the
        ignore patterns exclude it: moby reads it before it drops it."""
        found = self.locate_dockerfile(name)
        data = self._read(found, limit)
        if data is None:
            raise InvalidParameter(f"Cannot locate specified Dockerfile: {name}")
        return data

    def read_dockerignore(self) -> PatternMatcher | None:
        """The context's .dockerignore as a matcher (read inside the root:
        a symlinked .dockerignore never reads a host file), None when there
        is none or its patterns are malformed (moby ignores them then)."""
        data = self._read(".dockerignore", 1 << 20)
        if data is None:
            return None
        try:
            return PatternMatcher(read_patterns(data))
        except InvalidParameter:
            return None

    def _read(self, path: str, limit: int) -> bytes | None:
        """At most `limit` bytes of regular file `path` of the tree; None if none."""
        with Root(self.root_dir) as root:
            try:
                fd, _ = self._open(root, path, hide=False)
            except FileNotFoundError:
                return None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
                rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
            finally:
                os.close(fd)
        with os.fdopen(rfd, "rb") as f:
            return f.read(limit)

    # ------------------------------------------------------------ COPY/ADD sources

    def sources(self, patterns: list[str], cmd: str = "COPY") -> list[Source]:
        """The sources `patterns` name (moby's calcCopyInfo): a plain path
        must exist (`<cmd> failed: file not found in build context or
        excluded by .dockerignore: stat <path>: file does not exist`), a
        pattern (Go's filepath.Match over every path of the tree) may match
        nothing, but all of them together must give something (`<cmd>
        failed: no source files were specified`). `..` never leaves the
        root: it stops there, as in moby."""
        out: list[Source] = []
        with Root(self.root_dir) as root:
            for orig in patterns:
                path = _trim_source(orig)
                if has_glob(path):
                    for rel in self._glob(root, path):
                        out.append(self._source(root, rel, rel, cmd))
                else:
                    out.append(self._source(root, path, orig, cmd))
        if not out:
            raise BuildFailed(f"{cmd} failed: no source files were specified")
        return out

    def _source(self, root: Root, path: str, shown: str, cmd: str) -> Source:
        try:
            fd, _ = self._open(root, path)
        except FileNotFoundError:
            err = f"stat {_trim_source(shown)}: file does not exist"
            if self.hostile:
                raise BuildFailed(f"{cmd} failed: {err}") from None
            raise BuildFailed(f"{cmd} failed: file not found in build context or excluded by "
                              f".dockerignore: {err}") from None
        try:
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
        clean = go_clean(path)
        return Source(clean, posixpath.basename(clean) or clean, is_dir)

    def _glob(self, root: Root, pattern: str) -> list[str]:
        """Every path of the tree (walked without following symlinks, in
        lexical order like filepath.WalkDir) that matches `pattern`."""
        # `*`, `?` and names never match "/": a match has the pattern's depth
        # (a bracket class might, so then walk it all)
        max_depth = pattern.count("/") if "[" not in pattern else None
        found: list[str] = []

        def walk(dir_fd: int, rel: str, depth: int) -> None:
            for name, st in _entries(dir_fd):
                r = f"{rel}/{name}" if rel else name
                if self._hidden(r):
                    continue
                if filepath_match(pattern, r):
                    found.append(r)
                if stat.S_ISDIR(st.st_mode) and (max_depth is None or depth < max_depth):
                    try:
                        sub = _open_subdir(dir_fd, name)
                    except OSError:
                        continue
                    try:
                        walk(sub, r, depth + 1)
                    finally:
                        os.close(sub)

        top = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=root.fd)
        try:
            walk(top, "", 0)
        except InvalidParameter:            # a malformed pattern matches nothing (moby ignores the error)
            return []
        finally:
            os.close(top)
        return found

    # ------------------------------------------------------------ checksums

    def checksum(self, sources: list[Source]) -> str:
        """sha256 over what copying `sources` reads: each path, type, mode,
        owner, size, symlink target and file content (not times, as moby's
        tarsum). Contents are hashed once per tree (cached by inode)."""
        h = hashlib.sha256()
        with Root(self.root_dir) as root:
            for src in sources:
                h.update(b"S\0" + os.fsencode(src.path) + b"\0")
                fd, rel = self._open(root, src.path)
                try:
                    st = os.fstat(fd)
                    if stat.S_ISDIR(st.st_mode):
                        dfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                        try:
                            self._hash_dir(h, dfd, "" if rel == "." else rel, "")
                        finally:
                            os.close(dfd)
                    else:
                        self._hash_entry(h, "", rel, st,
                                         lambda: os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC), None)
                finally:
                    os.close(fd)
        return "sha256:" + h.hexdigest()

    def _hash_dir(self, h, dir_fd: int, tree_rel: str, rel: str) -> None:
        for name, st in _entries(dir_fd):
            tr = f"{tree_rel}/{name}" if tree_rel else name
            if self._hidden(tr):
                continue
            r = f"{rel}/{name}" if rel else name
            link = os.readlink(name, dir_fd=dir_fd) if stat.S_ISLNK(st.st_mode) else None
            self._hash_entry(h, r, tr, st, lambda: os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                                           dir_fd=dir_fd), link)
            if stat.S_ISDIR(st.st_mode):
                sub = _open_subdir(dir_fd, name)
                try:
                    self._hash_dir(h, sub, tr, r)
                finally:
                    os.close(sub)

    def _hash_entry(self, h, rel: str, tree_rel: str, st: os.stat_result, opener, link: str | None) -> None:
        m = st.st_mode
        rdev = st.st_rdev if stat.S_ISCHR(m) or stat.S_ISBLK(m) else 0
        h.update(f"E\0{rel}\0{m:o}\0{st.st_uid}\0{st.st_gid}\0{rdev}\0".encode("utf-8", "surrogateescape"))
        if link is not None:
            h.update(b"L\0" + os.fsencode(link) + b"\0")
        elif stat.S_ISREG(m):
            files = self._tar_files()
            known = files.get(tree_rel) if files is not None else None
            if known is not None:       # its tarsum, made as the context was unpacked: no read
                h.update(b"T\0" + known.encode() + b"\0")
            else:
                h.update(b"C\0" + self._content_digest(st, opener) + b"\0")

    def _tar_files(self) -> dict[str, str] | None:
        if self._files is False:
            sums = None if self.hostile else _sums_of(self.root_dir)
            self._files = sums.files if sums is not None else None
        return self._files

    def history_hash(self, sources: list[Source]) -> str:
        """What moby writes for the sources in a COPY/ADD step's history
        (`COPY file:<sum> in /x`) and probes its cache with: `file:<tarsum>`
        for a file, `dir:<sha256 of its entries' sums>` for a directory,
        `multi:<...>` for several; the same values as dockerd's for a
        context this module unpacked (its tar headers are kept) and for an
        image's tree (headers made from the files, as moby's lazy source)."""
        sums = None if self.hostile else _sums_of(self.root_dir)
        out = []
        with Root(self.root_dir) as root:
            for src in sources:
                if src.is_dir:
                    out.append(self._moby_dir_hash(root, src.path, sums))
                else:
                    out.append("file:" + self._moby_hash(root, _trim_source(src.path), sums))
        if len(out) == 1:
            return out[0]
        return "multi:" + hashlib.sha256(",".join(out).encode()).hexdigest()

    def _moby_dir_hash(self, root: Root, path: str, sums) -> str:
        try:
            fd, rel = self._open(root, path)
        except FileNotFoundError:
            return "dir:" + hashlib.sha256(b"").hexdigest()
        subs: list[str] = []
        try:
            if rel != ".":
                subs.append(self._moby_hash(root, rel, sums))
            dfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        finally:
            os.close(fd)

        def walk(dir_fd: int, drel: str) -> None:
            for name, st in _entries(dir_fd):
                r = f"{drel}/{name}" if drel != "." else name
                if self._hidden(r):
                    continue
                subs.append(self._moby_hash(root, r, sums))
                if stat.S_ISDIR(st.st_mode):
                    sub = _open_subdir(dir_fd, name)
                    try:
                        walk(sub, r)
                    finally:
                        os.close(sub)
        try:
            walk(dfd, rel)
        finally:
            os.close(dfd)
        return "dir:" + hashlib.sha256(",".join(sorted(subs)).encode("utf-8", "surrogateescape")).hexdigest()

    def _moby_hash(self, root: Root, path: str, sums) -> str:
        """moby's Source.Hash(path): the tarsum of what `path` leads to (in
        the tree); the path itself when that has none (moby's fallback)."""
        try:
            fd, rel = self._open(root, path)
        except FileNotFoundError:
            return path
        try:
            st = os.fstat(fd)
            key = (rel, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            done = self._moby_sums.get(key)
            if done is not None:
                return done
            if sums is not None:
                return sums.moby.get(rel, path)       # made as the context was unpacked
            header = self._lazy_header(fd, rel, st)
            has_content = stat.S_ISREG(st.st_mode) and st.st_size > 0
            h = hashlib.sha256(header)
            if has_content and stat.S_ISREG(st.st_mode):
                rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
                with os.fdopen(rfd, "rb") as f:
                    while True:
                        b = f.read(_CHUNK)
                        if not b:
                            break
                        h.update(b)
            self._moby_sums[key] = h.hexdigest()
            return self._moby_sums[key]
        finally:
            os.close(fd)

    @staticmethod
    def _lazy_header(fd: int, rel: str, st: os.stat_result) -> bytes:
        """The header moby's lazy source makes from a file (archive.FileInfoHeader)."""
        m = st.st_mode
        kinds = ((stat.S_ISREG, "0"), (stat.S_ISDIR, "5"), (stat.S_ISLNK, "2"), (stat.S_ISCHR, "3"),
                 (stat.S_ISBLK, "4"), (stat.S_ISFIFO, "6"))
        typeflag = next((t for test, t in kinds if test(m)), "0")
        dev = stat.S_ISCHR(m) or stat.S_ISBLK(m)
        xattrs = []
        if stat.S_ISREG(m) or stat.S_ISDIR(m):
            try:
                cap = os.getxattr(f"/proc/self/fd/{fd}", _CAPABILITY_XATTR)
                xattrs.append((_CAPABILITY_XATTR, cap.decode("utf-8", "surrogateescape")))
            except OSError:
                pass
        return _v1_header(rel + "/" if stat.S_ISDIR(m) else rel, stat.S_IMODE(m), st.st_uid, st.st_gid,
                          st.st_size if stat.S_ISREG(m) else 0, typeflag, "",
                          os.major(st.st_rdev) if dev else 0, os.minor(st.st_rdev) if dev else 0, xattrs)

    def _content_digest(self, st: os.stat_result, opener) -> bytes:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        d = self._digests.get(key)
        if d is None:
            fd = opener()
            try:
                with os.fdopen(fd, "rb", closefd=False) as f:
                    d = hashlib.file_digest(f, "sha256").digest()
            finally:
                os.close(fd)
            self._digests[key] = d
        return d


# ---------------------------------------------------------------- copying

def check_dest(sources: list, dest: str, cmd: str = "COPY") -> None:
    """moby's createCopyInstruction: several sources need a directory
    destination, written with a trailing slash."""
    if len(sources) > 1 and not dest.endswith("/"):
        raise BuildFailed(f"When using {cmd} with more than one source file, the destination "
                          "must be a directory and end with a /")


def normalize_dest(workdir: str, dest: str) -> str:
    """moby's normalizeDest: a relative destination is under the working
    directory; a trailing slash is kept (it means "into a directory")."""
    if dest.startswith("/"):
        return dest
    joined = posixpath.normpath(posixpath.join("/", workdir or "/", dest))
    joined = "/" + joined.lstrip("/")
    if dest.endswith("/") and not joined.endswith("/"):
        joined += "/"
    return joined


def _is_archive(fd: int) -> bool:
    """moby's IsArchivePath: a (possibly compressed) stream whose first
    block is a tar header."""
    os.lseek(fd, 0, os.SEEK_SET)
    f = os.fdopen(os.dup(fd), "rb")
    try:
        return _tar_header_ok(_read_full(decompressed(f), _BLOCK))
    except (LayerFormatError, EOFError, OSError, zlib.error, lzma.LZMAError):
        return False
    finally:
        f.close()
        os.lseek(fd, 0, os.SEEK_SET)


def _copy_data(src: int, dst: int, size: int) -> None:
    left = size
    try:
        while left > 0:
            n = os.copy_file_range(src, dst, min(left, 1 << 30))
            if n == 0:
                break
            left -= n
        if left <= 0:
            return
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
    while True:                         # what is left, read and written (a file that grew or shrank too)
        b = os.read(src, _CHUNK)
        if not b:
            break
        os.write(dst, b)


def _remove(dir_fd: int, name: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _times(st: os.stat_result) -> tuple[int, int]:
    t = (st.st_mtime_ns // 1_000_000_000) * 1_000_000_000     # moby's tar copy keeps whole seconds
    return t, t


class _Copy:
    """One COPY/ADD into a root: the ownership and mode rules, and hard
    links among what it copies."""

    def __init__(self, tree: SourceTree, owner: tuple[int, int] | None, chmod: int | None):
        self.tree = tree
        self.owner = owner          # None: keep the source's (COPY --from without --chown)
        self.chmod = chmod
        self.links: dict[tuple[int, int], int] = {}     # source inode -> O_PATH fd of its copy

    def close(self) -> None:
        for fd in self.links.values():
            os.close(fd)
        self.links.clear()

    def _ids(self, st: os.stat_result) -> tuple[int, int]:
        return self.owner if self.owner is not None else (st.st_uid, st.st_gid)

    def _mode(self, st: os.stat_result) -> int:
        return self.chmod if self.chmod is not None else stat.S_IMODE(st.st_mode)

    def file(self, src_fd: int, st: os.stat_result, dst_dir: int, name: str, xattrs: bool) -> None:
        """Regular file `src_fd` (readable) as `name` in `dst_dir`, replacing
        what is there."""
        old = lstat_at(dst_dir, name)
        if old is not None:
            _remove(dst_dir, name, old)
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            os.link(f"/proc/self/fd/{self.links[key]}", name, dst_dir_fd=dst_dir, follow_symlinks=True)
            return
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dst_dir)
        try:
            _copy_data(src_fd, fd, st.st_size)
            if self.owner is None or self.chmod is not None:
                os.fchown(fd, *self._ids(st))
                os.fchmod(fd, self._mode(st))       # after chown, which clears set-id bits
                if xattrs:
                    _copy_capability(src_fd, fd)
            else:
                # moby's order: its tar copy sets the mode (and capability),
                # fixPermissions chowns afterwards, so the kernel drops set-id
                # bits and file capabilities: what dockerd's images hold
                os.fchmod(fd, self._mode(st))
                if xattrs:
                    _copy_capability(src_fd, fd)
                os.fchown(fd, *self.owner)
            os.utime(fd, ns=_times(st))
            if st.st_nlink > 1 and len(self.links) < _MAX_LINK_FDS:
                self.links[key] = os.open(name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst_dir)
        finally:
            os.close(fd)

    def other(self, src_dir: int, name: str, st: os.stat_result, dst_dir: int, dst_name: str) -> None:
        """A symlink (copied as one) or a device/fifo node (made again)."""
        m = st.st_mode
        if stat.S_ISSOCK(m):
            return                                  # tar (hence moby) leaves sockets out
        old = lstat_at(dst_dir, dst_name)
        if old is not None:
            _remove(dst_dir, dst_name, old)
        uid, gid = self._ids(st)
        if stat.S_ISLNK(m):
            os.symlink(os.readlink(name, dir_fd=src_dir), dst_name, dir_fd=dst_dir)
            os.chown(dst_name, uid, gid, dir_fd=dst_dir, follow_symlinks=False)
            os.utime(dst_name, ns=_times(st), dir_fd=dst_dir, follow_symlinks=False)
            return
        os.mknod(dst_name, stat.S_IFMT(m) | 0o600, st.st_rdev, dir_fd=dst_dir)
        fd = os.open(dst_name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst_dir)
        try:
            os.chown(f"/proc/self/fd/{fd}", uid, gid)
            os.chmod(f"/proc/self/fd/{fd}", self._mode(st))
            os.utime(f"/proc/self/fd/{fd}", ns=_times(st))
        finally:
            os.close(fd)

    def tree_contents(self, src_dir: int, tree_rel: str, dst_dir: int) -> None:
        """Everything in `src_dir` into `dst_dir`, merged with what is there
        (a directory over a directory keeps both's contents and takes the
        source's metadata, anything else replaces)."""
        for name, st in _entries(src_dir):
            tr = f"{tree_rel}/{name}" if tree_rel else name
            if self.tree._hidden(tr):
                continue
            m = st.st_mode
            if stat.S_ISDIR(m):
                old = lstat_at(dst_dir, name)
                if old is not None and not stat.S_ISDIR(old.st_mode):
                    _remove(dst_dir, name, old)
                    old = None
                if old is None:
                    os.mkdir(name, 0o700, dir_fd=dst_dir)
                s_sub = _open_subdir(src_dir, name)
                try:
                    d_sub = _open_subdir(dst_dir, name)
                    try:
                        self.tree_contents(s_sub, tr, d_sub)
                        self.dir_meta(d_sub, st)
                    finally:
                        os.close(d_sub)
                finally:
                    os.close(s_sub)
            elif stat.S_ISREG(m):
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
                try:
                    self.file(fd, os.fstat(fd), dst_dir, name, xattrs=True)
                finally:
                    os.close(fd)
            else:
                self.other(src_dir, name, st, dst_dir, name)

    def dir_meta(self, fd: int, st: os.stat_result) -> None:
        os.fchown(fd, *self._ids(st))
        os.fchmod(fd, self._mode(st))
        os.utime(fd, ns=_times(st))


def _copy_capability(src: int, dst: int) -> None:
    """moby's tar copy of a directory keeps security.capability (only)."""
    try:
        value = os.getxattr(src, _CAPABILITY_XATTR)
    except OSError:
        return
    try:
        os.setxattr(dst, _CAPABILITY_XATTR, value)
    except OSError:
        pass


def _resolve_file_dest(root_fd: int, parts: list[str], owner: tuple[int, int] | None) -> tuple[int, str]:
    """(parent dir fd, name) where a file copied to `parts` goes, parents
    made (0755, `owner`'s when new): the last component's symlink is
    followed inside the root too, as moby's FollowSymlinkInScope does."""
    for _ in range(40):
        pfd = open_dir_beneath(root_fd, parts[:-1], create=True, owner=owner)
        name = parts[-1]
        st = lstat_at(pfd, name)
        if st is None or not stat.S_ISLNK(st.st_mode):
            return pfd, name
        target = os.readlink(name, dir_fd=pfd)
        os.close(pfd)
        parts = components(target) if target.startswith("/") else parts[:-1] + components(target)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "is a directory", target)
    raise OSError(errno.ELOOP, "too many levels of symbolic links", "/".join(parts))


def copy_sources(tree: SourceTree, sources: list[Source], dest_root: str, dest: str, *,
                 workdir: str = "/", chown: tuple[int, int] | None = None, chmod: int | None = None,
                 extract_archives: bool = False, cmd: str = "COPY",
                 preserve_ownership: bool = False) -> None:
    """COPY/ADD `sources` of `tree` to `dest` in the root `dest_root` (the
    build container's rootfs: image content, so every path in it is
    resolved on fds inside it; a symlink there never leads out).

    As moby: a relative `dest` is under `workdir`; a directory source copies
    its contents into `dest` (made if missing); a file goes into `dest` when
    that is a directory or ends in "/", else becomes `dest`; missing parents
    are made 0755; everything copied belongs to `chown` or 0:0, except with
    `preserve_ownership` (COPY --from without --chown: the source's owners);
    `chmod` sets the mode of what is copied; with `extract_archives` (ADD) a
    local tar (plain, gzip, bzip2, xz) is unpacked at `dest` with its own
    owners. Hard links among the copied files stay hard links; symlinks are
    copied as symlinks (a symlink named as the source itself is followed,
    inside the tree)."""
    check_dest(sources, dest, cmd)
    dest_path = normalize_dest(workdir, dest)
    into_dir = dest_path.endswith("/")
    parts = components(dest_path)
    owner = None if preserve_ownership and chown is None else (chown or (0, 0))
    try:
        root_fd = os.open(dest_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise SystemError_(f"{cmd}: the build container's root: {e.strerror}") from None
    copy = _Copy(tree, owner, chmod)
    try:
        with Root(dest_root) as droot, Root(tree.root_dir) as sroot:
            for src in sources:
                _copy_one(copy, sroot, droot, root_fd, src, parts, into_dir, owner, extract_archives)
    except (BuildFailed, InvalidParameter):
        raise
    except OSError as e:
        if e.errno in _HOST_ERRNOS:
            raise SystemError_(f"failed to copy files: {e.strerror}") from None
        raise BuildFailed(f"failed to copy files: {e.strerror or e}") from None
    finally:
        copy.close()
        os.close(root_fd)


def _dest_state(droot: Root, parts: list[str]) -> bool:
    """Whether `parts` is an existing directory (symlinks followed inside)."""
    try:
        with droot.lookup("/" + "/".join(parts), follow_last=True) as f:
            return f.exists and stat.S_ISDIR(os.fstat(f.fd).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as e:
        if e.errno == errno.ELOOP:
            return False
        raise


def _copy_one(copy: _Copy, sroot: Root, droot: Root, root_fd: int, src: Source, parts: list[str],
              into_dir: bool, dir_owner: tuple[int, int] | None, extract: bool) -> None:
    tree = copy.tree
    try:
        sfd, rel = tree._open(sroot, src.path)
    except FileNotFoundError:
        raise BuildFailed(f"failed to copy files: source path not found: stat {src.path}: "
                          "file does not exist") from None
    try:
        st = os.fstat(sfd)
        if stat.S_ISDIR(st.st_mode):
            existed = _dest_state(droot, parts)
            # moby's CopyWithTar: missing dirs are root's; fixPermissions then
            # gives a new destination directory itself to the copy's owner
            dfd = open_dir_beneath(root_fd, parts, create=True)
            try:
                s_dir = os.open(f"/proc/self/fd/{sfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    copy.tree_contents(s_dir, "" if rel == "." else rel, dfd)
                finally:
                    os.close(s_dir)
                if not existed and copy.owner is not None:
                    os.fchown(dfd, *copy.owner)         # moby's fixPermissions: the new dest dir too
            finally:
                os.close(dfd)
            return
        if not (stat.S_ISREG(st.st_mode)):
            raise BuildFailed(f"failed to copy files: {src.path}: not a regular file or directory")
        rfd = os.open(f"/proc/self/fd/{sfd}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if extract and _is_archive(rfd):
                _extract(rfd, root_fd, parts, src)
                return
            if into_dir or _dest_state(droot, parts):
                pfd = open_dir_beneath(root_fd, parts, create=True, owner=dir_owner)
                name = src.name
            else:
                if not parts:
                    raise BuildFailed("failed to copy files: cannot copy a file to /")
                pfd, name = _resolve_file_dest(root_fd, parts, dir_owner)
            try:
                copy.file(rfd, st, pfd, name, xattrs=False)
            finally:
                os.close(pfd)
        finally:
            os.close(rfd)
    finally:
        os.close(sfd)


def _extract(fd: int, root_fd: int, parts: list[str], src: Source) -> None:
    """ADD of a local archive: unpacked at `parts` (made if missing), the
    archive's owners and modes kept, nothing outside that directory."""
    dfd = open_dir_beneath(root_fd, parts, create=True)
    ex = Extractor(dfd, whiteouts=False)
    f = os.fdopen(os.dup(fd), "rb")
    try:
        counting = _Counting(decompressed(f))
        with tarfile.open(fileobj=counting, mode="r|", encoding="utf-8", errors="surrogateescape") as tf:
            for m in _members(tf, counting):
                p = go_clean(m.name).lstrip("/")
                if p in ("", "."):
                    continue            # an existing directory keeps its own metadata (moby)
                ex.entry(tf, m)
        ex.finish()
    except LayerFormatError as e:
        raise BuildFailed(f"failed to copy files: {src.path}: "
                          + e.message.replace("invalid layer archive: ", "")) from None
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, ValueError) as e:
        raise BuildFailed(f"failed to copy files: {src.path}: {_context_error(e).message}") from None
    finally:
        f.close()
        ex.close()
        os.close(dfd)
