"""A runtime binary sealed into a memfd once, for the runtime's `exec`.

crun (and runc) guard against CVE-2019-5736 by re-executing themselves from
a private copy on every start unless /proc/self/exe already is a sealed
memfd: a second exec and a second round of dynamic loading, ~2 ms of each
`docker exec` here. The daemon makes that sealed copy once and has conmon
execute it by its /proc/<daemon>/fd path: the runtime finds itself sealed
and goes straight on. A crun run through a private prefix's loader
(runtimes.PrivateCrun) gets the loader sealed: that is what
/proc/self/exe names then.

Only `exec` uses it: create still goes through the runtime's configured
path (crun-hybrid's cgroup mask is a create-time need; crun's exec joins
the container's cgroups without reading it).
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Sequence

log = logging.getLogger("dockyard.runtime")

F_ADD_SEALS = 1033
# the seals runc's and crun's is_self_cloned() want, all four
SEALS = 0x1 | 0x2 | 0x4 | 0x8   # F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE


def sealed_copy(path: str) -> int:
    """A close-on-exec memfd holding path's bytes, sealed against any change."""
    fd = os.memfd_create(os.path.basename(path), os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
        fcntl.fcntl(fd, F_ADD_SEALS, SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd


class SealedArgv:
    """argv (program and its leading arguments) with the program replaced by
    a sealed copy on first use; the plain argv when that cannot be made."""

    def __init__(self, argv: Sequence[str]):
        self.argv = list(argv)
        self._done: list[str] | None = None
        self._fd = -1
        self._lock = threading.Lock()

    def get(self) -> list[str]:
        with self._lock:
            if self._done is None:
                try:
                    self._fd = sealed_copy(self.argv[0])
                    self._done = [f"/proc/{os.getpid()}/fd/{self._fd}", *self.argv[1:]]
                except OSError as e:
                    log.warning("no sealed copy of %s (%s): each exec re-executes it", self.argv[0], e)
                    self._done = list(self.argv)
            return self._done

