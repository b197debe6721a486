"""The runtime's mount namespace: the daemon's, without the containers' mounts.

Every running container adds mounts to the daemon's namespace: its overlay
rootfs, its network namespace pin, an `--ipc shareable` /dev/shm, option
volumes. A runtime started in that namespace pays for all of them on each
create and exec (the kernel copies the whole table into every new mount
namespace, pivot_root walks it, crun 1.28 reads all of /proc/mounts), so
starts slowed down with every container running (issue 16).

So conmon, and the runtime under it, start elsewhere: in a copy of the
daemon's namespace taken once per daemon (on the first start), made
rprivate and emptied of the mounts under the daemon's data and exec roots
and of every other engine's container mounts (overlay, nsfs), so it stays
the size of the host's own table. The daemon holds it by a file
descriptor (nothing to clean up; a restarted daemon makes a new one, and
running conmons keep their own). Each create or exec runs conmon through
`dockyard-enter` (mntns_enter.c), which enters that namespace, unshares a
private copy of it and moves in what the container needs as detached
mounts cloned here with open_tree(2): its rootfs, its netns pin, every
bind source (so a source mounted on the host after the copy, and a
shared/slave source's propagation, are as the daemon sees them). The
daemon's own view is unchanged (cp, export, commit work on it).

Where this cannot work (no compiler for the helper, a kernel without
open_tree, a bind of `/`) conmon starts in the daemon's namespace as before.

The namespace is rprivate, not rslave: on a host whose / is shared
(systemd's) a slave would receive every container mount again. The cost:
a filesystem mounted on the host before the namespace was made and
unmounted there later stays referenced by it (until the daemon exits) and
by the conmons started meanwhile (until their containers exit). Keeping
the daemon's container-mount directories private on the host (dockerd's
overlay2 home) would allow a slave; not done.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from collections.abc import Iterable, Mapping

from .. import linux

log = logging.getLogger("dockyard.runtime")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.unshare.argtypes = (ctypes.c_int,)

CLONE_NEWNS = 0x00020000
SYS_OPEN_TREE = 428          # the same number on every architecture (unified table)
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_FDCWD = -100
AT_RECURSIVE = 0x8000


def open_tree_clone(path: str) -> int:
    """A detached copy of the mount tree at path (a bind of it, submounts
    included): an fd that move_mount(2) can put anywhere, in any namespace
    its holder enters. Closing it unmounts the copy."""
    fd = _libc.syscall(ctypes.c_long(SYS_OPEN_TREE), ctypes.c_int(AT_FDCWD), path.encode(),
                       ctypes.c_uint(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE))
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"open_tree {path}: {os.strerror(e)}")
    return int(fd)


def _inside(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/") + "/")


# mounts made per container, by this daemon or any other engine on the host
# (their containers' rootfs, network namespace pins): never what a runtime needs
PER_CONTAINER_TYPES = frozenset({"overlay", "nsfs"})


def hidden(mounts: Iterable[tuple[str, str]], roots: Iterable[str]) -> list[str]:
    """The mount points to empty in the runtime namespace, deepest first,
    from (mount point, filesystem type) pairs: those strictly under one of
    roots (the daemon's data and exec roots), and every overlay and nsfs
    mount two or more levels deep (other engines' containers too; an
    overlay root or /usr stays); never a root itself or a mount holding one
    (an exec root on its own tmpfs under the data root stays)."""
    roots = [os.path.realpath(r) for r in roots]
    out = set()
    for p, fstype in mounts:
        if any(r == p or _inside(r, p) for r in roots):
            continue
        if any(_inside(p, r) for r in roots) or (fstype in PER_CONTAINER_TYPES and p.count("/") >= 2):
            out.add(p)
    return sorted(out, key=lambda p: (-p.count("/"), p))


def parse_mounts(mountinfo: str) -> list[tuple[str, str]]:
    """(mount point, filesystem type) of each line of a mountinfo."""
    out = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        out.append((linux.unescape_mount_field(fields[4]), fields[fields.index("-", 6) + 1]))
    return out


def carried_paths(spec: Mapping) -> list[str] | None:
    """What a container needs moved into its namespace, from its OCI spec:
    the rootfs, the namespace files it joins by path outside /proc (netns
    pins), every bind source; parents first. None when one of them is `/`
    (a copy of the whole tree would be the daemon's namespace again)."""
    paths = {str((spec.get("root") or {}).get("path") or "")}
    for ns in (spec.get("linux") or {}).get("namespaces") or ():
        p = ns.get("path")
        if p and not p.startswith("/proc/"):
            paths.add(p)
    for m in spec.get("mounts") or ():
        opts = m.get("options") or ()
        if m.get("type") == "bind" or "bind" in opts or "rbind" in opts:
            paths.add(str(m.get("source") or ""))
    paths.discard("")
    if any(os.path.realpath(p) == "/" for p in paths):
        return None
    return sorted((p for p in paths if os.path.isabs(p)), key=lambda p: (p.count("/"), p))


class RuntimeNamespace:
    """The namespace conmon starts in, made on first use; see the module doc."""

    def __init__(self, helper: str, roots: Iterable[str]):
        self.helper = helper            # the compiled mntns_enter.c
        self.roots = tuple(roots)
        self._fd: int | None = None
        self._failed = False
        self._lock = threading.Lock()

    def path(self) -> str | None:
        """A path naming the namespace (/proc/<daemon>/fd/<n>); None when it
        could not be made (then conmon starts in the daemon's)."""
        with self._lock:
            if self._fd is None and not self._failed:
                try:
                    self._fd = linux.in_thread(self._make, "dockyard-mntns")
                except OSError as e:
                    self._failed = True
                    log.warning("no runtime mount namespace (%s): starts pay for every running "
                                "container's mounts", e)
            return f"/proc/{os.getpid()}/fd/{self._fd}" if self._fd is not None else None

    def _make(self) -> int:
        """In a thread of its own (namespaces are per thread): unshare, make
        everything private, unmount the containers' mounts, keep an fd."""
        if _libc.unshare(CLONE_NEWNS) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"unshare(CLONE_NEWNS): {os.strerror(e)}")
        linux.mount("none", "/", None, linux.MS_REC | linux.MS_PRIVATE)
        with open("/proc/thread-self/mountinfo") as f:
            mounts = parse_mounts(f.read())
        for p in hidden(mounts, self.roots):
            try:
                linux.umount(p)
            except OSError as e:        # under one unmounted already, or busy: not fatal
                log.debug("runtime namespace: umount %s: %s", p, e)
        return os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)

    def prefix(self, carry: list[str] | None) -> tuple[list[str], list[int]]:
        """argv to put before conmon's, and the fds to pass it (the caller
        closes them once conmon runs). ([], []) starts conmon in the
        daemon's namespace: carry None, no namespace, or a carry failed."""
        if carry is None:
            return [], []
        ns = self.path()
        if ns is None:
            return [], []
        fds: list[int] = []
        try:
            for p in carry:
                fds.append(open_tree_clone(p))
        except OSError as e:
            for fd in fds:
                os.close(fd)
            if e.errno != 2:         # a missing source: the runtime says what dockerd's would
                log.warning("starting in the daemon's mount namespace: %s", e)
            return [], []
        argv = [self.helper, ns, str(len(fds))]
        for fd, p in zip(fds, carry):
            argv += [str(fd), p]
        return argv, fds


