"""Small filesystem helpers shared by the daemon's resources."""
from __future__ import annotations

import os


def dir_size(path: str) -> int:
    """Bytes of the regular files under path (links not followed), as
    Docker counts a writable layer or a volume."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def disk_usage(path: str) -> tuple[int, int]:
    """(bytes of disk the files under path take, entries under path), links
    not followed: the CRI's filesystem figures (used_bytes, inodes_used)."""
    used, inodes = 0, 0
    for root, dirs, files in os.walk(path):
        inodes += len(dirs) + len(files)
        for f in files:
            try:
                used += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return used, inodes
