"""`--ipc shareable`: the container's /dev/shm is a tmpfs on the host
(`<exec-root>/shm/<id>`) so containers started with `--ipc container:<id>`
can bind the same one (a tmpfs inside the donor's mount namespace could
not be bind-mounted from outside it). Mounted at start, unmounted when the
container stops."""
from __future__ import annotations

import os

from .. import linux

DEFAULT_SIZE = 64 * 1024 * 1024
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8


def path(exec_root: str, cid: str) -> str:
    return os.path.join(exec_root, "shm", cid)


def mount(exec_root: str, cid: str, size: int) -> str:
    target = path(exec_root, cid)
    os.makedirs(target, mode=0o755, exist_ok=True)
    if not linux.is_mountpoint(target):
        linux.mount("shm", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    f"mode=1777,size={size or DEFAULT_SIZE}")
    return target


def unmount(exec_root: str, cid: str) -> None:
    target = path(exec_root, cid)
    if os.path.isdir(target):
        linux.umount(target)
        try:
            os.rmdir(target)
        except OSError:
            pass


def oci_mount(source: str) -> dict:
    return {"destination": "/dev/shm", "type": "bind", "source": source, "options": ["rbind", "rprivate"]}
