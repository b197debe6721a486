"""Bind propagation (`bind-propagation=`, `-v src:dst:rslave`) as moby's
WithMounts does it: a shared/rshared bind needs its source on a shared
mount, a slave/rslave bind on a shared or slave one (else the start fails
with moby's wording), and the container's root gets rshared/rslave
propagation so the runtime does not make the bind private again."""
from __future__ import annotations

import os
from typing import Iterable, Mapping

from ..errors import InvalidParameter
from ..linux import unescape_mount_field


def source_mount(path: str, mountinfo: str) -> tuple[str, list[str]]:
    """The mount `path` lives on (deepest mount point, the top one when
    stacked) and that mount's optional fields (`shared:N`, `master:N`)."""
    best, best_opts = "/", []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 7 or "-" not in fields:
            continue
        point = unescape_mount_field(fields[4])
        inside = path == point or point == "/" or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_opts = point, fields[6:fields.index("-")]
    return best, best_opts


def rootfs_propagation(mounts: Iterable[Mapping], mountinfo: str | None = None) -> str | None:
    """Check each bind's propagation against its source; the rootfs
    propagation the spec needs (None: the runtime's default)."""
    root = None
    for m in mounts:
        if m.get("type") != "bind":
            continue
        opts = set(m.get("options") or ())
        shared, slave = opts & {"shared", "rshared"}, opts & {"slave", "rslave"}
        if not (shared or slave):
            continue
        if mountinfo is None:
            with open("/proc/self/mountinfo") as f:
                mountinfo = f.read()
        path = os.path.realpath(m["source"])
        point, optional = source_mount(path, mountinfo)
        is_shared = any(o.startswith("shared:") for o in optional)
        if shared:
            if not is_shared:
                raise InvalidParameter(f"path {path} is mounted on {point} but it is not a shared mount")
            root = "rshared"
        else:
            if not is_shared and not any(o.startswith("master:") for o in optional):
                raise InvalidParameter(f"path {path} is mounted on {point} but it is not a shared or slave mount")
            root = root or "rslave"
    return root
