"""The OCI runtime binaries (crun default, runc selectable).

crun 1.8 refuses to create containers on a cgroup-v1 hybrid host whose
/sys/fs/cgroup/unified/cgroup.controllers is not empty. We handle that by
running crun through a tiny helper (crun_hybrid.c, compiled once per boot;
a shell script with `unshare` where there is no compiler) that enters a
private mount namespace where that file reads empty; runc needs nothing.
When crun cannot work at all (binary missing, no `unshare`) we fall back
to runc.
"""
from __future__ import annotations

import asyncio
import logging
import os
import select
import shutil
from dataclasses import dataclass

from ..errors import InvalidParameter, SystemError_

log = logging.getLogger("dockyard.runtime")

HYBRID_CONTROLLERS = "/sys/fs/cgroup/unified/cgroup.controllers"
KNOWN = ("crun", "runc")


def hybrid_needs_mask() -> bool:
    try:
        with open(HYBRID_CONTROLLERS) as f:
            return bool(f.read().strip())
    except OSError:
        return False


@dataclass
class Runtime:
    name: str            # "crun" | "runc"
    binary: str          # the real binary
    path: str            # what conmon and we execute (may be the wrapper)
    root: str            # --root: per-daemon state dir, so test daemons never mix

    def argv(self, *args: str) -> list[str]:
        return [self.path, "--root", self.root, *args]

    async def run(self, *args: str, check: bool = True, timeout: float = 30) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(*args), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise SystemError_(f"{self.name} {args[0]} timed out") from None
        text = out.decode(errors="replace").strip()
        if check and proc.returncode != 0:
            raise SystemError_(f"{self.name} {args[0]} failed: {text}")
        return proc.returncode, text


    async def start(self, cid: str) -> None:
        """`<runtime> start`, without the process: release the container's
        init from its exec fifo ourselves (what `start` does inside, minus
        hooks we never set). Falls back to the real command on any surprise."""
        try:
            await asyncio.to_thread(self._release_exec_fifo, cid)
        except OSError as e:
            log.debug("exec fifo start of %s failed (%s); using `%s start`", cid[:12], e, self.name)
            await self.run("start", cid)

    def _release_exec_fifo(self, cid: str) -> None:
        fifo = os.path.join(self.root, cid, "exec.fifo")
        if self.name == "crun":
            # crun's init reads one byte; create left a reader open, so this never blocks
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                os.unlink(fifo)
                os.write(fd, b"\0")
            finally:
                os.close(fd)
            return
        # runc's init blocks opening the fifo for writing, writes "0", then execs
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            if not p.poll(10_000):
                raise OSError("timed out waiting for the container's init")
            if not os.read(fd, 1):
                raise OSError("container init exited before start")
        finally:
            os.close(fd)
        os.unlink(fifo)


    async def delete_exited(self, cid: str, remove_cgroups) -> None:
        """`<runtime> delete` for a container whose processes are all gone,
        without the process: what delete does then is remove the cgroups and
        the state dir. Anything unexpected falls back to the real command."""
        state = os.path.join(self.root, cid)
        pid = _state_pid(state)
        if pid is None or _alive(pid) or not remove_cgroups():
            await self.run("delete", "--force", cid, check=False)
            return
        shutil.rmtree(state, ignore_errors=True)


def _state_pid(state_dir: str) -> int | None:
    """The init pid recorded by crun (`status`) or runc (`state.json`)."""
    import json
    for name, key in (("status", "pid"), ("state.json", "init_process_pid")):
        try:
            with open(os.path.join(state_dir, name)) as f:
                return int(json.load(f)[key])
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _compile_crun_hybrid(crun: str, bin_dir: str) -> str | None:
    """Build runtime/crun_hybrid.c once per exec root (a tmpfs: once per
    boot); None when there is no compiler or the build fails."""
    cc = shutil.which("cc") or shutil.which("gcc")
    src = os.path.join(os.path.dirname(__file__), "crun_hybrid.c")
    if not cc or not os.path.exists(src):
        return None
    import hashlib
    import subprocess
    with open(src, "rb") as f:
        tag = hashlib.sha256(f.read() + crun.encode()).hexdigest()[:12]
    out = os.path.join(bin_dir, f"crun-hybrid-{tag}")
    if os.access(out, os.X_OK):
        return out
    os.makedirs(bin_dir, mode=0o700, exist_ok=True)
    tmp = f"{out}.{os.getpid()}.tmp"
    r = subprocess.run([cc, "-O2", "-o", tmp, f'-DCRUN_PATH="{crun}"', src],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if r.returncode != 0:
        log.warning("could not build the crun hybrid-cgroup helper: %s", r.stderr.strip()[-300:])
        return None
    os.replace(tmp, out)
    return out


class Runtimes:
    """The runtimes this daemon can use, resolved once at start-up."""

    def __init__(self, exec_root: str, default: str = "crun"):
        self.exec_root = exec_root
        self.available: dict[str, Runtime] = {}
        self.notes: list[str] = []
        for name in KNOWN:
            rt = self._resolve(name)
            if rt:
                self.available[name] = rt
        if default not in KNOWN:
            raise InvalidParameter(f"unknown runtime {default!r}: choose crun or runc")
        if default not in self.available:
            fallback = next(iter(self.available), None)
            if not fallback:
                raise SystemError_("no OCI runtime found: install crun or runc")
            self.notes.append(f"{default} unusable here, using {fallback}")
            log.warning("default runtime %s unusable here; falling back to %s", default, fallback)
            default = fallback
        self.default = default

    def _resolve(self, name: str) -> Runtime | None:
        binary = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if not binary:
            return None
        root = os.path.join(self.exec_root, "runtime", name)
        os.makedirs(root, mode=0o700, exist_ok=True)
        path = binary
        if name == "crun" and hybrid_needs_mask():
            unshare = shutil.which("unshare")
            if not unshare:
                self.notes.append("crun needs `unshare` on this hybrid-cgroup host; not found")
                return None
            path = self._write_crun_wrapper(binary, unshare)
            self.notes.append("crun runs in a private mount namespace (hybrid cgroups)")
        return Runtime(name, binary, path, root)

    def _write_crun_wrapper(self, crun: str, unshare: str) -> str:
        """The compiled helper (crun_hybrid.c: no process of its own), else
        a shell script doing the same with unshare, sh and mount."""
        compiled = _compile_crun_hybrid(crun, os.path.join(self.exec_root, "bin"))
        if compiled:
            return compiled
        self.notes.append("no C compiler: crun runs through a shell wrapper (unshare+sh+mount per call)")
        wrapper = os.path.join(self.exec_root, "crun-hybrid")
        script = ("#!/bin/sh\n"
                  "# crun refuses hybrid cgroups while unified/cgroup.controllers is non-empty:\n"
                  "# run it in its own mount namespace where that file reads empty (only the\n"
                  "# unified mount is made private: binds keep the host's propagation).\n"
                  f"exec {unshare} -m --propagation unchanged /bin/sh -c "
                  f"'mount --make-private {os.path.dirname(HYBRID_CONTROLLERS)} && "
                  f"mount --bind /dev/null {HYBRID_CONTROLLERS} && exec {crun} \"$@\"' crun \"$@\"\n")
        tmp = wrapper + ".tmp"
        with open(tmp, "w") as f:
            f.write(script)
        os.chmod(tmp, 0o755)
        os.replace(tmp, wrapper)
        return wrapper

    def get(self, name: str | None) -> Runtime:
        rt = self.available.get(name or self.default)
        if rt is None:
            raise InvalidParameter(f"unknown or invalid runtime name: {name}")
        return rt
