"""OCI whiteouts -> overlayfs whiteouts.

Image layers mark deletions with special file names (OCI image spec,
"Whiteouts"); overlayfs marks them with a 0:0 character device and an
xattr. Layers are unpacked into overlay lower dirs, so the conversion
happens once, at unpack time:

  dir/.wh.NAME       -> dir/NAME as character device 0:0  (NAME deleted)
  dir/.wh..wh..opq   -> xattr trusted.overlay.opaque=y on dir
                        (everything below dir in lower layers hidden)

Other `.wh..wh.*` names are aufs bookkeeping (hardlink dirs) and are
dropped, as Docker's overlay2 driver does.
"""
from __future__ import annotations

import os
import stat
from enum import Enum

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"


class Whiteout(Enum):
    FILE = "file"        # delete one name
    OPAQUE = "opaque"    # hide the lower directory's contents
    META = "meta"        # aufs metadata: ignore


def classify(basename: str) -> tuple[Whiteout, str | None] | None:
    """What an archive entry's base name means; None for an ordinary entry.
    For Whiteout.FILE the second item is the name being deleted."""
    if not basename.startswith(WHITEOUT_PREFIX):
        return None
    if basename == OPAQUE_MARKER:
        return Whiteout.OPAQUE, None
    if basename.startswith(WHITEOUT_META_PREFIX):
        return Whiteout.META, None
    target = basename[len(WHITEOUT_PREFIX):]
    if target in ("", ".", "..") or "/" in target:
        raise ValueError(f"invalid whiteout name {basename!r}")
    return Whiteout.FILE, target


def make_whiteout(dir_fd: int, name: str, uid: int = 0, gid: int = 0) -> None:
    """Create the overlay whiteout for `name` inside the directory `dir_fd`.
    The name must not exist (the caller clears it)."""
    os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dir_fd)
    os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)


def make_opaque(dir_fd: int) -> None:
    """Mark the directory open as `dir_fd` opaque for overlayfs."""
    os.setxattr(dir_fd, OPAQUE_XATTR, b"y")


def is_whiteout(st: os.stat_result) -> bool:
    """An overlay whiteout as found on disk."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


def keep_only_opaque_xattrs(root: str) -> None:
    """Drop the trusted.overlay.* attributes overlayfs set in an upper dir
    (origin, impure, ...) everywhere under `root`, except the opaque marker:
    that dir is about to become a lower layer, where only whiteouts and
    opaque dirs may speak to overlayfs. Symlinks are not followed."""
    def clean(path: str) -> None:
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError:
            return
        for n in names:
            if n.startswith("trusted.overlay.") and n != OPAQUE_XATTR:
                try:
                    os.removexattr(path, n, follow_symlinks=False)
                except OSError:
                    pass
    clean(root)
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            clean(os.path.join(dirpath, name))
