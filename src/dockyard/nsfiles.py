"""Namespaces pinned as bind-mounted files, several kinds at once (a
Kubernetes pod's network, IPC and UTS namespaces), with raw syscalls.

Like network/netns.py, the work runs in a short-lived thread: unshare()
moves only that thread into the new namespaces, the files pin them, the
thread exits and the daemon's other threads never move. Containers then
join the namespaces by path (the OCI spec's `namespaces[].path`)."""
from __future__ import annotations

import os
import threading
from typing import Callable, Mapping

from . import linux

CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUTS = 0x04000000
FLAGS = {"net": CLONE_NEWNET, "ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS}
MS_BIND = 0x1000


def pin(paths: Mapping[str, str], hostname: str = "", then: Callable[[], None] | None = None) -> None:
    """New namespaces of the kinds in `paths` ({"net"|"ipc"|"uts": file}),
    each pinned at its file; a new UTS namespace gets `hostname`; `then`
    runs inside them (e.g. loopback up). On failure nothing stays pinned."""
    if not paths:
        return
    unknown = set(paths) - set(FLAGS)
    if unknown:
        raise ValueError(f"cannot pin namespaces of kind {sorted(unknown)}")
    made: list[str] = []
    box: dict = {}

    def work() -> None:
        try:
            flags = 0
            for kind in paths:
                flags |= FLAGS[kind]
            linux.unshare(flags)
            if "uts" in paths and hostname:
                linux.sethostname(hostname)
            for kind, path in paths.items():
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444))
                made.append(path)
                linux.mount(f"/proc/thread-self/ns/{kind}", path, None, MS_BIND)
            if then is not None:
                then()
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=work, name="dockyard-nspin")
    t.start()
    t.join()
    if "error" in box:
        for path in made:
            unpin(path)
        raise box["error"]


def unpin(path: str) -> None:
    """Unmount and delete a namespace file; a missing or unmounted one is fine."""
    linux.umount(path)   # not mounted or gone: fine
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
