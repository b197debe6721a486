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
