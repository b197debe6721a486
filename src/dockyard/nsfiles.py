"""Namespaces pinned as bind-mounted files, several kinds at once (a
Kubernetes pod's network, IPC and UTS namespaces), with raw syscalls.

Like network/netns.py, the work runs in a short-lived thread: unshare()
moves only that thread into the new namespaces, the files pin them, the
thread exits and the daemon's other threads never move. Containers then
join the namespaces by path (the OCI spec's `namespaces[].path`)."""
from __future__ import annotations

import os
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

    def work() -> None:
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

    try:
        linux.in_thread(work, "dockyard-nspin")
    except BaseException:
        for path in made:
            unpin(path)
        raise


def unpin(path: str) -> None:
    """Unmount and delete a namespace file; a missing or unmounted one is fine."""
    linux.umount(path)   # not mounted or gone: fine
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------- a PID namespace's holder

CLONE_NEWPID = 0x20000000
# catatonit's pause mode: PID 1 that reaps what is reparented to it and does
# nothing else (podman's infra process); SIGTERM/SIGINT end it
HOLDERS = ("/usr/bin/catatonit", "/usr/libexec/podman/catatonit")


def holder_binary() -> str:
    """The pause-mode init a pod's PID namespace is held by, or ""."""
    return next((p for p in HOLDERS if os.access(p, os.X_OK)), "")


def spawn_pid_holder(path: str, binary: str = "") -> int:
    """A new PID namespace whose PID 1 is a pause-mode init (`catatonit -P`),
    pinned at `path`; its PID (as the host sees it).

    A PID namespace lives only as long as its PID 1 (when it dies the kernel
    kills the rest and no process can join any more), so a pinned file
    alone cannot hold one: a process must. The holder is not the daemon's
    own (no Python process): it is spawned from a short-lived thread that
    unshared CLONE_NEWPID, so it is PID 1 of the new namespace; in a session
    of its own it outlives a daemon killed with -9 (the host's init adopts
    it). Until then the daemon's subprocess module reaps it once it exits."""
    import subprocess
    binary = binary or holder_binary()
    if not binary:
        raise FileNotFoundError("no pause-mode init for the pod's PID namespace (Debian's catatonit): "
                                "looked for " + ", ".join(HOLDERS))
    def work() -> subprocess.Popen:
        linux.unshare(CLONE_NEWPID)     # this thread's children only: the next one is PID 1 there
        return subprocess.Popen([binary, "-P"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True, cwd="/")

    proc = linux.in_thread(work, "dockyard-pidns")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444))
        linux.mount(f"/proc/{proc.pid}/ns/pid", path, None, MS_BIND)
    except BaseException:
        proc.kill()
        proc.wait()
        unpin(path)
        raise
    return proc.pid


def holds(pid: int, path: str) -> bool:
    """Whether process `pid` is alive in the PID namespace pinned at `path`
    (a PID reused by another process is not)."""
    if pid <= 0:
        return False
    try:
        ns, pinned = os.stat(f"/proc/{pid}/ns/pid"), os.stat(path)
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return (ns.st_dev, ns.st_ino) == (pinned.st_dev, pinned.st_ino) and state not in ("Z", "X")


def find_pid_holder(path: str) -> int:
    """The PID 1 of the namespace pinned at `path` (0: none), looked for in
    /proc: for a holder whose PID was never recorded (a daemon killed while
    it made the pod)."""
    try:
        pinned = os.stat(path)
        names = [n for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return 0
    for name in names:
        try:
            ns = os.stat(f"/proc/{name}/ns/pid")
            if (ns.st_dev, ns.st_ino) != (pinned.st_dev, pinned.st_ino):
                continue
            with open(f"/proc/{name}/status") as f:
                nspid = next((line.split()[1:] for line in f if line.startswith("NSpid:")), [])
        except OSError:
            continue
        if nspid and nspid[-1] == "1":
            return int(name)
    return 0


def stop_pid_holder(pid: int, path: str) -> None:
    """Kill the holder (and with it whatever still runs in its namespace) if
    it is still the one pinned at `path` (found by that pin when `pid` is
    not it), then unpin the namespace."""
    import signal
    if not holds(pid, path):
        pid = find_pid_holder(path)
    if pid and holds(pid, path):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:     # our child unless the daemon restarted since; then the host's init reaps it
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    unpin(path)
