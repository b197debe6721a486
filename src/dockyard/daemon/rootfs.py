"""A container's root filesystem: overlayfs with the image's unpacked
layers as lowerdirs and an upper/work dir of its own.

Mounted at start, unmounted when the container stops, removed with it."""
from __future__ import annotations

import os
import shutil

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


class RootFS:
    def __init__(self, data_root: str, cid: str):
        self.base = os.path.join(data_root, "overlay", cid)
        self.upper = os.path.join(self.base, "upper")
        self.work = os.path.join(self.base, "work")
        self.merged = os.path.join(self.base, "merged")

    def create(self) -> None:
        for d in (self.upper, self.work, self.merged):
            os.makedirs(d, mode=0o755, exist_ok=True)

    def mount(self, lower_dirs: list[str]) -> str:
        self.create()
        if linux.is_mountpoint(self.merged):
            return self.merged   # re-adopted after a daemon crash mid-start
        if not lower_dirs:
            raise OSError("image has no layers")
        opts = f"lowerdir={':'.join(lower_dirs)},upperdir={self.upper},workdir={self.work}"
        linux.mount("overlay", self.merged, "overlay", 0, opts)
        return self.merged

    def unmount(self) -> None:
        linux.umount(self.merged)

    def remove(self) -> None:
        self.unmount()
        shutil.rmtree(self.base, ignore_errors=True)
