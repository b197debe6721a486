"""A container's root filesystem: overlayfs with the image's unpacked
layers as lowerdirs and an upper/work dir of its own.

    <data-root>/overlay/<id>/{upper,work}   the container's layer
    <data-root>/rootfs/<id>                 where it is mounted

Mounted at start, unmounted when the container stops, removed with it.
<data-root>/rootfs is a mount of its own (linux.mount_dir, made by
`prepare`), so the running containers' overlays hang off it and not off
the mount that holds the layers and upper dirs, whose children the kernel
walks on every overlay mount. A container mounted by an older daemon at
overlay/<id>/merged is found there until it stops."""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable

from .. import linux
from ..errors import SystemError_

NO_QUOTA = "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"


def check_storage_opts(opts: dict | None) -> None:
    """`HostConfig.StorageOpt` as moby's overlay2 driver answers it where the
    backing filesystem has no project quota: `size` cannot be enforced, any
    other key is unknown; 500s (errdefs.System), at create. dockyard never
    enforces a size (no xfs project quotas), so `size` is refused everywhere."""
    if not opts:
        return
    if "size" in opts:
        raise SystemError_(NO_QUOTA)
    for key in opts:
        key = str(key).lower()
        # moby lowercases here; a `Size` key would reach its quota code with no quota control
        raise SystemError_(NO_QUOTA if key == "size" else f"Unknown option {key}")


MOUNTS_DIR = "rootfs"


def prepare(data_root: str) -> None:
    """At daemon start: <data-root>/rootfs as a mount of its own."""
    linux.mount_dir(os.path.join(data_root, MOUNTS_DIR), mode=0o711)   # traversed by remapped roots


def release(data_root: str) -> None:
    """At a clean shutdown: unmount <data-root>/rootfs once no container's
    overlay is mounted under it."""
    try:
        linux.unmount_dir(os.path.join(data_root, MOUNTS_DIR))
    except OSError:     # busy: the next daemon adopts it
        pass


class RootFS:
    def __init__(self, data_root: str, cid: str):
        self.base = os.path.join(data_root, "overlay", cid)
        self.upper = os.path.join(self.base, "upper")
        self.work = os.path.join(self.base, "work")
        self.merged = os.path.join(data_root, MOUNTS_DIR, cid)
        legacy = os.path.join(self.base, "merged")
        if os.path.isdir(legacy) and linux.is_mountpoint(legacy):   # mounted by an older daemon
            self.merged = legacy

    def create(self) -> None:
        for d in (self.upper, self.work):
            os.makedirs(d, mode=0o755, exist_ok=True)

    def mount(self, lower_dirs: list[str]) -> str:
        self.create()
        os.makedirs(self.merged, mode=0o755, exist_ok=True)
        if linux.is_mountpoint(self.merged):
            return self.merged   # re-adopted after a daemon crash mid-start
        if not lower_dirs:
            raise OSError("image has no layers")
        opts = f"lowerdir={':'.join(lower_dirs)},upperdir={self.upper},workdir={self.work}"
        linux.mount("overlay", self.merged, "overlay", 0, opts)
        return self.merged

    def unmount(self) -> None:
        linux.umount(self.merged)

    def remove(self, discard: Callable[[str], None] | None = None) -> None:
        """Unmount, then the upper and work dirs: deleted here, or handed to
        discard (Trash.discard)."""
        self.unmount()
        if discard is not None:
            discard(self.base)
        else:
            shutil.rmtree(self.base, ignore_errors=True)
        try:
            os.rmdir(self.merged)
        except OSError:
            pass
