"""Find a command inside a container's root filesystem before starting it,
following symlinks as the container would see them (absolute links are
resolved against the rootfs, never the host). This lets a start with a
missing command fail at once with Docker's message and exit code 127,
instead of after the runtime and supervisor were spun up."""
from __future__ import annotations

import os
import stat
from typing import Iterable

_MAX_LINKS = 40


def resolve(rootfs: str, path: str) -> str | None:
    """Host path of `path` (absolute, in-container) with all symlinks
    resolved inside rootfs; None if a component does not exist."""
    parts = [p for p in path.split("/") if p]
    cur: list[str] = []
    links = 0
    while parts:
        name = parts.pop(0)
        if name == ".":
            continue
        if name == "..":
            if cur:
                cur.pop()
            continue
        host = os.path.join(rootfs, *cur, name)
        try:
            st = os.lstat(host)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                return None
            target = os.readlink(host)
            if target.startswith("/"):
                cur = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        cur.append(name)
    return os.path.join(rootfs, *cur)


def check(rootfs: str, cmd: str, env: list[str], mounted: Iterable[str] = ()) -> tuple[int, str] | None:
    """None if `cmd` would exec; else (exit code, Docker's error message).
    `mounted`: the container's mount destinations. A candidate under one is
    not in the rootfs we can see (a bind or volume covers it there): the
    runtime decides, as it does in Docker."""
    if "/" in cmd:
        candidates = [cmd if cmd.startswith("/") else "/" + cmd]
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        candidates = [os.path.join(d or "/", cmd) for d in path.split(":")]
    covers = [m.rstrip("/") + "/" for m in mounted]
    denied = False
    for cand in candidates:
        if any(os.path.normpath(cand).startswith(m) for m in covers):
            return None
        host = resolve(rootfs, cand)
        if host is None:
            continue
        try:
            st = os.stat(host)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            denied = True
            continue
        if st.st_mode & 0o111:
            return None
        denied = True
    if denied:
        return 126, f'exec: "{cmd}": permission denied'
    if "/" in cmd:
        return 127, f'exec: "{cmd}": stat {cmd}: no such file or directory'
    return 127, f'exec: "{cmd}": executable file not found in $PATH'
