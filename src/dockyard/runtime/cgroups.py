"""Containers' cgroups as the daemon sees them: `/<parent>/<id>` under each
hierarchy (cgroup v1: one per controller; v2: the unified tree).

The runtime makes and deletes a container's cgroup; what is left to the
daemon is a cgroup the runtime could not remove while zombies kept it busy,
the cgroups of containers a crash left behind, and the empty `<parent>` the
runtime made. rmdir is the whole operation: a cgroup with processes in it
refuses, so nothing in use is ever removed."""
from __future__ import annotations

import errno
import os

BASE = "/sys/fs/cgroup"


def hierarchies(base: str = BASE) -> list[str]:
    """Every hierarchy's mount (v1 controllers, the hybrid `unified`) and the base (v2)."""
    try:
        return [os.path.join(base, d) for d in os.listdir(base)] + [base]
    except OSError:
        return []


def _rmdir_tree(path: str) -> None:
    """rmdir a cgroup and, first, the children a runtime made in it (crun's
    restore leaves `.proxy-crun` behind when CRIU fails)."""
    try:
        os.rmdir(path)
        return
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise
    with os.scandir(path) as it:
        children = [e.path for e in it if e.is_dir(follow_symlinks=False)]
    for child in children:
        _rmdir_tree(child)
    os.rmdir(path)


def remove_container(parent: str, cid: str) -> bool:
    """rmdir what the runtime should have removed; True when none is left."""
    left = False
    for h in hierarchies():
        p = os.path.join(h, parent, cid)
        if os.path.isdir(p):
            try:
                _rmdir_tree(p)
            except OSError:
                left = True
    return not left


def remove_parent(parent: str) -> None:
    """The `<parent>` the runtime made is ours to remove once empty (rmdir
    fails while other containers live)."""
    for h in hierarchies():
        p = os.path.join(h, parent)
        if os.path.isdir(p):
            try:
                os.rmdir(p)
            except OSError:
                pass


def sweep(parent: str, live: set[str]) -> None:
    """Container cgroups left by a crash (or still busy at the last
    shutdown): remove those of containers that are not running."""
    stale = set()
    for h in hierarchies():
        try:
            stale.update(n for n in os.listdir(os.path.join(h, parent))
                         if len(n) == 64 and n not in live and os.path.isdir(os.path.join(h, parent, n)))
        except OSError:
            continue
    for cid in stale:
        remove_container(parent, cid)
    remove_parent(parent)
