"""The OCI runtime's checkpoint and restore, driven with a CRIU we chose.

runc takes the CRIU binary with its global `--criu PATH`; crun links
libcriu, which runs `criu` from PATH, so crun gets PATH with our CRIU's
directory first. Restore itself is run by conmon (`conmon --restore`), so
the restored process gets fresh stdio pipes held by conmon and its log
continues in the same file: this module only says which arguments to give.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
from functools import lru_cache

from ..errors import NotImplementedYet, SystemError_
from .criu import Criu
from .runtimes import Runtime

# Always on: established TCP connections (a loopback nc<->nc, a client of a
# server inside) and POSIX/flock locks survive; without them CRIU refuses.
CRIU_FLAGS = ("--tcp-established", "--file-locks")


@lru_cache(maxsize=8)
def _crun_has_criu(binary: str) -> bool:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "+CRIU" in out


def unsupported_reason(rt: Runtime) -> str:
    """Why this runtime cannot checkpoint here, or ""."""
    if rt.name == "crun" and not _crun_has_criu(rt.binary):
        return (f"the crun here ({rt.binary}) was built without CRIU support; "
                "create the container with --runtime runc to checkpoint it")
    return ""


def global_args(rt: Runtime, criu: Criu) -> list[str]:
    return ["--criu", criu.path] if rt.name == "runc" else []


def env_for(criu: Criu) -> dict[str, str]:
    path = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    return {**os.environ, "PATH": os.path.dirname(criu.path) + ":" + path}


def restore_opts(work_dir: str) -> list[str]:
    """`runtime restore` options conmon passes on (`--runtime-opt`)."""
    return [*CRIU_FLAGS, "--work-path", work_dir]


def log_tail(work_dir: str, name: str, lines: int = 4) -> str:
    """The last errors CRIU logged, for the error message."""
    try:
        with open(os.path.join(work_dir, name), errors="replace") as f:
            text = f.read().splitlines()
    except OSError:
        return ""
    errs = [l.strip() for l in text if "Error" in l or "error" in l]
    return "; ".join((errs or text)[-lines:])


async def checkpoint(rt: Runtime, criu: Criu, cid: str, image_dir: str, work_dir: str, *,
                     leave_running: bool, timeout: float = 120) -> None:
    reason = unsupported_reason(rt)
    if reason:
        raise NotImplementedYet(reason)
    argv = [rt.path, "--root", rt.root, *global_args(rt, criu), "checkpoint",
            "--image-path", image_dir, "--work-path", work_dir, *CRIU_FLAGS]
    if leave_running:
        argv.append("--leave-running")
    argv.append(cid)
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                env=env_for(criu))
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise SystemError_(f"{rt.name} checkpoint timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        detail = log_tail(work_dir, "dump.log") or out.decode(errors="replace").strip()[-500:]
        raise SystemError_(f"checkpoint of {cid[:12]} failed: {detail}")
